#pragma once
// Server-Sent Events over a job's EventLog: the http::EventStream the stream route answers.
#include "runq/http/message.hpp"
#include "runq/jobs/event_log.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace runq::api {

// "event: <type>\nid: <id>\ndata: <data>\n\n" (a data with line breaks becomes several
// data: lines, as SSE wants).
std::string format_sse(const jobs::Event& e);
// "event: heartbeat\ndata: {\"timestamp\":\"...Z\"}\n\n" (no id).
std::string format_heartbeat(std::int64_t now_us);

// Last-Event-ID header -> the id to resume after (0 when absent or not a number >= 0).
std::int64_t parse_last_event_id(const std::string* header);

// Streams the events of `log` with id > after_id. Thread-safe.
class JobEventStream : public http::EventStream {
 public:
  JobEventStream(std::shared_ptr<jobs::EventLog> log, std::int64_t after_id);
  ~JobEventStream() override;

  std::optional<std::string> poll() override;
  bool finished() override;
  std::string heartbeat() override;
  void set_notifier(std::function<void()> notify) override;
  void close() override;

 private:
  std::shared_ptr<jobs::EventLog> log_;
  std::mutex mu_;
  std::int64_t last_id_;
  bool finished_ = false;
  bool closed_ = false;
  int listen_handle_ = 0;  // 0: not listening
};

}  // namespace runq::api
