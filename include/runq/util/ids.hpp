#pragma once
#include <string>
#include <string_view>

namespace runq::util {

// "run_" + 16 lowercase hex digits from OpenSSL's CSPRNG.
std::string new_job_id();

// True when s looks like an id new_job_id() could have made (any hex length >= 12).
bool is_job_id(std::string_view s);

// Lowercase hex SHA-256 of data.
std::string sha256_hex(std::string_view data);

}  // namespace runq::util
