#include "runq/jobs/cancel_token.hpp"

#include <vector>

namespace runq::jobs {

void CancelToken::cancel(StopReason why) {
  std::map<int, std::function<void()>> to_call;
  {
    std::lock_guard lock(mu_);
    if (reason_ != StopReason::none || why == StopReason::none) return;
    reason_ = why;
    to_call.swap(callbacks_);
  }
  cv_.notify_all();
  for (auto& [handle, fn] : to_call) fn();
}

StopReason CancelToken::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

bool CancelToken::sleep_for(std::chrono::microseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return reason_ != StopReason::none; });
}

int CancelToken::on_stop(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (reason_ == StopReason::none) {
      int handle = next_handle_++;
      callbacks_.emplace(handle, std::move(fn));
      return handle;
    }
  }
  fn();  // already stopped: call at once, outside the lock
  return 0;
}

void CancelToken::remove_callback(int handle) {
  std::lock_guard lock(mu_);
  callbacks_.erase(handle);
}

}  // namespace runq::jobs
