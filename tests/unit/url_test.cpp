// util::parse_url: what the outbound client connects to and what the webhook policy
// checks come from this one reading of a URL.
#include "runq/util/url.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

using namespace runq::util;

namespace {

Url ok(const std::string& text) {
  auto r = parse_url(text);
  if (auto* e = std::get_if<UrlError>(&r)) {
    ADD_FAILURE() << text << " refused: " << static_cast<int>(*e);
    return {};
  }
  return std::get<Url>(r);
}

UrlError bad(const std::string& text) {
  auto r = parse_url(text);
  if (std::holds_alternative<Url>(r)) {
    ADD_FAILURE() << text << " accepted";
    return UrlError::scheme;
  }
  return std::get<UrlError>(r);
}

}  // namespace

TEST(Url, Parts) {
  Url u = ok("http://example.com");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, "80");
  EXPECT_EQ(u.host_header, "example.com");
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(u.display(), "example.com:80");

  u = ok("HTTPS://user:pw@Example.COM:8443/a/b?c=d#frag");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "Example.COM");  // as written: TLS name checks fold case themselves
  EXPECT_EQ(u.port, "8443");
  EXPECT_EQ(u.host_header, "Example.COM:8443");  // no user info
  EXPECT_EQ(u.target, "/a/b?c=d");              // no fragment

  EXPECT_EQ(ok("https://h").port, "443");
  EXPECT_EQ(ok("http://h?x=1").target, "/?x=1");
  EXPECT_EQ(ok("http://h#top").target, "/");
}

TEST(Url, Ipv6Literals) {
  Url u = ok("http://[::1]:8080/hook");
  EXPECT_TRUE(u.ipv6_literal);
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, "8080");
  EXPECT_EQ(u.host_header, "[::1]:8080");
  EXPECT_EQ(u.display(), "[::1]:8080");
  EXPECT_EQ(ok("https://[2606:4700:4700::1111]/").port, "443");
  EXPECT_EQ(bad("http://[::1/"), UrlError::host);
  EXPECT_EQ(bad("http://[]/"), UrlError::host);
  EXPECT_EQ(bad("http://[zz::1]/"), UrlError::host);
  EXPECT_EQ(bad("http://[::1]x/"), UrlError::host);
  EXPECT_EQ(bad("http://[fe80::1%25eth0]/"), UrlError::host);  // zone ids: local only
}

TEST(Url, EmptyPortMeansTheDefault) {
  Url u = ok("http://host:/x");
  EXPECT_TRUE(u.empty_port);
  EXPECT_EQ(u.port, "80");
  EXPECT_EQ(u.host_header, "host");
  EXPECT_TRUE(ok("https://[::1]:/").empty_port);
  EXPECT_FALSE(ok("http://host/").empty_port);
}

TEST(Url, Refused) {
  for (const char* s : {"", "ftp://h/", "file:///etc/passwd", "javascript:alert(1)",
                        "h/x", "//h/", "http:/h/", "httpx://h/"})
    EXPECT_EQ(bad(s), UrlError::scheme) << s;
  for (const char* s : {"http://", "https:///x", "http://:80/", "http://user@/",
                        "http://a@b@h/",           // which '@' ends the user info?
                        "http://h\\@10.0.0.1/",    // '\' is '/' to browsers
                        "http://h:10.0.0.1:80/",   // where does the host end?
                        "http://exa mple.com/", "http://h\x7f/"})
    EXPECT_EQ(bad(s), UrlError::host) << s;
  for (const char* s : {"http://h:0/", "http://h:65536/", "http://h:99999/", "http://h:abc/",
                        "http://h:123456/", "http://h:-1/"})
    EXPECT_EQ(bad(s), UrlError::port) << s;
  EXPECT_EQ(ok("http://h:65535/").port, "65535");
  EXPECT_EQ(ok("http://h:1").port, "1");
}
