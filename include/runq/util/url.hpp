#pragma once
// The one parser of http(s) URLs: the outbound client, the webhook URL policy and the
// CLI all read a URL the same way, so the host that is checked is the host that is
// connected to. Strict where URL parsers disagree (several '@', a backslash or several
// ':' in the authority): such URLs are refused rather than guessed at.
#include <string>
#include <string_view>
#include <variant>

namespace runq::util {

struct Url {
  bool tls = false;           // https
  std::string host;           // as written; an IPv6 literal without its brackets
  bool ipv6_literal = false;  // written in brackets (and a valid IPv6 address)
  std::string port;           // digits; "80" or "443" when none is written
  bool empty_port = false;    // "host:" with no digits (RFC 3986 allows it: default port)
  std::string host_header;    // host[:port] as written, brackets kept, no user info
  std::string target;         // "/path?query", never empty; the #fragment is dropped

  std::string display() const;  // "host:port", "[v6]:port": for messages
};

enum class UrlError {
  scheme,  // not http:// or https://
  host,    // no host, or one that cannot be read unambiguously
  port,    // not 1-65535
};

// The URL, or why it is not a usable http(s) URL. Only the authority is checked; the
// path and query are taken as they are.
std::variant<Url, UrlError> parse_url(std::string_view text);

}  // namespace runq::util
