#include "runq/api/validation.hpp"
#include "runq/util/json_text.hpp"

#include "runq/util/ids.hpp"
#include "runq/webhooks/url_policy.hpp"
#include "runq/util/ascii.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>

namespace runq::api {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxJsonDepth = 128;  // deeper bodies are refused before parsing

const std::string kMsgMissing = "Field required";
const std::string kMsgString = "Input should be a valid string";
const std::string kMsgInt = "Input should be a valid integer";
const std::string kMsgIntFraction =
    "Input should be a valid integer, got a number with a fractional part";
const std::string kMsgIntParse =
    "Input should be a valid integer, unable to parse string as an integer";
const std::string kMsgDict = "Input should be a valid dictionary";
const std::string kMsgModel = "Input should be a valid dictionary or object to extract fields from";

Json body_loc(std::string_view field) { return Json::array({"body", field}); }

// Code points in a valid UTF-8 string.
std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// Offset of the first byte that nests deeper than kMaxJsonDepth, or npos.
std::size_t too_deep_at(std::string_view s) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

// The part of nlohmann's parse error message after "parse error at line L, column C: ".
std::string parse_error_reason(const std::string& what) {
  auto pos = what.find(": ");
  auto col = what.find("column ");
  if (col != std::string::npos) {
    auto p = what.find(": ", col);
    if (p != std::string::npos) return what.substr(p + 2);
  }
  return pos == std::string::npos ? what : what.substr(pos + 2);
}

// Where Python's json module (which FastAPI uses) reports a syntax error, as a byte
// offset: a re-scan that follows CPython 3.11's scanner (json/scanner.c) rule by rule.
// Only run on bodies nlohmann already refused; nesting is bounded by too_deep_at().
class PyJsonErrorFinder {
 public:
  explicit PyJsonErrorFinder(std::string_view s) : s_(s) {}

  // The offset Python would report, or nullopt if this scan finds nothing wrong (for
  // what only nlohmann refuses: lone surrogates, NaN, invalid UTF-8 ...).
  std::optional<std::size_t> find() {
    std::size_t end = value(ws(0));
    if (end == npos) return err_;
    end = ws(end);
    if (end != s_.size()) {
      msg_ = "Extra data";
      return end;
    }
    return std::nullopt;
  }

 private:
  static constexpr std::size_t npos = std::string_view::npos;
  static constexpr const char* kExpectingValue = "Expecting value";

  std::size_t fail(std::size_t at, const char* msg) {
    err_ = at;
    msg_ = msg;
    return npos;
  }
  bool is_ws(std::size_t i) const {
    return i < s_.size() && (s_[i] == ' ' || s_[i] == '\t' || s_[i] == '\n' || s_[i] == '\r');
  }
  bool is_digit(std::size_t i) const { return i < s_.size() && s_[i] >= '0' && s_[i] <= '9'; }
  bool at(std::size_t i, char c) const { return i < s_.size() && s_[i] == c; }
  std::size_t ws(std::size_t i) const {
    while (is_ws(i)) ++i;
    return i;
  }

  std::size_t value(std::size_t idx) {
    if (idx >= s_.size()) return fail(idx, kExpectingValue);
    switch (s_[idx]) {
      case '"': return string(idx + 1);
      case '{': return object(idx + 1);
      case '[': return array(idx + 1);
      case 'n': return s_.substr(idx, 4) == "null" ? idx + 4 : fail(idx, kExpectingValue);
      case 't': return s_.substr(idx, 4) == "true" ? idx + 4 : fail(idx, kExpectingValue);
      case 'f': return s_.substr(idx, 5) == "false" ? idx + 5 : fail(idx, kExpectingValue);
      default: return number(idx);
    }
  }

