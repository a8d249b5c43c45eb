#include "body_fields.hpp"

#include "runq/api/validation.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

namespace runq::api {

using nlohmann::json;

IntResult as_int(const json& v, long long& out) {
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    out = u > static_cast<std::uint64_t>(std::numeric_limits<long long>::max())
              ? std::numeric_limits<long long>::max()
              : static_cast<long long>(u);
    return IntResult::ok;
  }
  if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
    return IntResult::ok;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d)) return IntResult::not_int;
    if (d != std::floor(d)) return IntResult::fractional;
    if (d >= 9.2e18) out = std::numeric_limits<long long>::max();
    else if (d <= -9.2e18) out = std::numeric_limits<long long>::min();
    else out = static_cast<long long>(d);
    return IntResult::ok;
  }
  return IntResult::not_int;  // booleans, strings, null, containers
}

bool check_text(const std::string& s, const Json& loc, ValidationErrors& errors) {
  if (!is_valid_utf8(s)) {
    errors.add("value_error", loc, "Value error, string must be valid UTF-8", Json(s));
    return false;
  }
  if (s.find('\0') != std::string::npos) {
    errors.add("value_error", loc, "Value error, string must not contain NUL characters",
               Json(s));
    return false;
  }
  return true;
}

std::optional<std::string> BodyChecker::required_string(std::string_view name) {
  const json* v = find(name);
  if (!v) {
    errors_.add("missing", body_loc(name), kMsgMissing, Json(body_));
    return std::nullopt;
  }
  if (!v->is_string()) {
    errors_.add("string_type", body_loc(name), kMsgString, Json(*v));
    return std::nullopt;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (!check_text(s, body_loc(name), errors_)) return std::nullopt;
  return s;
}

bool BodyChecker::optional_string(std::string_view name, std::optional<std::string>& out,
                                  bool* present) {
  const json* v = find(name);
  if (present) *present = v != nullptr;
  if (!v || v->is_null()) {
    if (v) out.reset();
    return true;
  }
  if (!v->is_string()) {
    errors_.add("string_type", body_loc(name), kMsgString, Json(*v));
    return false;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (!check_text(s, body_loc(name), errors_)) return false;
  out = s;
  return true;
}

bool BodyChecker::optional_object(std::string_view name, json& out) {
  const json* v = find(name);
  if (!v || v->is_null()) {
    out = json::object();
    return true;
  }
  if (!v->is_object()) {
    errors_.add("dict_type", body_loc(name), kMsgDict, Json(*v));
    return false;
  }
  out = *v;
  return true;
}

bool BodyChecker::int_in_range(std::string_view name, bool nullable, long long min,
                               long long max, long long& out, const std::string& range_msg) {
  const json* v = find(name);
  if (!v || (nullable && v->is_null())) return true;
  long long n = 0;
  switch (as_int(*v, n)) {
    case IntResult::not_int:
      errors_.add("int_type", body_loc(name), kMsgInt, Json(*v));
      return false;
    case IntResult::fractional:
      errors_.add("int_type", body_loc(name), kMsgIntFraction, Json(*v));
      return false;
    case IntResult::ok: break;
  }
  if (n < min || n > max) {
    errors_.add("value_error", body_loc(name), "Value error, " + range_msg, Json(*v));
    return false;
  }
  out = n;
  return true;
}

}  // namespace runq::api
