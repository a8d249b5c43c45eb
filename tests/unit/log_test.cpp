// Tests of the log formats: JSON lines that always parse (escaping, invalid UTF-8),
// structured events in both formats, the formatters' exact bytes.
#include "runq/util/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <random>
#include <sstream>

namespace rlog = runq::util::log;
using nlohmann::json;

namespace {

// Installs a default logger writing to a string in `format` while it lives.
class Capture {
 public:
  explicit Capture(rlog::Format format) : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::info);
    if (format == rlog::Format::json) logger->set_formatter(rlog::make_json_formatter());
    else logger->set_pattern("%l %v");
    rlog::set_format(format);
    spdlog::set_default_logger(logger);
  }
  ~Capture() {
    spdlog::set_default_logger(previous_);
    rlog::set_format(rlog::Format::text);
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(out_.str());
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

std::string escaped(std::string_view s) {
  std::string out;
  rlog::append_json_escaped(out, s);
  return out;
}

}  // namespace

TEST(Log, JsonEscaping) {
  EXPECT_EQ(escaped("a\"b\\c\nd\te\x01"), "a\\\"b\\\\c\\nd\\te\\u0001");
  EXPECT_EQ(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(escaped("bad \xff\xc3 end"), "bad \\ufffd\\ufffd end");
  EXPECT_EQ(escaped("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");  // a UTF-16 surrogate
  EXPECT_EQ(escaped("\xc0\xaf"), "\\ufffd\\ufffd");              // overlong '/'
}

TEST(Log, JsonLinesParse) {
  Capture cap(rlog::Format::json);
  spdlog::info("plain {} with \"quotes\" and \xff bytes", 42);
  rlog::event(spdlog::level::warn, "job finished",
             {{"job_id", "run_0123456789abcdef"}, {"status", 200}, {"ms", 1.5}, {"ok", true},
              {"error", std::string("line\nbreak")}});
  rlog::event(spdlog::level::debug, "not logged", {{"x", 1}});  // below the level
  auto lines = cap.lines();
  ASSERT_EQ(lines.size(), 2u);
  json a = json::parse(lines[0]);
  EXPECT_EQ(a["level"], "info");
  EXPECT_EQ(a["msg"], "plain 42 with \"quotes\" and \xef\xbf\xbd bytes");
  EXPECT_TRUE(a["ts"].get<std::string>().ends_with("Z"));
  json b = json::parse(lines[1]);
  EXPECT_EQ(b["level"], "warning");
  EXPECT_EQ(b["msg"], "job finished");
  EXPECT_EQ(b["job_id"], "run_0123456789abcdef");
  EXPECT_EQ(b["status"], 200);
  EXPECT_DOUBLE_EQ(b["ms"].get<double>(), 1.5);
  EXPECT_EQ(b["ok"], true);
  EXPECT_EQ(b["error"], "line\nbreak");
}

TEST(Log, TextEvents) {
  Capture cap(rlog::Format::text);
  rlog::event(spdlog::level::info, "request",
             {{"method", "GET"}, {"route", "/api/v1/runs/{job_id}"}, {"status", 404},
              {"request_id", "has space"}, {"duration_ms", 0.25}});
  auto lines = cap.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "info request method=GET route=/api/v1/runs/{job_id} status=404 "
            "request_id=\"has space\" duration_ms=0.250");
}

// The text formatter writes the bytes spdlog's pattern wrote before it (and marks the
// level as the colored range), for every level, within a second and across seconds.
TEST(Log, TextFormatterIsThePattern) {
  spdlog::pattern_formatter pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v",
                                    spdlog::pattern_time_type::utc);
  auto text = rlog::make_text_formatter();
  using namespace std::chrono;
  const auto base = spdlog::log_clock::time_point(seconds(1'764'700'000));
  const std::vector<spdlog::log_clock::duration> offsets = {
      nanoseconds(0),           nanoseconds(999),        microseconds(1),
      microseconds(123'456),    microseconds(999'999),   seconds(1),
      seconds(1) + nanoseconds(1'500), seconds(59) + microseconds(7), hours(24 * 400),
      seconds(-3)};
  for (auto level : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                     spdlog::level::warn, spdlog::level::err, spdlog::level::critical}) {
    for (auto offset : offsets) {
      spdlog::details::log_msg msg(base + offset, {}, "runq", level, "a message key=value");
      spdlog::memory_buf_t want, got;
      pattern.format(msg, want);
      const auto want_range = std::make_pair(msg.color_range_start, msg.color_range_end);
      msg.color_range_start = msg.color_range_end = 0;
      got.append(std::string_view("prefix "));  // ranges count from the buffer's start
      want.clear();
      want.append(std::string_view("prefix "));
      pattern.format(msg, want);
      text->format(msg, got);
      EXPECT_EQ(std::string(got.data(), got.size()), std::string(want.data(), want.size()));
      EXPECT_EQ(msg.color_range_start, want_range.first + 7);
      EXPECT_EQ(msg.color_range_end, want_range.second + 7);
    }
  }
}

TEST(Log, JsonFormatterBytes) {
  auto json_format = rlog::make_json_formatter();
  const auto t = spdlog::log_clock::time_point(std::chrono::microseconds(1'764'700'000'123'456));
  spdlog::memory_buf_t out;
  spdlog::details::log_msg plain(t, {}, "runq", spdlog::level::warn, "say \"hi\"");
  json_format->format(plain, out);
  spdlog::details::log_msg members(t + std::chrono::microseconds(1), {}, "runq",
                                   spdlog::level::info, "\x1e\"msg\":\"request\",\"status\":200");
  json_format->format(members, out);
  EXPECT_EQ(std::string(out.data(), out.size()),
            "{\"ts\":\"2025-12-02T18:26:40.123456Z\",\"level\":\"warning\",\"msg\":\"say \\\"hi\\\"\"}\n"
            "{\"ts\":\"2025-12-02T18:26:40.123457Z\",\"level\":\"info\",\"msg\":\"request\",\"status\":200}\n");
}

// Reals are written as fmt's "{:.3f}", also the values next to a half (fmt's, exactly).
TEST(Log, RealsAsFmtWritesThem) {
  auto check = [](double d) {
    std::string got;
    rlog::append_fixed3(got, d);
    ASSERT_EQ(got, fmt::format("{:.3f}", d)) << d;
  };
  for (double d : {0.0, -0.0, 0.0005, 0.0015, 0.0625, 1.0005, 2.5, 0.9995, 0.99949999999,
                   999999.9995, 1e6, 1e6 - 1e-4, 123456.789, -1.5, -0.0004, 1e300, 5e-324,
                   0.001, 0.002, 0.003, 1.0 / 3.0, 2.0 / 3.0})
    check(d);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> small(0, 10), large(0, 2e6);
  for (int i = 0; i < 200'000; ++i) {
    check(small(rng));
    check(large(rng));
    check(std::round(small(rng) * 1e4) / 1e4);  // exact decimals with a 5 in the 4th place
    check((std::floor(small(rng) * 1000) + 0.5) / 1000);  // ties in decimal
    check(std::ldexp(static_cast<double>(rng() % 100000), -static_cast<int>(rng() % 20)));
  }
}
