#include "runq/api/validation_errors.hpp"

#include "runq/util/json_text.hpp"

#include <utility>

namespace runq::api {

void ValidationErrors::add(std::string_view type, Json loc, std::string msg, Json input) {
  Json e = Json::object();
  e["type"] = type;
  e["loc"] = std::move(loc);
  e["msg"] = std::move(msg);
  e["input"] = std::move(input);
  detail.push_back(std::move(e));
}

std::string validation_error_body(const ValidationErrors& errors) {
  Json body = Json::object();
  body["detail"] = errors.detail;
  return util::json_text(body);
}

}  // namespace runq::api
