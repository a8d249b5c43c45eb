#include "runq/jobs/timer_queue.hpp"

namespace runq::jobs {

TimerQueue::TimerQueue() : thread_([this] { loop(); }) {}

TimerQueue::~TimerQueue() { stop(); }

void TimerQueue::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t TimerQueue::schedule(Clock::duration after, std::function<void()> fn) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_id_++;
  auto deadline = Clock::now() + after;
  bool earliest = timers_.empty() || deadline < timers_.begin()->first.first;
  timers_.emplace(std::make_pair(deadline, id), std::move(fn));
  deadlines_.emplace(id, deadline);
  if (earliest) cv_.notify_one();
  return id;
}

bool TimerQueue::cancel(std::uint64_t handle) {
  std::lock_guard lock(mu_);
  auto it = deadlines_.find(handle);
  if (it == deadlines_.end()) return false;
  timers_.erase({it->second, handle});
  deadlines_.erase(it);
  return true;
}

void TimerQueue::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    // A copy: wait_until reads its deadline again after waking, and by then cancel() may
    // have erased the timer (and the deadline with it) while the lock was released.
    const Clock::time_point deadline = first->first.first;
    if (deadline > Clock::now()) {
      cv_.wait_until(lock, deadline);
      continue;
    }
    auto fn = std::move(first->second);
    deadlines_.erase(first->first.second);
    timers_.erase(first);
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace runq::jobs
