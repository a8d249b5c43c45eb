// Which webhook URLs runq may POST to: http(s) with a host, and (unless private targets
// are allowed) only hosts whose every address is public.
#include "runq/webhooks/url_policy.hpp"
#include "runq/util/ascii.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

namespace runq::webhooks {

namespace {

constexpr const char* kBadScheme = "Webhook URL must use http or https scheme";
constexpr const char* kNoHost = "Webhook URL must include a valid hostname";
constexpr const char* kLocalhost = "Webhook URL cannot be a localhost address";
constexpr const char* kRestricted =
    "Webhook URL resolves to a private or restricted network address";
constexpr const char* kUnresolved = "Webhook URL hostname could not be resolved";

// A name lookup longer than this counts as "could not be resolved" (submits run the
// policy on an io thread: a dead DNS server must not hold it for long).
constexpr auto kResolveTimeout = std::chrono::seconds(3);
// At most this many lookups still running in the background (ones that timed out keep
// their thread until getaddrinfo returns); beyond it a name counts as unresolvable.
constexpr int kMaxLookupsInFlight = 32;

struct ParsedHost {
  std::string host;  // lower-case; IPv6 literals without brackets
  bool ipv6_literal = false;
};

// The host of an http(s) URL, or the reason it has none usable. Strict where URL parsers
// disagree (several '@', backslashes), so that the host checked here is the host that
// will be connected to.
std::variant<ParsedHost, const char*> parse_host(std::string_view url) {
  std::string_view rest;
  if (util::istarts_with(url, "http://")) rest = url.substr(7);
  else if (util::istarts_with(url, "https://")) rest = url.substr(8);
  else return kBadScheme;

  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('\\') != std::string_view::npos) return kNoHost;
  if (auto at = authority.find('@'); at != std::string_view::npos) {
    if (authority.find('@', at + 1) != std::string_view::npos) return kNoHost;
    authority = authority.substr(at + 1);
  }
  ParsedHost out;
  std::string_view host;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return kNoHost;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return kNoHost;
    out.ipv6_literal = true;
  } else {
    const auto colon = authority.find(':');
    if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos)
      return kNoHost;  // "a:b:80": parsers disagree on where the host ends
    host = authority.substr(0, colon);
  }
  if (host.empty()) return kNoHost;
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return kNoHost;
    out.host.push_back(util::ascii_lower(c));
  }
  if (out.ipv6_literal) {
    // Zone ids ("fe80::1%25eth0") only make sense for link-local addresses.
    in6_addr a{};
    if (inet_pton(AF_INET6, out.host.c_str(), &a) != 1) return kNoHost;
  }
  return out;
}

bool is_localhost_name(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  constexpr std::string_view kName = "localhost";
  if (host == kName) return true;
  return host.size() > kName.size() + 1 && host.substr(host.size() - kName.size()) == kName &&
         host[host.size() - kName.size() - 1] == '.';
}

enum class AddrClass { ok, loopback, restricted };

AddrClass classify_v4(std::uint32_t a) {  // host byte order
  auto in = [a](std::uint32_t net, int bits) {
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x7F000000, 8)) return AddrClass::loopback;  // 127/8
  if (in(0x00000000, 8) ||                             // "this network", 0.0.0.0
      in(0x0A000000, 8) ||                             // 10/8
      in(0x64400000, 10) ||                            // 100.64/10 CGNAT
      in(0xA9FE0000, 16) ||                            // 169.254/16 link-local
      in(0xAC100000, 12) ||                            // 172.16/12
      in(0xC0000000, 24) ||                            // 192.0.0/24 IETF assignments
      in(0xC0000200, 24) ||                            // 192.0.2/24 TEST-NET-1
      in(0xC0586300, 24) ||                            // 192.88.99/24 6to4 relay
      in(0xC0A80000, 16) ||                            // 192.168/16
      in(0xC6120000, 15) ||                            // 198.18/15 benchmarking
      in(0xC6336400, 24) ||                            // 198.51.100/24 TEST-NET-2
      in(0xCB007100, 24) ||                            // 203.0.113/24 TEST-NET-3
      in(0xE0000000, 4) ||                             // 224/4 multicast
      in(0xF0000000, 4))                               // 240/4 reserved, broadcast
    return AddrClass::restricted;
  return AddrClass::ok;
}

