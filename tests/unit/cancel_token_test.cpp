#include "runq/jobs/cancel_token.hpp"
#include "runq/jobs/timer_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

using namespace runq::jobs;
using namespace std::chrono_literals;

TEST(CancelToken, SleepRunsItsCourseWhenNotStopped) {
  CancelToken t;
  EXPECT_TRUE(t.sleep_for(5ms));
  EXPECT_FALSE(t.stopped());
}

TEST(CancelToken, CancelWakesASleeper) {
  CancelToken t;
  auto start = std::chrono::steady_clock::now();
  auto sleeper = std::async(std::launch::async, [&] { return t.sleep_for(30s); });
  std::this_thread::sleep_for(20ms);
  t.cancel(StopReason::cancelled);
  EXPECT_FALSE(sleeper.get());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(t.reason(), StopReason::cancelled);
}

TEST(CancelToken, FirstReasonWins) {
  CancelToken t;
  t.cancel(StopReason::timed_out);
  t.cancel(StopReason::cancelled);
  EXPECT_EQ(t.reason(), StopReason::timed_out);
  EXPECT_FALSE(t.sleep_for(1s));
}

TEST(CancelToken, CallbacksRunOnceAndCanBeRemoved) {
  CancelToken t;
  int a = 0, b = 0;
  t.on_stop([&] { a++; });
  int hb = t.on_stop([&] { b++; });
  t.remove_callback(hb);
  t.cancel(StopReason::shutdown);
  t.cancel(StopReason::cancelled);
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
  int late = 0;
  t.on_stop([&] { late++; });
  EXPECT_EQ(late, 1) << "registering on a stopped token calls at once";
}

TEST(TimerQueue, RunsInDeadlineOrder) {
  TimerQueue q;
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> done;
  q.schedule(30ms, [&] {
    std::lock_guard l(mu);
    order.push_back(3);
    done.set_value();
  });
  q.schedule(10ms, [&] {
    std::lock_guard l(mu);
    order.push_back(1);
  });
  q.schedule(20ms, [&] {
    std::lock_guard l(mu);
    order.push_back(2);
  });
  done.get_future().wait();
  std::lock_guard l(mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(TimerQueue, CancelledTimerNeverRuns) {
  TimerQueue q;
  std::atomic<bool> ran{false};
  auto h = q.schedule(20ms, [&] { ran = true; });
  EXPECT_TRUE(q.cancel(h));
  EXPECT_FALSE(q.cancel(h));
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(ran.load());
}

TEST(TimerQueue, StopDropsPendingTimers) {
  std::atomic<bool> ran{false};
  {
    TimerQueue q;
    q.schedule(10s, [&] { ran = true; });
    q.stop();
  }
  EXPECT_FALSE(ran.load());
}
