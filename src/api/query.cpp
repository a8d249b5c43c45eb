#include "runq/api/query.hpp"

#include <limits>

namespace runq::api {

namespace {

const std::string kMsgIntParse =
    "Input should be a valid integer, unable to parse string as an integer";

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

QueryParams parse_query(std::string_view query) {
  QueryParams params;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      params.emplace_back(percent_decode(part), std::string());
    else
      params.emplace_back(percent_decode(part.substr(0, eq)), percent_decode(part.substr(eq + 1)));
  }
  return params;
}

const std::string* query_value(const QueryParams& params, std::string_view name) {
  const std::string* found = nullptr;
  for (const auto& [k, v] : params)
    if (k == name) found = &v;
  return found;
}

std::optional<long long> query_int(const std::string& value, std::string_view name,
                                   long long min, long long max, ValidationErrors& errors) {
  Json loc = Json::array({"query", name});
  std::string_view v = value;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  bool neg = false;
  if (!v.empty() && (v.front() == '+' || v.front() == '-')) {
    neg = v.front() == '-';
    v.remove_prefix(1);
  }
  bool ok = !v.empty();
  bool overflow = false;
  long long n = 0;
  for (char ch : v) {
    if (ch < '0' || ch > '9') {
      ok = false;
      break;
    }
    if (n > (std::numeric_limits<long long>::max() - (ch - '0')) / 10) overflow = true;
    else n = n * 10 + (ch - '0');
  }
  if (!ok) {
    errors.add("int_type", std::move(loc), kMsgIntParse, Json(value));
    return std::nullopt;
  }
  if (neg) n = -n;
  if (overflow || n < min || n > max) {
    errors.add("value_error", std::move(loc),
               "Value error, " + std::string(name) + " must be between " + std::to_string(min) +
                   " and " + std::to_string(max),
               Json(value));
    return std::nullopt;
  }
  return n;
}

}  // namespace runq::api
