// Tests of the request-id rules and of the observing wrapper around the API handler.
#include "runq/api/access_log.hpp"
#include "runq/metrics/runq_metrics.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>

using runq::api::new_request_id;
using runq::api::observed;
using runq::api::sane_request_id;

TEST(AccessLog, SaneRequestIds) {
  std::string ok = "abc-123_XYZ.req:1";
  EXPECT_EQ(sane_request_id(&ok), ok);
  std::string with_space = "a b";
  EXPECT_EQ(sane_request_id(&with_space), with_space);
  std::string longest(128, 'x');
  EXPECT_EQ(sane_request_id(&longest), longest);
  std::string too_long(129, 'x');
  EXPECT_FALSE(sane_request_id(&too_long));
  std::string empty;
  EXPECT_FALSE(sane_request_id(&empty));
  std::string control = "a\x01" "b";
  EXPECT_FALSE(sane_request_id(&control));
  std::string high = "caf\xc3\xa9";
  EXPECT_FALSE(sane_request_id(&high));
  EXPECT_FALSE(sane_request_id(nullptr));
}

TEST(AccessLog, MadeIdsAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_request_id();
    EXPECT_TRUE(sane_request_id(&id));
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

// "<8 hex digits of a per-process prefix>-<counter in hex>", the counter counting up.
TEST(AccessLog, MadeIdsArePrefixAndCounter) {
  const std::regex shape("([0-9a-f]{8})-([1-9a-f][0-9a-f]*)");
  std::smatch a, b;
  const std::string first = new_request_id(), second = new_request_id();
  ASSERT_TRUE(std::regex_match(first, a, shape)) << first;
  ASSERT_TRUE(std::regex_match(second, b, shape)) << second;
  EXPECT_EQ(a[1], b[1]);
  EXPECT_EQ(std::stoull(b[2], nullptr, 16), std::stoull(a[2], nullptr, 16) + 1);
}

TEST(AccessLog, EchoesOrMakesTheIdAndCountsTheRoute) {
  auto handler = observed([](runq::http::Request&&, runq::http::Reply reply) {
    runq::http::Response r;
    r.status = 404;
    reply(std::move(r));
  });
  auto header = [](const runq::http::Response& r) -> std::string {
    for (const auto& h : r.headers)
      if (h.name == "X-Request-ID") return h.value;
    return {};
  };
  const std::string before = runq::metrics::runq().render({});
  runq::http::Request req;
  req.method = "GET";
  req.path = "/api/v1/runs/run_0123456789abcdef";
  req.headers.push_back({"x-request-id", "client-id-1"});
  runq::http::Response got;
  handler(std::move(req), [&](runq::http::Response r) { got = std::move(r); });
  EXPECT_EQ(got.status, 404);
  EXPECT_EQ(header(got), "client-id-1");

  runq::http::Request bad;
  bad.method = "GET";
  bad.path = "/nowhere/run_0123456789abcdef";
  bad.headers.push_back({"x-request-id", std::string(200, 'x')});
  handler(std::move(bad), [&](runq::http::Response r) { got = std::move(r); });
  EXPECT_FALSE(header(got).empty());
  EXPECT_NE(header(got), std::string(200, 'x'));

  const std::string after = runq::metrics::runq().render({});
  EXPECT_NE(after.find("runq_http_requests_total{method=\"GET\",route=\"/api/v1/runs/{job_id}\",code=\"404\"} 1"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find("runq_http_requests_total{method=\"GET\",route=\"other\",code=\"404\"} 1"),
            std::string::npos);
  EXPECT_EQ(after.find("nowhere"), std::string::npos);  // never the raw path
}
