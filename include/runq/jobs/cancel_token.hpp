#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>

namespace runq::jobs {

// Why a job's work is being stopped. The first reason given wins.
// lease_lost: several nodes share the store and this one lost its claim on the job
// (another node runs it again).
enum class StopReason { none, cancelled, timed_out, shutdown, lease_lost };

// Shared between the worker running a job and whoever wants it stopped (a cancel
// request, the timeout timer, shutdown). Agents sleep on it or register a callback.
class CancelToken {
 public:
  void cancel(StopReason why);
  StopReason reason() const;
  bool stopped() const { return reason() != StopReason::none; }

  // Sleeps up to `d`; returns false at once if the token is (or becomes) stopped.
  bool sleep_for(std::chrono::microseconds d);

  // Calls fn once when the token stops (at once if it already has). Returns a handle
  // for remove_callback. fn runs on the thread that calls cancel(): keep it short.
  int on_stop(std::function<void()> fn);
  void remove_callback(int handle);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  StopReason reason_ = StopReason::none;
  int next_handle_ = 1;
  std::map<int, std::function<void()>> callbacks_;
};

}  // namespace runq::jobs
