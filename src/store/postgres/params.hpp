#pragma once
// Private to the PostgreSQL store: the text-format parameters of one statement.
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runq::store::postgres {

// Parameters $1, $2, ... in order, as text; nullopt is SQL NULL. PostgreSQL's text
// cannot hold a NUL byte (and a text-format parameter would end at it): a NUL becomes
// U+FFFD, as invalid UTF-8 does elsewhere in runq. (The API refuses NUL in a request; only
// an agent's raw output could carry one.)
class Params {
 public:
  Params& add(std::string_view s) {
    std::string& v = values_.emplace_back();
    v.reserve(s.size());
    for (char c : s) {
      if (c == '\0') v += "\xEF\xBF\xBD";
      else v += c;
    }
    nulls_.push_back(false);
    return *this;
  }
  Params& add(const std::string& s) { return add(std::string_view(s)); }
  Params& add(const char* s) { return add(std::string_view(s)); }
  Params& add(std::int64_t v) { return number(v); }
  Params& add(int v) { return number(v); }
  Params& add(double v) { return number(v); }
  Params& add(const std::optional<std::string>& s) { return s ? add(*s) : null(); }
  Params& add(const std::optional<std::int64_t>& v) { return v ? add(*v) : null(); }
  Params& add(const std::optional<int>& v) { return v ? add(*v) : null(); }
  Params& null() {
    values_.emplace_back();
    nulls_.push_back(true);
    return *this;
  }

  int size() const { return static_cast<int>(values_.size()); }
  // The C strings for PQexecPrepared; valid until the next add.
  const char* const* pointers() const {
    pointers_.clear();
    for (std::size_t i = 0; i < values_.size(); ++i)
      pointers_.push_back(nulls_[i] ? nullptr : values_[i].c_str());
    return pointers_.data();
  }

 private:
  template <class T>
  Params& number(T v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);  // doubles: shortest exact form
    values_.emplace_back(buf, r.ptr);
    nulls_.push_back(false);
    return *this;
  }

  std::vector<std::string> values_;
  std::vector<bool> nulls_;
  mutable std::vector<const char*> pointers_;
};

}  // namespace runq::store::postgres
