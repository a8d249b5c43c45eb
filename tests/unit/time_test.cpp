// util::rfc3339: the arithmetic formatter against gmtime_r + snprintf, over the whole
// range of four-digit years (and before 1970), plus fixed known instants.
#include "runq/util/time.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>
#include <string>

namespace {

std::string reference(std::int64_t us) {
  std::int64_t secs = us / 1'000'000, micros = us % 1'000'000;
  if (micros < 0) micros += 1'000'000, secs -= 1;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

}  // namespace

TEST(Rfc3339, KnownInstants) {
  EXPECT_EQ(runq::util::rfc3339(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(runq::util::rfc3339(1'795'896'658'786'415), "2026-11-28T20:10:58.786415Z");
  EXPECT_EQ(runq::util::rfc3339(951'782'400'000'001), "2000-02-29T00:00:00.000001Z");
  EXPECT_EQ(runq::util::rfc3339(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(runq::util::rfc3339(253'402'300'799'999'999), "9999-12-31T23:59:59.999999Z");
}

TEST(Rfc3339, MatchesGmtimeEverywhere) {
  std::mt19937_64 rng(42);
  // Year 0000 to 9999 in microseconds.
  std::uniform_int_distribution<std::int64_t> any(-62'167'219'200'000'000, 253'402'300'799'999'999);
  for (int i = 0; i < 200'000; ++i) {
    const std::int64_t us = any(rng);
    ASSERT_EQ(runq::util::rfc3339(us), reference(us)) << us;
  }
  // Every day boundary of four centuries around now, and a microsecond either side.
  for (std::int64_t day = -40'000; day < 110'000; ++day) {
    const std::int64_t us = day * 86'400'000'000;
    for (std::int64_t d : {-1, 0, 1}) ASSERT_EQ(runq::util::rfc3339(us + d), reference(us + d));
  }
}

TEST(Rfc3339, AppendsToWhatIsThere) {
  std::string s = "at ";
  runq::util::append_rfc3339(s, 0);
  EXPECT_EQ(s, "at 1970-01-01T00:00:00.000000Z");
}
