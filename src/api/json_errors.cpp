// Where and why a body is not JSON, said the way FastAPI (Python's json module) says it.
#include "json_errors.hpp"

#include <algorithm>
#include <optional>

namespace runq::api {

using nlohmann::json;

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

namespace {

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

}  // namespace

std::pair<std::size_t, std::string> parse_error_position(const json::parse_error& e,
                                                         std::string_view body) {
  PyJsonErrorFinder finder(body);
  if (auto pos = finder.find()) return {std::min(*pos, body.size()), finder.message()};
  std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
  return {std::min(offset, body.size()), parse_error_reason(e.what())};
}

std::size_t overflow_offset(std::string_view what, std::string_view body) {
  auto open = what.rfind("parsing '");
  if (open == std::string_view::npos) return 0;
  open += 9;
  auto close = what.find('\'', open);
  if (close == std::string_view::npos || close == open) return 0;
  auto at = body.find(what.substr(open, close - open));
  return at == std::string_view::npos ? 0 : at;
}

}  // namespace runq::api
