#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace runq::jobs {

// How fast the queue drains: jobs claimed per second over the last kWindowS seconds
// (or since start, when that is shorter). Per-second buckets, so recording is O(1)
// whatever the rate. Thread-safe. Times are parameters so tests can drive the clock.
class DrainRate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kWindowS = 30;

  explicit DrainRate(Clock::time_point start = Clock::now());

  // `n` jobs left the queue (were claimed) at `now`.
  void record(Clock::time_point now = Clock::now(), std::int64_t n = 1);

  // Jobs per second over the window; nullopt if none were claimed in it.
  std::optional<double> per_second(Clock::time_point now = Clock::now()) const;

  // Seconds a refused submitter should wait for `excess` jobs to drain:
  // clamp(ceil(excess / rate), 1, 60), or 5 when there is no rate yet.
  int retry_after_s(std::int64_t excess, Clock::time_point now = Clock::now()) const;

 private:
  std::int64_t second_of(Clock::time_point t) const;

  Clock::time_point start_;
  mutable std::mutex mu_;
  std::array<std::int64_t, kWindowS> second_{};  // which second a bucket holds
  std::array<std::int64_t, kWindowS> count_{};
};

}  // namespace runq::jobs
