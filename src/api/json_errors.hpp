#pragma once
// Where and why a request body is not JSON, said the way FastAPI (Python's json module)
// says it: the byte offset and message of a json_invalid 422. Internal to the api layer.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace runq::api {

inline constexpr std::size_t kMaxJsonDepth = 128;  // deeper bodies are refused before parsing

// Offset of the first byte that nests deeper than kMaxJsonDepth, or npos.
std::size_t too_deep_at(std::string_view s);

// The 0-based byte offset of a syntax error and its message, the way Python's json
// reports them (falling back on nlohmann's own: 1-based, at the last byte it read).
std::pair<std::size_t, std::string> parse_error_position(const nlohmann::json::parse_error& e,
                                                         std::string_view body);

// Where the number nlohmann could not hold starts: its message quotes it
// ("number overflow parsing '1e400'"); 0 if it can't be found.
std::size_t overflow_offset(std::string_view what, std::string_view body);

}  // namespace runq::api