  std::size_t number(std::size_t start) {
    std::size_t i = start;
    if (at(i, '-')) ++i;
    if (i < s_.size() && s_[i] >= '1' && s_[i] <= '9') {
      while (is_digit(i)) ++i;
    } else if (at(i, '0')) {
      ++i;
    } else {
      return fail(start, kExpectingValue);
    }
    if (at(i, '.') && is_digit(i + 1)) {
      i += 2;
      while (is_digit(i)) ++i;
    }
    if (at(i, 'e') || at(i, 'E')) {
      std::size_t j = i + 1;
      if (at(j, '-') || at(j, '+')) ++j;
      if (is_digit(j)) {
        while (is_digit(j)) ++j;
        i = j;
      }
    }
    return i;
  }

  std::size_t string(std::size_t end) {
    const std::size_t begin = end - 1;
    for (;;) {
      std::size_t next = end;
      while (next < s_.size() && s_[next] != '"' && s_[next] != '\\') {
        if (static_cast<unsigned char>(s_[next]) <= 0x1f) return fail(next, "Invalid control character at");
        ++next;
      }
      if (next >= s_.size()) return fail(begin, "Unterminated string starting at");
      if (s_[next] == '"') return next + 1;
      ++next;  // past the backslash
      if (next >= s_.size()) return fail(begin, "Unterminated string starting at");
      char c = s_[next];
      if (c != 'u') {
        if (std::string_view("\"\\/bfnrt").find(c) == std::string_view::npos)
          return fail(next - 1, "Invalid \\escape");
        end = next + 1;
        continue;
      }
      std::size_t hex_end = next + 5;
      if (hex_end >= s_.size()) return fail(next, "Invalid \\uXXXX escape");
      for (std::size_t k = next + 1; k < hex_end; ++k)
        if (!std::isxdigit(static_cast<unsigned char>(s_[k])))
          return fail(next, "Invalid \\uXXXX escape");
      end = hex_end;
    }
  }

  std::size_t object(std::size_t idx) {
    idx = ws(idx);
    if (at(idx, '}')) return idx + 1;
    for (;;) {
      if (!at(idx, '"')) return fail(idx, "Expecting property name enclosed in double quotes");
      idx = string(idx + 1);
      if (idx == npos) return npos;
      idx = ws(idx);
      if (!at(idx, ':')) return fail(idx, "Expecting ':' delimiter");
      idx = value(ws(idx + 1));
      if (idx == npos) return npos;
      idx = ws(idx);
      if (at(idx, '}')) return idx + 1;
      if (!at(idx, ',')) return fail(idx, "Expecting ',' delimiter");
      idx = ws(idx + 1);
    }
  }

  std::size_t array(std::size_t idx) {
    idx = ws(idx);
    if (at(idx, ']')) return idx + 1;
    for (;;) {
      idx = value(idx);
      if (idx == npos) return npos;
      idx = ws(idx);
      if (at(idx, ']')) return idx + 1;
      if (!at(idx, ',')) return fail(idx, "Expecting ',' delimiter");
      idx = ws(idx + 1);
    }
  }

  std::string_view s_;
  std::size_t err_ = 0;
  const char* msg_ = "";

 public:
  const char* message() const { return msg_; }
};

// The 0-based byte offset of a syntax error and its message, the way Python's json
// reports them (falling back on nlohmann's own: 1-based, at the last byte it read).
std::pair<std::size_t, std::string> parse_error_position(const json::parse_error& e,
                                                         std::string_view body) {
  PyJsonErrorFinder finder(body);
  if (auto pos = finder.find()) return {std::min(*pos, body.size()), finder.message()};
  std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
  return {std::min(offset, body.size()), parse_error_reason(e.what())};
}

// Where the number nlohmann could not hold starts: its message quotes it
// ("number overflow parsing '1e400'"); 0 if it can't be found.
std::size_t overflow_offset(std::string_view what, std::string_view body) {
  auto open = what.rfind("parsing '");
  if (open == std::string_view::npos) return 0;
  open += 9;
  auto close = what.find('\'', open);
  if (close == std::string_view::npos || close == open) return 0;
  auto at = body.find(what.substr(open, close - open));
  return at == std::string_view::npos ? 0 : at;
}

enum class IntResult { ok, not_int, fractional };

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

// Checks a string's content: valid UTF-8 and no NUL. Adds a value_error if not.
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

class BodyChecker {
 public:
  BodyChecker(const json& body, ValidationErrors& errors) : body_(body), errors_(errors) {}

