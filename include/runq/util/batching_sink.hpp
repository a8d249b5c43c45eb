#pragma once
// The log sink of a server whose stderr is a file or a pipe: the records of one logger
// (the access log, one line per request) are gathered and written in batches, one
// write(2) per batch; every other record is written at once, after the lines gathered
// before it, in the same write. So the order of the lines is the order of the records.
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

namespace runq::util::log {

class BatchingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // At most this long between a batched line and its write: what a crash (SIGKILL) may
  // lose of the access log, and how late `tail -f` sees a line. A tenth of that would
  // wake the flusher ten times as often under load for no one's benefit; ten times that
  // would make the log lag visibly.
  static constexpr std::chrono::milliseconds kInterval{50};
  // A batch is written once it holds this much: a few hundred access lines, one write.
  static constexpr std::size_t kBatchBytes = 64 * 1024;

  // Writes to `fd` (not closed here); batches the records of the logger named `batched`.
  // Starts the flusher thread, which writes a batch kInterval after its first line (it
  // sleeps while nothing is pending).
  BatchingSink(int fd, std::string batched, std::chrono::milliseconds interval = kInterval,
               std::size_t batch_bytes = kBatchBytes);
  // stop().
  ~BatchingSink() override;

  // Writes what is pending and ends the flusher: every record after it is written at once.
  void stop();

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

 private:
  void flusher();
  void write_pending();  // with mutex_ held

  const int fd_;
  const std::string batched_;
  const std::chrono::milliseconds interval_;
  const std::size_t batch_bytes_;
  spdlog::memory_buf_t pending_;                   // formatted lines not yet written
  std::chrono::steady_clock::time_point oldest_;  // when the first of them came
  std::condition_variable wake_;                  // the flusher's, on mutex_
  bool flusher_idle_ = false;                      // it waits for a first line
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace runq::util::log
