// jobs::TimerQueue: deadlines, cancel, stop.
#include "runq/jobs/timer_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

using namespace runq::jobs;
using namespace std::chrono_literals;

namespace {

TEST(TimerQueue, RunsAtTheDeadlineInOrder) {
  TimerQueue q;
  auto done = std::make_shared<std::promise<void>>();
  auto ready = done->get_future();
  std::atomic<int> order{0};
  std::atomic<int> first{0}, second{0};
  q.schedule(60ms, [&, done] { second = ++order; done->set_value(); });
  q.schedule(10ms, [&] { first = ++order; });
  ASSERT_EQ(ready.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
}

TEST(TimerQueue, CancelledTimerNeverRuns) {
  TimerQueue q;
  std::atomic<bool> ran{false};
  auto h = q.schedule(30ms, [&] { ran = true; });
  EXPECT_TRUE(q.cancel(h));
  EXPECT_FALSE(q.cancel(h));
  std::this_thread::sleep_for(80ms);
  EXPECT_FALSE(ran);
}

// Found by the router fuzzer (ASan: heap-use-after-free): the timer thread waited with a
// reference to the deadline inside the map node, and read it again on waking, after a
// cancel() on another thread had freed that node.
TEST(TimerQueue, CancelWhileTheThreadWaitsOnThatTimer) {
  TimerQueue q;
  for (int i = 0; i < 20; ++i) {
    auto far = q.schedule(10s, [] {});
    std::this_thread::sleep_for(5ms);  // the thread now sleeps until `far`'s deadline
    ASSERT_TRUE(q.cancel(far));        // ... which is freed here
    auto woke = std::make_shared<std::promise<void>>();
    auto ready = woke->get_future();
    q.schedule(1ms, [woke] { woke->set_value(); });  // wakes the thread
    ASSERT_EQ(ready.wait_for(5s), std::future_status::ready);
  }
}

TEST(TimerQueue, StopDropsPendingTimers) {
  std::atomic<bool> ran{false};
  {
    TimerQueue q;
    q.schedule(20ms, [&] { ran = true; });
    q.stop();
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(ran);
}

}  // namespace