  const json* find(std::string_view name) const {
    auto it = body_.find(name);
    return it == body_.end() ? nullptr : &*it;
  }

  // Required string.
  std::optional<std::string> required_string(std::string_view name) {
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

  // string|null. `present` tells whether the field was given at all. Returns false on error.
  bool optional_string(std::string_view name, std::optional<std::string>& out,
                       bool* present = nullptr) {
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

  // object|null (null or absent -> {}).
  bool optional_object(std::string_view name, json& out) {
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

  // int (or int|null when nullable) within [min, max]. Absent (or null when nullable)
  // leaves `out` as it is.
  bool int_in_range(std::string_view name, bool nullable, long long min, long long max,
                    long long& out, const std::string& range_msg) {
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

  ValidationErrors& errors() { return errors_; }

 private:
  const json& body_;
  ValidationErrors& errors_;
};

// An absolute http(s) URL with a host (and a numeric port, if any); no spaces or controls.
bool is_http_url(std::string_view url) {
  if (url.size() > kMaxWebhookUrlLen) return false;
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) return false;
  std::string_view rest;
  if (util::istarts_with(url, "http://")) rest = url.substr(7);
  else if (util::istarts_with(url, "https://")) rest = url.substr(8);
  else return false;
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
      if (port.empty()) return false;
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (host.empty()) return false;
  if (!port.empty()) {
    if (port.size() > 5) return false;
    long v = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    if (v < 1 || v > 65535) return false;
  }
  return true;
}

// Checks an idempotency key's text; adds an error at `loc` if bad.
bool check_idempotency_key(const std::string& key, const Json& loc, ValidationErrors& errors) {
  if (!check_text(key, loc, errors)) return false;
  std::size_t len = utf8_length(key);
  if (len == 0 || len > kMaxIdempotencyKeyLen) {
    errors.add("value_error", loc,
               "Value error, idempotency_key must be 1 to " +
                   std::to_string(kMaxIdempotencyKeyLen) + " characters",
               Json(key));
    return false;
  }
  return true;
}

}  // namespace

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

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return false;
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

std::optional<std::string> scoped_idempotency_key(std::string_view scope,
                                                  const std::optional<std::string>& session_id,
                                                  std::string_view key) {
  if (scope == "none") return std::nullopt;
  if (scope == "session") {
    const std::string session = session_id.value_or("");
    std::string out = "s:";
    out += std::to_string(session.size());
    out += ':';
    out += session;
    out += ':';
    out += key;
    return out;
  }
  std::string out = "g:";
  out += key;
  return out;
}

std::variant<jobs::Job, ValidationErrors> parse_submit(std::string_view body,
                                                       const std::string* idempotency_header,
                                                       const SubmitLimits& limits) {
  ValidationErrors errors;

  // The Idempotency-Key header is checked whatever the body holds.
  if (idempotency_header)
    check_idempotency_key(*idempotency_header, Json::array({"header", "idempotency-key"}),
                          errors);

  // 1. JSON text -> value.
  if (auto deep = too_deep_at(body); deep != std::string_view::npos) {
    errors.add("json_invalid", Json::array({"body", deep}), "JSON decode error",
               Json::object());
    errors.detail.back()["ctx"] = {{"error", "nesting too deep"}};
    return errors;
  }
  json parsed;
  if (!body.empty()) {
    try {
      parsed = json::parse(body);
    } catch (const json::parse_error& e) {
      auto [offset, reason] = parse_error_position(e, body);
      errors.add("json_invalid", Json::array({"body", offset}), "JSON decode error",
                 Json::object());
      errors.detail.back()["ctx"] = {{"error", std::move(reason)}};
      return errors;
    } catch (const json::exception& e) {
      // Not a syntax error but a value nlohmann can't hold: a number beyond a double
      // (1e400: out_of_range 406). Python reads it as infinity, which no field accepts.
      // A 422 like any undecodable body, not an exception (that would be a 500).
      errors.add("json_invalid", Json::array({"body", overflow_offset(e.what(), body)}),
                 "JSON decode error", Json::object());
      errors.detail.back()["ctx"] = {{"error", "Number out of range"}};
      return errors;
    }
  }
  if (body.empty()) {  // FastAPI: no body at all is a missing body
    errors.add("missing", Json::array({"body"}), kMsgMissing, Json(nullptr));
    return errors;
  }
  if (!parsed.is_object()) {
    errors.add("dict_type", Json::array({"body"}), kMsgModel, Json(parsed));
    return errors;
  }

  // 2. Fields, in the order of API.md's table (errors come out in this order).
  BodyChecker c(parsed, errors);
  jobs::Job job;

  if (auto prompt = c.required_string("prompt")) job.prompt = std::move(*prompt);
  c.optional_string("agent_file", job.agent_file);
  c.optional_string("agent_yaml", job.agent_yaml);
  c.optional_string("recipe_name", job.recipe_name);
  c.optional_object("recipe_config", job.recipe_config);
  c.optional_object("config", job.config);
  c.optional_string("framework", job.framework);  // absent: "praisonai"; null: null

  if (c.optional_string("webhook_url", job.webhook_url) && job.webhook_url) {
    if (!is_http_url(*job.webhook_url)) {
      errors.add("value_error", body_loc("webhook_url"),
                 "Value error, webhook_url must be an absolute http:// or https:// URL",
                 Json(*job.webhook_url));
      job.webhook_url.reset();
    } else if (auto reason =
                   webhooks::refuse_url(*job.webhook_url, limits.allow_private_webhooks)) {
      errors.add("value_error", body_loc("webhook_url"), "Value error, " + *reason,
                 Json(*job.webhook_url));
      job.webhook_url.reset();
    }
  }

  long long timeout = 0;
  {
    const json* v = c.find("timeout");
    long long n = 0;
    if (v && !v->is_null()) {
      switch (as_int(*v, n)) {
        case IntResult::not_int:
          errors.add("int_type", body_loc("timeout"), kMsgInt, Json(*v));
          break;
        case IntResult::fractional:
          errors.add("int_type", body_loc("timeout"), kMsgIntFraction, Json(*v));
          break;
        case IntResult::ok:
          if (n != 0 && (n < 1 || n > limits.max_timeout_s))
            errors.add("value_error", body_loc("timeout"),
                       "Value error, timeout must be between 1 and " +
                           std::to_string(limits.max_timeout_s) + " seconds",
                       Json(*v));
          else
            timeout = n;
          break;
      }
    }
  }
  job.timeout_s = timeout > 0 ? static_cast<int>(timeout) : limits.default_timeout_s;

  c.optional_string("session_id", job.session_id);

  std::optional<std::string> body_key;
  c.optional_string("idempotency_key", body_key);
  if (body_key && !check_idempotency_key(*body_key, body_loc("idempotency_key"), errors))
    body_key.reset();

  std::optional<std::string> scope;
  if (c.optional_string("idempotency_scope", scope) && scope && *scope != "none" &&
      *scope != "session" && *scope != "global") {
    errors.add("value_error", body_loc("idempotency_scope"),
               "Value error, idempotency_scope must be one of 'none', 'session', 'global'",
               Json(*scope));
  }

  long long priority = 0;
  c.int_in_range("priority", false, kMinPriority, kMaxPriority, priority,
                 "priority must be between " + std::to_string(kMinPriority) + " and " +
                     std::to_string(kMaxPriority));
  job.priority = static_cast<int>(priority);

  if (const json* md = c.find("metadata")) {
    if (!md->is_object()) {
      errors.add("dict_type", body_loc("metadata"), kMsgDict, Json(*md));
    } else if (md->size() > kMaxMetadataKeys) {
      errors.add("value_error", body_loc("metadata"),
                 "Value error, metadata may have at most " + std::to_string(kMaxMetadataKeys) +
                     " keys",
                 Json(*md));
    } else {
      bool ok = true;
      std::optional<std::string> value_problem;  // a validator error: reported once
      for (auto it = md->begin(); it != md->end(); ++it) {
        const std::string& k = it.key();
        if (!value_problem) {
          if (!is_valid_utf8(k) || k.find('\0') != std::string::npos)
            value_problem = "metadata keys must be valid UTF-8 without NUL characters";
          else if (utf8_length(k) > kMaxMetadataKeyLen)
            value_problem = "metadata keys may have at most " +
                            std::to_string(kMaxMetadataKeyLen) + " characters";
        }
        if (!it.value().is_string()) {
          errors.add("string_type", Json::array({"body", "metadata", k}), kMsgString,
                     Json(it.value()));
          ok = false;
          continue;
        }
        const auto& v = it.value().get_ref<const std::string&>();
        if (!value_problem) {
          if (!is_valid_utf8(v) || v.find('\0') != std::string::npos)
            value_problem = "metadata values must be valid UTF-8 without NUL characters";
          else if (utf8_length(v) > kMaxMetadataValueLen)
            value_problem = "metadata values may have at most " +
                            std::to_string(kMaxMetadataValueLen) + " characters";
        }
      }
      if (value_problem && ok) {  // like a validator: runs once the types are right
        errors.add("value_error", body_loc("metadata"), "Value error, " + *value_problem,
                   Json(*md));
        ok = false;
      }
      if (ok) job.metadata = *md;
    }
  }

  long long max_retries = 0;
  c.int_in_range("max_retries", false, 0, kMaxRetries, max_retries,
                 "max_retries must be between 0 and " + std::to_string(kMaxRetries));
  job.max_retries = static_cast<int>(max_retries);

  if (!errors.empty()) return errors;

  // 3. Idempotency: the header wins over the body; scope defaults to global.
  const std::string* key = idempotency_header ? idempotency_header
                           : body_key         ? &*body_key
                                              : nullptr;
  if (key) job.idempotency_key = scoped_idempotency_key(scope.value_or("global"), job.session_id, *key);

  // 4. The request hash: the parsed request (every field with its effective value, unknown
  // fields and the idempotency fields left out), dumped with sorted keys.
  json canon = json::object();
  auto opt = [](const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); };
  canon["prompt"] = job.prompt;
  canon["agent_file"] = opt(job.agent_file);
  canon["agent_yaml"] = opt(job.agent_yaml);
  canon["recipe_name"] = opt(job.recipe_name);
  canon["recipe_config"] = job.recipe_config;
  canon["config"] = job.config;
  canon["framework"] = opt(job.framework);
  canon["webhook_url"] = opt(job.webhook_url);
  canon["timeout"] = timeout;  // 0 = the server default
  canon["session_id"] = opt(job.session_id);
  canon["priority"] = job.priority;
  canon["metadata"] = job.metadata;
  canon["max_retries"] = job.max_retries;
  job.request_hash = util::sha256_hex(util::json_text(canon));

  return job;
}

bool is_json_content_type(const std::string* content_type) {
  if (!content_type) return true;
  std::string_view v = *content_type;
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return true;
  std::string lower(v);
  for (auto& ch : lower)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  if (lower == "application/json") return true;
  constexpr std::string_view app = "application/", suffix = "+json";
  return lower.size() > app.size() + suffix.size() && lower.starts_with(app) &&
         lower.ends_with(suffix) &&
         lower.find('/', app.size()) == std::string::npos;
}

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
