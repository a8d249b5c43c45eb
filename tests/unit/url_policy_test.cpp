// webhooks::refuse_url: schemes, hosts, and every restricted address class (literal
// addresses only: no external DNS is needed).
#include "runq/webhooks/url_policy.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace runq;

namespace {

const std::string kScheme = "Webhook URL must use http or https scheme";
const std::string kNoHost = "Webhook URL must include a valid hostname";
const std::string kLocalhost = "Webhook URL cannot be a localhost address";
const std::string kRestricted = "Webhook URL resolves to a private or restricted network address";
const std::string kUnresolved = "Webhook URL hostname could not be resolved";

std::string why(const std::string& url, bool allow_private = false) {
  auto r = webhooks::refuse_url(url, allow_private);
  return r ? *r : std::string("<allowed>");
}

}  // namespace

TEST(UrlPolicy, Schemes) {
  for (const char* url : {"ftp://8.8.8.8/", "file:///etc/passwd", "gopher://8.8.8.8/",
                          "javascript:alert(1)", "8.8.8.8/hook", "//8.8.8.8/", "",
                          "httpx://8.8.8.8/", "http:/8.8.8.8/"}) {
    EXPECT_EQ(why(url), kScheme) << url;
    EXPECT_EQ(why(url, true), kScheme) << url;
  }
  EXPECT_EQ(why("http://8.8.8.8/hook"), "<allowed>");
  EXPECT_EQ(why("https://8.8.8.8/hook"), "<allowed>");
  EXPECT_EQ(why("HTTPS://8.8.8.8:8443/hook?a=b#c"), "<allowed>");
  EXPECT_EQ(why("Http://user:pw@8.8.8.8:1/"), "<allowed>");
}

TEST(UrlPolicy, HostRequired) {
  for (const char* url : {"http://", "https:///x", "http://:80/", "http://user@/",
                          "http://[]/", "http://[::1/", "http://[zz::1]/",
                          "http://a@b@8.8.8.8/", "http://8.8.8.8\\@10.0.0.1/",
                          "http://8.8.8.8:10.0.0.1:80/"}) {
    EXPECT_EQ(why(url), kNoHost) << url;
    EXPECT_EQ(why(url, true), kNoHost) << url;
  }
}

TEST(UrlPolicy, Localhost) {
  for (const char* url : {"http://localhost/", "http://LOCALHOST:8080/x", "http://localhost./",
                          "https://api.localhost/hook", "http://user@localhost/",
                          "http://127.0.0.1:9000/", "http://127.1.2.3/", "http://[::1]:80/",
                          "http://[0:0:0:0:0:0:0:1]/", "http://[::ffff:127.0.0.1]/"}) {
    EXPECT_EQ(why(url), kLocalhost) << url;
    EXPECT_EQ(why(url, true), "<allowed>") << url;
  }
  // Not localhost names.
  EXPECT_NE(why("http://notlocalhost/"), kLocalhost);
  EXPECT_NE(why("http://localhost.example.invalid/"), kLocalhost);
}

// Literal IPv4 addresses of every restricted class, and their neighbours outside it.
TEST(UrlPolicy, Ipv4Classes) {
  const char* refused[] = {
      "0.0.0.0", "0.1.2.3",                       // unspecified / "this network"
      "10.0.0.1", "10.255.255.255",              // private 10/8
      "172.16.0.1", "172.31.255.254",            // private 172.16/12
      "192.168.0.1", "192.168.255.255",          // private 192.168/16
      "169.254.0.1", "169.254.169.254",          // link-local (cloud metadata)
      "100.64.0.1", "100.127.255.255",           // CGNAT 100.64/10
      "224.0.0.1", "239.255.255.250",            // multicast
      "240.0.0.1", "255.255.255.255",            // reserved, broadcast
      "192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.9",  // IETF, documentation
      "198.18.0.1", "198.19.255.255",            // benchmarking
  };
  for (const char* ip : refused) {
    const std::string url = std::string("http://") + ip + ":8080/hook";
    EXPECT_EQ(why(url), kRestricted) << url;
    EXPECT_EQ(why(url, true), "<allowed>") << url;
  }
  const char* allowed[] = {"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.1", "172.15.255.255",
                           "172.32.0.1", "192.167.255.255", "192.169.0.1", "169.253.0.1",
                           "100.63.255.255", "100.128.0.1", "223.255.255.255", "198.17.0.1",
                           "198.20.0.1", "126.255.255.255", "128.0.0.1"};
  for (const char* ip : allowed) {
    const std::string url = std::string("https://") + ip + "/hook";
    EXPECT_EQ(why(url), "<allowed>") << url;
  }
}

// Other spellings of an IPv4 address resolve to the same address, and are judged by it.
TEST(UrlPolicy, Ipv4OtherSpellings) {
  for (const char* url : {"http://2130706433/", "http://0x7f.0.0.1/", "http://127.1/",
                          "http://0177.0.0.1/"})
    EXPECT_NE(why(url), "<allowed>") << url;
  EXPECT_NE(why("http://167772161/"), "<allowed>");  // 10.0.0.1
}

TEST(UrlPolicy, Ipv6Classes) {
  const char* refused[] = {
      "::",                       // unspecified
      "fc00::1", "fd12:3456::1",  // unique local fc00::/7
      "fe80::1", "febf::1",       // link-local fe80::/10
      "fec0::1",                  // site-local (deprecated)
      "ff02::1", "ff0e::1",       // multicast
      "::ffff:10.0.0.1", "::ffff:192.168.1.1", "::ffff:169.254.169.254",  // v4-mapped
      "::ffff:0.0.0.0", "::ffff:100.64.0.1", "::ffff:224.0.0.1",
      "::10.0.0.1", "::8.8.8.8",  // IPv4-compatible (deprecated)
      "64:ff9b::10.0.0.1",        // NAT64 of a private address
      "64:ff9b:1::1",             // local-use NAT64
      "100::1",                   // discard-only
      "2001:db8::1",              // documentation
      "2001::1",                  // Teredo
      "2002:0a00:0001::1",        // 6to4 of 10.0.0.1
      "3fff::1",                  // documentation (new)
  };
  for (const char* ip : refused) {
    const std::string url = std::string("http://[") + ip + "]:8080/hook";
    EXPECT_EQ(why(url), kRestricted) << url;
    EXPECT_EQ(why(url, true), "<allowed>") << url;
  }
  const char* allowed[] = {"2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450::1",
                           "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:0808:0808::1"};
  for (const char* ip : allowed) {
    const std::string url = std::string("https://[") + ip + "]/hook";
    EXPECT_EQ(why(url), "<allowed>") << url;
  }
}

TEST(UrlPolicy, Unresolvable) {
  // ".invalid" never resolves (RFC 6761); a sandbox without DNS also says no.
  EXPECT_EQ(why("http://nothing-here.invalid/hook"), kUnresolved);
  EXPECT_EQ(why("http://nothing-here.invalid/hook", true), "<allowed>");
  // A percent sign is not a host character: it never resolves.
  EXPECT_EQ(why("http://127.0.0.%31/"), kUnresolved);
}
