#pragma once
// Reading the fields of a JSON request body, each refused the way pydantic refuses it:
// the type, loc and msg of a FastAPI 422 entry. Internal to the api layer.
#include "runq/api/validation_errors.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace runq::api {

inline const std::string kMsgMissing = "Field required";
inline const std::string kMsgString = "Input should be a valid string";
inline const std::string kMsgInt = "Input should be a valid integer";
inline const std::string kMsgIntParsing =
    "Input should be a valid integer, unable to parse string as an integer";
inline const std::string kMsgIntFraction =
    "Input should be a valid integer, got a number with a fractional part";
inline const std::string kMsgDict = "Input should be a valid dictionary";
inline const std::string kMsgModel =
    "Input should be a valid dictionary or object to extract fields from";

// ["body", field]
inline Json body_loc(std::string_view field) { return Json::array({"body", field}); }

enum class IntResult { ok, not_int, fractional, unparsable };

// A JSON number, or a string holding an integer (pydantic's lax mode: see
// parse_int_string), as an integer clamped to 64 bits. A string that is no integer is
// `unparsable` (int_parsing); booleans, null and containers are `not_int` (int_type).
IntResult as_int(const nlohmann::json& v, long long& out);

// pydantic-core's str -> int: surrounding whitespace dropped, then an optional sign and
// digits; failing that, the same with a fraction of zeros ("120.0", "120."); failing
// that, the same with single underscores inside ("1_000"). Clamped to 64 bits.
bool parse_int_string(std::string_view s, long long& out);

// Checks a string's content: valid UTF-8 and no NUL. Adds a value_error if not.
bool check_text(const std::string& s, const Json& loc, ValidationErrors& errors);

// The fields of one body object; each reader adds its 422 entries to `errors`.
class BodyChecker {
 public:
  BodyChecker(const nlohmann::json& body, ValidationErrors& errors)
      : body_(body), errors_(errors) {}

  const nlohmann::json* find(std::string_view name) const {
    auto it = body_.find(name);
    return it == body_.end() ? nullptr : &*it;
  }

  // Required string.
  std::optional<std::string> required_string(std::string_view name);
  // string|null. `present` tells whether the field was given at all. Returns false on error.
  bool optional_string(std::string_view name, std::optional<std::string>& out,
                       bool* present = nullptr);
  // object|null (null or absent -> {}).
  bool optional_object(std::string_view name, nlohmann::json& out);
  // int (or int|null when nullable) within [min, max]. Absent (or null when nullable)
  // leaves `out` as it is.
  bool int_in_range(std::string_view name, bool nullable, long long min, long long max,
                    long long& out, const std::string& range_msg);

  ValidationErrors& errors() { return errors_; }

 private:
  const nlohmann::json& body_;
  ValidationErrors& errors_;
};

}  // namespace runq::api
