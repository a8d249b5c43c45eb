#pragma once
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

}  // namespace runq::util
