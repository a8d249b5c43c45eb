#pragma once
// Logging set-up (--log-format text|json) and structured events: a message plus fields,
// written as `msg key=value ...` in text and as members of the line's object in JSON.
#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace runq::util::log {

enum class Format { text, json };

// The default logger and the access log's: stderr, `level` (spdlog's names), one line per
// record; text: "<ts> <level> <message>"; json: one object per line, {"ts","level","msg",
// ...fields}. Call once, before other threads log. When stderr is not a terminal, the
// access log's lines are written in batches (BatchingSink: within 50 ms, and before any
// other record), so call shutdown() before the process exits.
void setup(Format format, const std::string& level);
// Writes the access lines still pending and stops the batching: later records are
// written at once. Nothing to do without setup() or on a terminal.
void shutdown();
// The access log's logger (one line per request): setup()'s, else the default logger.
spdlog::logger& access_logger();
Format format();
// The pieces of setup(), for tests with their own sink: how events encode their fields,
// and the formatters of the two formats.
void set_format(Format format);
std::unique_ptr<spdlog::formatter> make_json_formatter();
std::unique_ptr<spdlog::formatter> make_text_formatter();

// A field of an event. Strings are copied into the line; never pass a secret.
struct Field {
  enum class Kind { str, integer, real, boolean };
  Field(std::string_view k, std::string_view v) : key(k), kind(Kind::str), s(v) {}
  Field(std::string_view k, const std::string& v) : key(k), kind(Kind::str), s(v) {}
  Field(std::string_view k, const char* v) : key(k), kind(Kind::str), s(v) {}
  Field(std::string_view k, bool v) : key(k), kind(Kind::boolean), b(v) {}
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  Field(std::string_view k, T v) : key(k), kind(Kind::integer), i(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), kind(Kind::real), d(v) {}

  std::string_view key;
  Kind kind;
  std::string_view s;
  std::int64_t i = 0;
  double d = 0;
  bool b = false;
};

// Logs `msg` with `fields` at `level` (nothing is built when the level is off), on the
// default logger or on `logger`.
void event(spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields);
void event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields);

// `s` as the inside of a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD (so every line parses).
void append_json_escaped(std::string& out, std::string_view s);
// `d` as fmt's "{:.3f}" writes it (how events write a real), mostly without fmt.
void append_fixed3(std::string& out, double d);

}  // namespace runq::util::log
