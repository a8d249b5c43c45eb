#include "runq/util/log.hpp"

#include "runq/util/time.hpp"
#include "runq/util/utf8.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <iterator>

namespace runq::util::log {

namespace {

std::atomic<Format> g_format{Format::text};

// Marks a payload that is already the JSON members `"msg":...,...` of a structured
// event (json format only); any other payload is a plain message.
constexpr char kMembers = '\x1e';

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        msg.time.time_since_epoch()).count();
    std::string line = "{\"ts\":\"" + rfc3339(us) + "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += "\",";
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!payload.empty() && payload.front() == kMembers) {
      line.append(payload.substr(1));
    } else {
      line += "\"msg\":\"";
      append_json_escaped(line, payload);
      line += '"';
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

void append_text_value(std::string& out, std::string_view v) {
  const bool quote = v.empty() || v.find_first_of(" \"=\\\n\t") != std::string_view::npos;
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  append_json_escaped(out, v);
  out += '"';
}

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

void set_format(Format format) { g_format = format; }

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<JsonFormatter>();
}

void setup(Format format, const std::string& level) {
  set_format(format);
  auto logger = spdlog::stderr_color_mt("runq");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  if (format == Format::json)
    logger->set_formatter(make_json_formatter());
  else
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
}

Format format() { return g_format.load(std::memory_order_relaxed); }

void event(spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  std::string out;
  out.reserve(64 + msg.size() + fields.size() * 24);
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
      case Field::Kind::integer: fmt::format_to(std::back_inserter(out), "{}", f.i); break;
      case Field::Kind::real:
        if (std::isfinite(f.d)) fmt::format_to(std::back_inserter(out), "{:.3f}", f.d);
        else out += json ? "null" : "nan";
        break;
      case Field::Kind::boolean: out += f.b ? "true" : "false"; break;
    }
  }
  logger->log(level, spdlog::string_view_t(out.data(), out.size()));
}

}  // namespace runq::util::log
