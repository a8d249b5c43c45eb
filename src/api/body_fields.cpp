#include "body_fields.hpp"

#include "runq/api/validation.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

namespace runq::api {

using nlohmann::json;

namespace {

// An optional sign and one or more ASCII digits, nothing else; clamped to 64 bits
// (pydantic reads a longer one as a big int, which the range checks then refuse).
bool parse_plain_int(std::string_view s, long long& out) {
  bool neg = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  unsigned long long n = 0;
  constexpr unsigned long long kCap = 1ULL << 63;  // |LLONG_MIN|
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    n = n > (kCap - (ch - '0')) / 10 ? kCap : n * 10 + (ch - '0');
  }
  if (neg) out = n >= kCap ? std::numeric_limits<long long>::min() : -static_cast<long long>(n);
  else out = n >= kCap ? std::numeric_limits<long long>::max() : static_cast<long long>(n);
  return true;
}

}  // namespace

bool parse_int_string(std::string_view s, long long& out) {
  constexpr std::string_view ws = " \t\n\v\f\r";
  auto first = s.find_first_not_of(ws);
  if (first == std::string_view::npos) return false;
  s = s.substr(first, s.find_last_not_of(ws) - first + 1);
  if (parse_plain_int(s, out)) return true;
  // The three tries of pydantic-core's str_as_int, in its order: so "1_000.0" is refused.
  if (auto dot = s.find('.'); dot != std::string_view::npos &&
                              s.find_first_not_of('0', dot + 1) == std::string_view::npos)
    return parse_plain_int(s.substr(0, dot), out);
  if (s.find('_') == std::string_view::npos || s.front() == '_' || s.back() == '_' ||
      s.find("__") != std::string_view::npos)
    return false;
  std::string digits;
  for (char ch : s)
    if (ch != '_') digits += ch;
  return parse_plain_int(digits, out);
}

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
  if (v.is_string())  // lax mode, as FastAPI's pydantic v2 reads a JSON body
    return parse_int_string(v.get_ref<const std::string&>(), out) ? IntResult::ok
                                                                  : IntResult::unparsable;
  return IntResult::not_int;  // booleans, null, containers
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
    case IntResult::unparsable:
      errors_.add("int_parsing", body_loc(name), kMsgIntParsing, Json(*v));
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
