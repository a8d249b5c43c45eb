#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace runq::util {

// JSON text of `j` (json or ordered_json) that never throws: invalid UTF-8 in a string
// (an agent's raw output, say) becomes U+FFFD instead of an exception that would take a
// thread down.
template <class Json>
std::string json_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace runq::util
