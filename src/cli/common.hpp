#pragma once
// What every client command shares: exit statuses, the connection options, bad usage.
#include <stdexcept>
#include <string>

namespace runq::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

inline constexpr const char* kDefaultApiUrl = "http://127.0.0.1:8005";

// Bad usage found after CLI11 parsed the flags (bad JSON, bad K=V, bad URL).
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The options every command takes.
struct Common {
  bool json = false;
  std::string api_url = kDefaultApiUrl;
  std::string api_key;
};

}  // namespace runq::cli
