#include "runq/util/log.hpp"

#include "runq/util/batching_sink.hpp"
#include "runq/util/time.hpp"
#include "runq/util/utf8.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iterator>
#include <unistd.h>

namespace runq::util::log {

namespace {

std::atomic<Format> g_format{Format::text};

// Marks a payload that is already the JSON members `"msg":...,...` of a structured
// event (json format only); any other payload is a plain message.
constexpr char kMembers = '\x1e';

// A record's time in microseconds since the Unix epoch.
std::int64_t unix_us(spdlog::log_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// A record's timestamp, "YYYY-MM-DDTHH:MM:SS.uuuuuuZ": the date and time of day are made
// once a second (a formatter is used under its sink's lock, one record at a time).
class Timestamp {
 public:
  std::string_view of(spdlog::log_clock::time_point t) {
    const std::int64_t us = unix_us(t);
    if (us >= 0 && us / 1'000'000 == second_ && size_ == 27) {
      auto micros = static_cast<unsigned>(us % 1'000'000);
      for (int i = 25; i >= 20; --i, micros /= 10) text_[i] = static_cast<char>('0' + micros % 10);
    } else {
      size_ = format_rfc3339(text_, us);
      second_ = us >= 0 ? us / 1'000'000 : -1;
    }
    return {text_, size_};
  }

 private:
  char text_[kRfc3339Max];
  std::size_t size_ = 0;
  std::int64_t second_ = -1;
};

// The text format: "<ts> <level> <message>\n", the bytes of spdlog's pattern
// "%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v" in UTC (the level is the colored range on a terminal),
// without its per-flag machinery.
class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    char head[kRfc3339Max + 16];  // "<ts> <level> "
    const std::string_view ts = timestamp_.of(msg.time);
    const auto level = spdlog::level::to_string_view(msg.level);
    std::size_t n = ts.size();
    std::memcpy(head, ts.data(), n);
    head[n++] = ' ';
    msg.color_range_start = dest.size() + n;
    std::memcpy(head + n, level.data(), level.size());
    n += level.size();
    msg.color_range_end = dest.size() + n;
    head[n++] = ' ';
    append(dest, {head, n});
    append(dest, {msg.payload.data(), msg.payload.size()});
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }

 private:
  Timestamp timestamp_;
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append(dest, "{\"ts\":\"");
    append(dest, timestamp_.of(msg.time));
    append(dest, "\",\"level\":\"");
    const auto level = spdlog::level::to_string_view(msg.level);
    append(dest, {level.data(), level.size()});
    append(dest, "\",");
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!payload.empty() && payload.front() == kMembers) {
      append(dest, payload.substr(1));
    } else {
      std::string text = "\"msg\":\"";
      append_json_escaped(text, payload);
      text += '"';
      append(dest, text);
    }
    append(dest, "}\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  Timestamp timestamp_;
};

// The characters that make a text value quoted.
constexpr auto kQuoted = [] {
  std::array<bool, 256> quoted{};
  for (unsigned char c : std::string_view(" \"=\\\n\t")) quoted[c] = true;
  return quoted;
}();

void append_text_value(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (unsigned char c : v) quote |= kQuoted[c];
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  append_json_escaped(out, v);
  out += '"';
}

void append_integer(std::string& out, std::int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// What an event's payload is built in, one per thread (reused: no allocation per line).
// One that grew past kKeptBytes (a long message) is given back after its line.
constexpr std::size_t kKeptBytes = 16 * 1024;
thread_local std::string t_payload;

// The access log's logger and its sink (when it batches), from setup().
constexpr char kAccessLogger[] = "runq.access";
std::shared_ptr<spdlog::logger> g_access_logger;
std::atomic<spdlog::logger*> g_access{nullptr};
std::shared_ptr<BatchingSink> g_batching;

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default: fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
      }
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (std::size_t n = utf8_sequence_length(s, i)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
}

void append_fixed3(std::string& out, double d) {
  // Rounding d * 1000 to an integer is what "{:.3f}" does to the exact value of d, unless
  // the product's rounding moved it across a half: below 1e6, d * 1000 is within 2^-24
  // of the exact product, so fmt takes only the values within 1e-6 of a half (and the
  // negative, large and non-finite ones).
  if (d >= 0 && d < 1e6 && !std::signbit(d)) {
    const double x = d * 1000.0;
    const double whole = std::floor(x);
    const double frac = x - whole;  // exact
    if (std::fabs(frac - 0.5) > 1e-6) {
      const auto n = static_cast<std::uint64_t>(whole) + (frac > 0.5 ? 1 : 0);
      char buf[32];
      char* end = std::to_chars(buf, buf + sizeof buf - 4, n / 1000).ptr;
      const auto milli = static_cast<unsigned>(n % 1000);
      end[0] = '.';
      end[1] = static_cast<char>('0' + milli / 100);
      end[2] = static_cast<char>('0' + milli / 10 % 10);
      end[3] = static_cast<char>('0' + milli % 10);
      out.append(buf, end + 4);
      return;
    }
  }
  fmt::format_to(std::back_inserter(out), "{:.3f}", d);
}

void set_format(Format format) { g_format = format; }

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<JsonFormatter>();
}

