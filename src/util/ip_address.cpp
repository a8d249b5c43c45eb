#include "runq/util/ip_address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

namespace runq::util {

namespace {

AddressClass classify_v4(std::uint32_t a) {  // host byte order
  auto in = [a](std::uint32_t net, int bits) {
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x7F000000, 8)) return AddressClass::loopback;  // 127/8
  if (in(0x00000000, 8) ||                                // "this network", 0.0.0.0
      in(0x0A000000, 8) ||                                // 10/8
      in(0x64400000, 10) ||                               // 100.64/10 CGNAT
      in(0xA9FE0000, 16) ||                               // 169.254/16 link-local
      in(0xAC100000, 12) ||                               // 172.16/12
      in(0xC0000000, 24) ||                               // 192.0.0/24 IETF assignments
      in(0xC0000200, 24) ||                               // 192.0.2/24 TEST-NET-1
      in(0xC0586300, 24) ||                               // 192.88.99/24 6to4 relay
      in(0xC0A80000, 16) ||                               // 192.168/16
      in(0xC6120000, 15) ||                               // 198.18/15 benchmarking
      in(0xC6336400, 24) ||                               // 198.51.100/24 TEST-NET-2
      in(0xCB007100, 24) ||                               // 203.0.113/24 TEST-NET-3
      in(0xE0000000, 4) ||                                // 224/4 multicast
      in(0xF0000000, 4))                                  // 240/4 reserved, broadcast
    return AddressClass::restricted;
  return AddressClass::global;
}

std::uint32_t v4_at(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
         (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

AddressClass classify_v6(const std::uint8_t* b) {
  auto zeros = [b](int from, int to) {
    for (int i = from; i < to; ++i)
      if (b[i] != 0) return false;
    return true;
  };
  // ::ffff:a.b.c.d (IPv4-mapped): the IPv4 address is what a socket reaches.
  if (zeros(0, 10) && b[10] == 0xff && b[11] == 0xff) return classify_v4(v4_at(b + 12));
  // 64:ff9b::/96 (NAT64 well-known prefix): reaches the embedded IPv4 address.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zeros(4, 12))
    return classify_v4(v4_at(b + 12));
  if (zeros(0, 15) && b[15] == 1) return AddressClass::loopback;  // ::1
  // Outside 2000::/3 (global unicast) everything is special: :: unspecified, ::/96
  // IPv4-compatible, 100::/64 discard, fc00::/7 unique local, fe80::/10 link-local,
  // fec0::/10 site-local, ff00::/8 multicast, 64:ff9b:1::/48 local NAT64...
  if ((b[0] & 0xE0) != 0x20) return AddressClass::restricted;
  // 2001::/23 IETF protocol assignments (Teredo 2001::/32, ORCHID, ...).
  if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xFE) == 0x00) return AddressClass::restricted;
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)  // 2001:db8::/32 docs
    return AddressClass::restricted;
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xF0) == 0x00)  // 3fff::/20 docs
    return AddressClass::restricted;
  if (b[0] == 0x20 && b[1] == 0x02) return classify_v4(v4_at(b + 2));  // 2002::/16 6to4
  return AddressClass::global;
}

}  // namespace

AddressClass classify_address(const sockaddr& sa) {
  if (sa.sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    return classify_v4(ntohl(in->sin_addr.s_addr));
  }
  if (sa.sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    return classify_v6(in6->sin6_addr.s6_addr);
  }
  return AddressClass::restricted;  // some other family: not a place to POST to
}

std::optional<sockaddr_storage> literal_address(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;  // never a DNS query
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return std::nullopt;
  std::optional<sockaddr_storage> out;
  if (res && res->ai_addr && res->ai_addrlen <= sizeof(sockaddr_storage)) {
    sockaddr_storage ss{};
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    out = ss;
  }
  freeaddrinfo(res);
  return out;
}

std::string address_text(const sockaddr& sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa.sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf)) return buf;
  } else if (sa.sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf)) return buf;
  }
  return "?";
}

}  // namespace runq::util
