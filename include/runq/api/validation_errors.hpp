#pragma once
// FastAPI's 422 shape: {"detail":[{"type","loc","msg","input"}...]}.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace runq::api {

using Json = nlohmann::ordered_json;

// A list of FastAPI-shaped validation errors (the array that goes under "detail").
struct ValidationErrors {
  Json detail = Json::array();
  bool empty() const { return detail.empty(); }
  void add(std::string_view type, Json loc, std::string msg, Json input);
};

// {"detail":[...]} as text.
std::string validation_error_body(const ValidationErrors& errors);

}  // namespace runq::api
