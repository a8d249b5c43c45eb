#pragma once
// Query strings: percent-decoding, (name, value) pairs, integer parameters.
#include "runq/api/validation_errors.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runq::api {

// Percent-decodes a query component ('+' is a space). Bad escapes are kept as written.
std::string percent_decode(std::string_view s, bool plus_is_space = true);

// Query string -> decoded (name, value) pairs in order.
using QueryParams = std::vector<std::pair<std::string, std::string>>;
QueryParams parse_query(std::string_view query);
// The last value given for `name` (FastAPI's behaviour for a scalar), or nullptr.
const std::string* query_value(const QueryParams& params, std::string_view name);

// Parses an integer query parameter within [min, max]. On failure adds a 422 entry
// with loc ["query", name] and returns nullopt.
std::optional<long long> query_int(const std::string& value, std::string_view name,
                                   long long min, long long max, ValidationErrors& errors);

}  // namespace runq::api
