// http::parse_request: the server's own parsing (Beast under the server's limits, its
// error mapping, the conversion to Request) over bytes in memory.
#include "runq/http/request_parse.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace runq::http;

namespace {

const std::string* header(const Request& r, const std::string& name) { return r.header(name); }

TEST(RequestParse, SimpleGet) {
  auto p = parse_request("GET /api/v1/runs?page=2 HTTP/1.1\r\nHost: x\r\nX-Thing: A\r\n\r\n", {});
  ASSERT_EQ(p.error, ParseError::none);
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.target, "/api/v1/runs?page=2");
  EXPECT_EQ(p.request.path, "/api/v1/runs");
  EXPECT_EQ(p.request.query, "page=2");
  ASSERT_NE(header(p.request, "x-thing"), nullptr);
  EXPECT_EQ(*header(p.request, "x-thing"), "A");
  EXPECT_TRUE(p.keep_alive);
  EXPECT_EQ(p.version, 11u);
}

TEST(RequestParse, PipelinedRequestsOneAtATime) {
  const std::string two =
      "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
  for (std::size_t read_size : {0, 1, 7}) {
    auto p = parse_request(two, {}, read_size);
    ASSERT_EQ(p.error, ParseError::none) << read_size;
    EXPECT_EQ(p.request.body, "abc");
    auto q = parse_request(std::string_view(two).substr(p.consumed), {}, read_size);
    ASSERT_EQ(q.error, ParseError::none) << read_size;
    EXPECT_EQ(q.request.path, "/b");
  }
}

TEST(RequestParse, ChunkedBodyAndExpectContinue) {
  auto p = parse_request(
      "POST /r HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      {}, 5);
  ASSERT_EQ(p.error, ParseError::none);
  EXPECT_TRUE(p.expect_continue);
  EXPECT_EQ(p.request.body, "abcde");
}

TEST(RequestParse, Http10ClosesUnlessKeptAlive) {
  auto p = parse_request("GET / HTTP/1.0\r\n\r\n", {});
  ASSERT_EQ(p.error, ParseError::none);
  EXPECT_EQ(p.version, 10u);
  EXPECT_FALSE(p.keep_alive);
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", {}).keep_alive);
}

TEST(RequestParse, LimitsAndErrorsMapToTheServersAnswers) {
  RequestLimits small{64, 4};
  auto big_header = parse_request("GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n", small);
  EXPECT_EQ(big_header.error, ParseError::header_too_large);
  EXPECT_EQ(parse_error_status(big_header.error), 431);
  auto big_body = parse_request("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", small);
  EXPECT_EQ(big_body.error, ParseError::body_too_large);  // refused before the body is read
  EXPECT_EQ(parse_error_status(big_body.error), 413);
  auto chunked = parse_request(
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", small);
  EXPECT_EQ(chunked.error, ParseError::body_too_large);
  auto bad = parse_request("GET / HTTP/1.1\r\nBad Header\r\n\r\n", {});
  EXPECT_EQ(bad.error, ParseError::bad_request);
  EXPECT_EQ(parse_error_status(bad.error), 400);
  auto cut = parse_request("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", {});
  EXPECT_EQ(cut.error, ParseError::incomplete);
  EXPECT_EQ(parse_error_status(cut.error), 0);
  EXPECT_EQ(parse_request("", {}).error, ParseError::incomplete);
}

}  // namespace
