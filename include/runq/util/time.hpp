#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace runq::util {

// Wall-clock time in microseconds since the Unix epoch (what timestamps store).
std::int64_t now_us();

// Monotonic time in microseconds (for deadlines and durations only).
std::int64_t steady_us();

// RFC 3339 UTC with microseconds and a Z: "2026-11-28T20:10:58.786415Z".
std::string rfc3339(std::int64_t unix_us);
void append_rfc3339(std::string& out, std::int64_t unix_us);
// The same into `out` (room for kRfc3339Max chars, 27 of them but for years beyond
// 0000..9999); returns how many it wrote.
inline constexpr std::size_t kRfc3339Max = 64;
std::size_t format_rfc3339(char* out, std::int64_t unix_us);

}  // namespace runq::util
