// Tests of DrainRate: the queue's recent drain rate and the Retry-After it gives.
#include "runq/jobs/drain_rate.hpp"

#include <gtest/gtest.h>

using runq::jobs::DrainRate;
using namespace std::chrono_literals;

TEST(DrainRate, NoClaimsMeansNoRateAndFiveSeconds) {
  const auto t0 = DrainRate::Clock::now();
  DrainRate d(t0);
  EXPECT_FALSE(d.per_second(t0 + 10s));
  EXPECT_EQ(d.retry_after_s(100, t0 + 10s), 5);
}

TEST(DrainRate, RateOverTheWindow) {
  const auto t0 = DrainRate::Clock::now();
  DrainRate d(t0);
  for (int s = 0; s < 10; ++s) d.record(t0 + std::chrono::seconds(s), 50);  // 50/s for 10 s
  auto r = d.per_second(t0 + 10s);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(*r, 50.0);
  // 500 jobs over the limit at 50/s: 10 s.
  EXPECT_EQ(d.retry_after_s(500, t0 + 10s), 10);
  // At least 1 s, at most 60 s.
  EXPECT_EQ(d.retry_after_s(1, t0 + 10s), 1);
  EXPECT_EQ(d.retry_after_s(1'000'000, t0 + 10s), 60);
}

TEST(DrainRate, OldSecondsLeaveTheWindow) {
  const auto t0 = DrainRate::Clock::now();
  DrainRate d(t0);
  d.record(t0 + 1s, 3000);
  EXPECT_TRUE(d.per_second(t0 + 20s));
  // 40 s later the burst is out of the 30 s window: no rate, the default wait.
  EXPECT_FALSE(d.per_second(t0 + 41s));
  EXPECT_EQ(d.retry_after_s(10, t0 + 41s), 5);
  // A bucket reused for a later second starts from zero.
  d.record(t0 + 31s, 30);
  EXPECT_DOUBLE_EQ(*d.per_second(t0 + 31s), 30.0 / 30.0);
}
