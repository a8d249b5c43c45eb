#include "runq/util/time.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace runq::util {

std::int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t steady_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

namespace {

// Writes n as `width` digits (zero-padded) ending just before `end`.
void put_digits(char* end, unsigned n, int width) {
  for (int i = 0; i < width; ++i, n /= 10) *--end = static_cast<char>('0' + n % 10);
}

// gmtime_r + snprintf, for years beyond 0000..9999.
std::size_t format_rfc3339_slow(char* out, std::int64_t unix_us) {
  std::int64_t secs = unix_us / 1'000'000;
  std::int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  const int n = std::snprintf(out, kRfc3339Max, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                              tm.tm_min, tm.tm_sec, static_cast<long long>(micros));
  return n < 0 ? 0 : std::min(static_cast<std::size_t>(n), kRfc3339Max - 1);
}

}  // namespace

// The status GET renders up to four of these, and every log line one: arithmetic instead
// of gmtime_r + snprintf (days to civil date: Howard Hinnant's algorithm, public domain).
std::size_t format_rfc3339(char* out, std::int64_t unix_us) {
  std::int64_t secs = unix_us / 1'000'000;
  std::int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    secs -= 1;
  }
  std::int64_t days = secs / 86'400;
  std::int64_t sod = secs % 86'400;
  if (sod < 0) {
    sod += 86'400;
    days -= 1;
  }
  const std::int64_t z = days + 719'468;
  const std::int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const auto doe = static_cast<unsigned>(z - era * 146'097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2);
  if (year < 0 || year > 9999) return format_rfc3339_slow(out, unix_us);
  char* const buf = out;  // "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"
  put_digits(buf + 4, static_cast<unsigned>(year), 4);
  buf[4] = '-';
  put_digits(buf + 7, month, 2);
  buf[7] = '-';
  put_digits(buf + 10, day, 2);
  buf[10] = 'T';
  put_digits(buf + 13, static_cast<unsigned>(sod / 3600), 2);
  buf[13] = ':';
  put_digits(buf + 16, static_cast<unsigned>(sod / 60 % 60), 2);
  buf[16] = ':';
  put_digits(buf + 19, static_cast<unsigned>(sod % 60), 2);
  buf[19] = '.';
  put_digits(buf + 26, static_cast<unsigned>(micros), 6);
  buf[26] = 'Z';
  return 27;
}

void append_rfc3339(std::string& out, std::int64_t unix_us) {
  char buf[kRfc3339Max];
  out.append(buf, format_rfc3339(buf, unix_us));
}

std::string rfc3339(std::int64_t unix_us) {
  std::string out;
  append_rfc3339(out, unix_us);
  return out;
}

}  // namespace runq::util
