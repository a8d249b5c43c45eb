// webhooks::refuse_url: schemes, hosts, and every restricted address class (literal
// addresses only: no external DNS is needed); webhooks::refuse_address.
#include "runq/webhooks/url_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

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

// The submit-time check makes no DNS lookup (it runs on an I/O thread): a name passes
// whether or not it resolves, and is judged at delivery (refuse_address). The names
// below resolve nowhere (RFC 2606 ".example"); a lookup would have refused them.
TEST(UrlPolicy, NamesAreNotLookedUpAtSubmit) {
  EXPECT_EQ(why("http://no-such-name.runq-test.example/hook"), "<allowed>");
  EXPECT_EQ(why("https://hooks.runq-test.example:8443/x?y=z"), "<allowed>");
  EXPECT_EQ(why("http://Under_Score.example/"), "<allowed>");
}

// Names that no lookup can answer are still refused at submit, without one.
TEST(UrlPolicy, NeverResolvingNames) {
  for (const char* url : {"http://a..b/", "http://.a/", "http://a.b../", "http://x.INVALID/",
                          "http://invalid/", "http://caf\xC3\xA9.example/",
                          "http://a%2eb/", "http://a,b/"}) {
    EXPECT_EQ(why(url), kUnresolved) << url;
    EXPECT_EQ(why(url, true), "<allowed>") << url;
  }
  const std::string label(63, 'a');
  EXPECT_EQ(why("http://" + label + ".example/"), "<allowed>");
  EXPECT_EQ(why("http://" + label + "a.example/"), kUnresolved);
  std::string long_name;
  while (long_name.size() < 250) long_name += label + ".";
  EXPECT_EQ(why("http://" + long_name + "example/"), kUnresolved);
}

namespace {

std::string why_address(const char* ip) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in&>(ss).sin_addr) == 1)
    ss.ss_family = AF_INET;
  else if (inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6&>(ss).sin6_addr) == 1)
    ss.ss_family = AF_INET6;
  auto r = webhooks::refuse_address(reinterpret_cast<const sockaddr&>(ss));
  return r ? *r : std::string("<allowed>");
}

}  // namespace

// At delivery, each resolved address is judged by the same ranges as a literal one.
TEST(UrlPolicy, ResolvedAddresses) {
  EXPECT_EQ(why_address("127.0.0.1"), kRestricted + " (127.0.0.1)");
  EXPECT_EQ(why_address("10.1.2.3"), kRestricted + " (10.1.2.3)");
  EXPECT_EQ(why_address("169.254.169.254"), kRestricted + " (169.254.169.254)");
  EXPECT_EQ(why_address("::1"), kRestricted + " (::1)");
  EXPECT_EQ(why_address("::ffff:192.168.0.1"), kRestricted + " (::ffff:192.168.0.1)");
  EXPECT_EQ(why_address("fe80::1"), kRestricted + " (fe80::1)");
  EXPECT_EQ(why_address("8.8.8.8"), "<allowed>");
  EXPECT_EQ(why_address("2606:4700:4700::1111"), "<allowed>");
}
