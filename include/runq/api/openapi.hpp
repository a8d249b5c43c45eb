#pragma once
#include <string_view>

namespace runq::api {

// The OpenAPI 3.1 document of the API (docs/openapi.json, compiled in), served as is.
std::string_view openapi_json();

}  // namespace runq::api