std::uint32_t v4_at(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
         (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

AddrClass classify_v6(const std::uint8_t* b) {
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
  if (zeros(0, 15) && b[15] == 1) return AddrClass::loopback;  // ::1
  // Outside 2000::/3 (global unicast) everything is special: :: unspecified, ::/96
  // IPv4-compatible, 100::/64 discard, fc00::/7 unique local, fe80::/10 link-local,
  // fec0::/10 site-local, ff00::/8 multicast, 64:ff9b:1::/48 local NAT64...
  if ((b[0] & 0xE0) != 0x20) return AddrClass::restricted;
  // 2001::/23 IETF protocol assignments (Teredo 2001::/32, ORCHID, ...).
  if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xFE) == 0x00) return AddrClass::restricted;
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)  // 2001:db8::/32 docs
    return AddrClass::restricted;
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xF0) == 0x00)  // 3fff::/20 docs
    return AddrClass::restricted;
  if (b[0] == 0x20 && b[1] == 0x02) return classify_v4(v4_at(b + 2));  // 2002::/16 6to4
  return AddrClass::ok;
}

AddrClass classify(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return classify_v4(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return classify_v6(in6->sin6_addr.s6_addr);
  }
  return AddrClass::restricted;  // some other family: not a place to POST to
}

// Every address of `host` (IPv4 and IPv6); empty if it could not be resolved in time.
struct Lookup {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<sockaddr_storage> addrs;
};
std::atomic<int> g_lookups_in_flight{0};

void collect(addrinfo* res, std::vector<sockaddr_storage>& out) {
  for (addrinfo* p = res; p; p = p->ai_next) {
    if (!p->ai_addr || p->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, p->ai_addr, p->ai_addrlen);
    out.push_back(ss);
  }
}

std::vector<sockaddr_storage> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // A and AAAA; no AI_ADDRCONFIG: check every address
  hints.ai_socktype = SOCK_STREAM;

  // Literal addresses (also the inet_aton forms such as "127.1" or "0x7f.1"): no DNS.
  std::vector<sockaddr_storage> out;
  addrinfo numeric = hints;
  numeric.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &numeric, &res) == 0) {
    collect(res, out);
    freeaddrinfo(res);
    return out;
  }

  if (g_lookups_in_flight.fetch_add(1) >= kMaxLookupsInFlight) {
    g_lookups_in_flight.fetch_sub(1);
    return out;
  }
  auto lookup = std::make_shared<Lookup>();
  try {
    std::thread([lookup, host, hints] {
      addrinfo* r = nullptr;
      std::vector<sockaddr_storage> found;
      if (getaddrinfo(host.c_str(), nullptr, &hints, &r) == 0) {
        collect(r, found);
        freeaddrinfo(r);
      }
      {
        std::lock_guard lock(lookup->mu);
        lookup->addrs = std::move(found);
        lookup->done = true;
      }
      lookup->cv.notify_all();
      g_lookups_in_flight.fetch_sub(1);
    }).detach();
  } catch (const std::system_error&) {
    g_lookups_in_flight.fetch_sub(1);
    return out;
  }
  std::unique_lock lock(lookup->mu);
  if (lookup->cv.wait_for(lock, kResolveTimeout, [&] { return lookup->done; }))
    out = std::move(lookup->addrs);
  return out;
}

}  // namespace

std::optional<std::string> refuse_url(const std::string& url, bool allow_private) {
  auto parsed = parse_host(url);
  if (auto* reason = std::get_if<const char*>(&parsed)) return std::string(*reason);
  const ParsedHost& h = std::get<ParsedHost>(parsed);
  if (allow_private) return std::nullopt;

  if (is_localhost_name(h.host)) return std::string(kLocalhost);
  const auto addrs = resolve(h.host);
  if (addrs.empty()) return std::string(kUnresolved);
  // A literal address is judged as written; a name by the worst address it has.
  in6_addr a6{};
  in_addr a4{};
  const bool literal = h.ipv6_literal || inet_pton(AF_INET, h.host.c_str(), &a4) == 1 ||
                       inet_pton(AF_INET6, h.host.c_str(), &a6) == 1;
  bool restricted = false, loopback = false;
  for (const auto& ss : addrs) {
    switch (classify(reinterpret_cast<const sockaddr*>(&ss))) {
      case AddrClass::ok: break;
      case AddrClass::loopback: loopback = true; break;
      case AddrClass::restricted: restricted = true; break;
    }
  }
  if (loopback && literal && !restricted) return std::string(kLocalhost);
  if (loopback || restricted) return std::string(kRestricted);
  return std::nullopt;
}

}  // namespace runq::webhooks
