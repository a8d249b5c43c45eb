// Tests of the log formats: JSON lines that always parse (escaping, invalid UTF-8),
// structured events in both formats.
#include "runq/util/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

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
