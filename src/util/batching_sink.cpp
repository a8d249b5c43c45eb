#include "runq/util/batching_sink.hpp"

#include <cerrno>
#include <csignal>
#include <poll.h>
#include <pthread.h>
#include <string_view>
#include <unistd.h>

namespace runq::util::log {

BatchingSink::BatchingSink(int fd, std::string batched, std::chrono::milliseconds interval,
                           std::size_t batch_bytes)
    : fd_(fd), batched_(std::move(batched)), interval_(interval), batch_bytes_(batch_bytes) {
  pending_.reserve(batch_bytes_ + 1024);
  // The flusher takes no signal (they are the signal thread's, see main.cpp), even when
  // it starts before the caller blocks them: it inherits a mask that blocks them all.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread([this] { flusher(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

BatchingSink::~BatchingSink() { stop(); }

void BatchingSink::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    write_pending();
  }
  wake_.notify_one();
  thread_.join();
}

void BatchingSink::sink_it_(const spdlog::details::log_msg& msg) {
  const bool first = pending_.size() == 0;
  formatter_->format(msg, pending_);  // appends
  if (stopped_ || std::string_view(msg.logger_name.data(), msg.logger_name.size()) != batched_ ||
      pending_.size() >= batch_bytes_) {
    // A record of another logger goes out now, behind the lines batched before it; a full
    // batch is written here (handing it to the flusher would cost a wake-up of its own).
    write_pending();
  } else if (first) {
    oldest_ = std::chrono::steady_clock::now();
    if (flusher_idle_) wake_.notify_one();
  }
}

void BatchingSink::flush_() { write_pending(); }

void BatchingSink::flusher() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopped_) {
    if (pending_.size() == 0) {
      flusher_idle_ = true;
      wake_.wait(lock);  // until a first line (or stop)
      flusher_idle_ = false;
    } else if (std::chrono::steady_clock::now() >= oldest_ + interval_) {
      write_pending();
    } else {
      // Woken early (spuriously, or after a full batch was written by a logging thread
      // and a new one started): the loop looks again.
      wake_.wait_until(lock, oldest_ + interval_);
    }
  }
}

void BatchingSink::write_pending() {
  const char* p = pending_.data();
  std::size_t left = pending_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n > 0) {
      p += n;
      left -= static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd ready{fd_, POLLOUT, 0};  // a non-blocking stderr that is full: wait for room
      ::poll(&ready, 1, -1);
    } else {
      break;  // nowhere to write (a closed pipe, ...): the lines are dropped, as spdlog's sinks do
    }
  }
  pending_.clear();
}

}  // namespace runq::util::log
