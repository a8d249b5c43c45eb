#include "runq/util/url.hpp"

#include "runq/util/ascii.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace runq::util {

std::string Url::display() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

std::variant<Url, UrlError> parse_url(std::string_view text) {
  Url out;
  std::string_view rest;
  if (istarts_with(text, "http://")) {
    rest = text.substr(7);
  } else if (istarts_with(text, "https://")) {
    out.tls = true;
    rest = text.substr(8);
  } else {
    return UrlError::scheme;
  }

  const auto end_of_authority = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end_of_authority);
  std::string_view path =
      end_of_authority == std::string_view::npos ? "" : rest.substr(end_of_authority);
  if (auto hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);

  // Browsers read '\' as '/', others as a host character: refuse it.
  if (authority.find('\\') != std::string_view::npos) return UrlError::host;
  if (auto at = authority.find('@'); at != std::string_view::npos) {
    // "a@b@host": parsers disagree on which '@' ends the user info.
    if (authority.find('@', at + 1) != std::string_view::npos) return UrlError::host;
    authority = authority.substr(at + 1);  // user:password@ is not sent
  }

  std::string_view host, port;
  bool has_colon = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return UrlError::host;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return UrlError::host;
      has_colon = true;
      port = after.substr(1);
    }
    out.ipv6_literal = true;
  } else {
    const auto colon = authority.find(':');
    // "a:b:80": parsers disagree on where the host ends.
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos)
      return UrlError::host;
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_colon = true;
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return UrlError::host;
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return UrlError::host;
  }
  out.host = std::string(host);
  if (out.ipv6_literal) {
    // Zone ids ("fe80::1%25eth0") are refused too: they only mean something locally.
    in6_addr a{};
    if (inet_pton(AF_INET6, out.host.c_str(), &a) != 1) return UrlError::host;
  }

  out.host_header = std::string(authority);
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
    if (has_colon) {
      out.empty_port = true;
      out.host_header.pop_back();  // "host:" is sent as "host"
    }
  } else {
    if (port.size() > 5) return UrlError::port;
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return UrlError::port;
      value = value * 10 + unsigned(c - '0');
    }
    if (value == 0 || value > 65535) return UrlError::port;
    out.port = std::string(port);
  }

  if (path.empty()) out.target = "/";
  else if (path.front() == '?') out.target = "/" + std::string(path);
  else out.target = std::string(path);
  return out;
}

}  // namespace runq::util
