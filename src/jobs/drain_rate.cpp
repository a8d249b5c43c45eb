#include "runq/jobs/drain_rate.hpp"

#include <algorithm>
#include <cmath>

namespace runq::jobs {

DrainRate::DrainRate(Clock::time_point start) : start_(start) { second_.fill(-1); }

std::int64_t DrainRate::second_of(Clock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::seconds>(t - start_).count();
}

void DrainRate::record(Clock::time_point now, std::int64_t n) {
  const std::int64_t s = std::max<std::int64_t>(0, second_of(now));
  const auto i = static_cast<std::size_t>(s % kWindowS);
  std::lock_guard lock(mu_);
  if (second_[i] != s) {
    second_[i] = s;
    count_[i] = 0;
  }
  count_[i] += n;
}

std::optional<double> DrainRate::per_second(Clock::time_point now) const {
  const std::int64_t s = std::max<std::int64_t>(0, second_of(now));
  std::int64_t total = 0;
  {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < second_.size(); ++i)
      if (second_[i] >= 0 && second_[i] > s - kWindowS && second_[i] <= s) total += count_[i];
  }
  if (total <= 0) return std::nullopt;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double span = std::clamp(elapsed, 1.0, static_cast<double>(kWindowS));
  return static_cast<double>(total) / span;
}

int DrainRate::retry_after_s(std::int64_t excess, Clock::time_point now) const {
  auto rate = per_second(now);
  if (!rate) return 5;
  const double s = std::ceil(static_cast<double>(std::max<std::int64_t>(excess, 1)) / *rate);
  return static_cast<int>(std::clamp(s, 1.0, 60.0));
}

}  // namespace runq::jobs