std::unique_ptr<spdlog::formatter> make_text_formatter() {
  return std::make_unique<TextFormatter>();
}

void setup(Format format, const std::string& level) {
  set_format(format);
  // A terminal gets colors and each line at once; a file or a pipe (a service's log, the
  // tests) the access log in batches (BatchingSink).
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (isatty(STDERR_FILENO)) {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  } else {
    g_batching = std::make_shared<BatchingSink>(STDERR_FILENO, kAccessLogger);
    sink = g_batching;
  }
  sink->set_formatter(format == Format::json ? make_json_formatter() : make_text_formatter());
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("runq", sink));
  spdlog::set_level(spdlog::level::from_str(level));
  g_access_logger = std::make_shared<spdlog::logger>(kAccessLogger, sink);
  g_access_logger->set_level(spdlog::level::from_str(level));
  g_access = g_access_logger.get();
}

void shutdown() {
  if (g_batching) g_batching->stop();
}

spdlog::logger& access_logger() {
  spdlog::logger* logger = g_access.load(std::memory_order_acquire);
  return logger ? *logger : *spdlog::default_logger_raw();
}

Format format() { return g_format.load(std::memory_order_relaxed); }

void event(spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields) {
  event(*spdlog::default_logger_raw(), level, msg, fields);
}

void event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields) {
  if (!logger.should_log(level)) return;
  std::string& out = t_payload;
  out.clear();
  const bool json = format() == Format::json;
  if (json) {
    out += kMembers;
    out += "\"msg\":\"";
    append_json_escaped(out, msg);
    out += '"';
  } else {
    out += msg;
  }
  for (const Field& f : fields) {
    if (json) {
      out += ",\"";
      append_json_escaped(out, f.key);
      out += "\":";
    } else {
      out += ' ';
      out += f.key;
      out += '=';
    }
    switch (f.kind) {
      case Field::Kind::str:
        if (json) {
          out += '"';
          append_json_escaped(out, f.s);
          out += '"';
        } else {
          append_text_value(out, f.s);
        }
        break;
      case Field::Kind::integer: append_integer(out, f.i); break;
      case Field::Kind::real:
        if (std::isfinite(f.d)) append_fixed3(out, f.d);
        else out += json ? "null" : "nan";
        break;
      case Field::Kind::boolean: out += f.b ? "true" : "false"; break;
    }
  }
  logger.log(level, spdlog::string_view_t(out.data(), out.size()));
  if (out.capacity() > kKeptBytes) std::string().swap(out);
}

}  // namespace runq::util::log
