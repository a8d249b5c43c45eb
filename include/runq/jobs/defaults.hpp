#pragma once
// The service's defaults and bounds, written once: `runq serve`'s flags (config/), the
// service's options (jobs/) and the submit checks (api/) all take them from here.
#include <cstdint>

namespace runq::jobs::defaults {

inline constexpr int kMaxConcurrent = 10;     // jobs running at once (worker threads)
inline constexpr int kTimeoutS = 3600;        // a job's running-time limit when its submit gives none
inline constexpr int kMaxTimeoutS = 86400;    // the largest timeout a submit may ask for
inline constexpr int kMaxRetries = 10;        // the most retries a job may have
inline constexpr std::int64_t kMaxQueued = 100'000;        // jobs waiting, then 429
inline constexpr std::int64_t kRetentionS = 7 * 24 * 3600;  // finished jobs kept this long
inline constexpr int kMaxAttempts = 3;        // starts interrupted by a crash, then failed

}  // namespace runq::jobs::defaults
