#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace runq::jobs {

// One background thread that runs callbacks at steady-clock deadlines
// (job timeouts, ?wait= deadlines). Callbacks must be short.
class TimerQueue {
 public:
  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  using Clock = std::chrono::steady_clock;
  // Returns a handle for cancel().
  std::uint64_t schedule(Clock::duration after, std::function<void()> fn);
  // True if the timer was removed before it ran.
  bool cancel(std::uint64_t handle);
  // Drops pending timers and joins the thread; later schedule() calls never run.
  void stop();

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::uint64_t next_id_ = 1;
  // ordered by (deadline, id)
  std::map<std::pair<Clock::time_point, std::uint64_t>, std::function<void()>> timers_;
  std::map<std::uint64_t, Clock::time_point> deadlines_;
  std::thread thread_;
};

}  // namespace runq::jobs
