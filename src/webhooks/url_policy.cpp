// Which webhook URLs runq may POST to: http(s) with a host, and (unless private targets
// are allowed) only public addresses. No DNS here: a submit is checked on an I/O thread,
// and a lookup can take seconds. A host name is resolved at delivery, on the
// dispatcher's thread, and every address it resolves to is checked then (refuse_address)
// and is the one connected to, so DNS rebinding between the check and the connection
// cannot reach a private address.
#include "runq/webhooks/url_policy.hpp"

#include "runq/util/ascii.hpp"
#include "runq/util/ip_address.hpp"
#include "runq/util/url.hpp"

#include <string_view>
#include <variant>

namespace runq::webhooks {

namespace {

constexpr const char* kBadScheme = "Webhook URL must use http or https scheme";
constexpr const char* kNoHost = "Webhook URL must include a valid hostname";
constexpr const char* kBadPort = "Webhook URL must have a port from 1 to 65535";
constexpr const char* kLocalhost = "Webhook URL cannot be a localhost address";
constexpr const char* kRestricted =
    "Webhook URL resolves to a private or restricted network address";
constexpr const char* kUnresolved = "Webhook URL hostname could not be resolved";

constexpr std::size_t kMaxNameLength = 253;  // RFC 1035, without the final dot
constexpr std::size_t kMaxLabelLength = 63;

// "localhost", "localhost." and "*.localhost" always mean this machine (RFC 6761).
bool is_localhost_name(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  constexpr std::string_view kName = "localhost";
  if (util::iequals(host, kName)) return true;
  return host.size() > kName.size() + 1 &&
         util::iequals(host.substr(host.size() - kName.size()), kName) &&
         host[host.size() - kName.size() - 1] == '.';
}

// A name no lookup can ever answer: one under ".invalid" (RFC 6761), or one that is not
// a DNS host name (characters other than letters, digits, '-', '_', '.'; empty or
// over-long labels). Refused at submit, so they need no lookup to refuse.
bool never_resolves(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > kMaxNameLength) return true;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return true;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > kMaxLabelLength) return true;
  }
  if (label == 0) return true;
  constexpr std::string_view kInvalid = "invalid";
  return util::iequals(host, kInvalid) ||
         (host.size() > kInvalid.size() &&
          util::iequals(host.substr(host.size() - kInvalid.size()), kInvalid) &&
          host[host.size() - kInvalid.size() - 1] == '.');
}

}  // namespace

std::optional<std::string> refuse_url(const std::string& url, bool allow_private) {
  const auto parsed = util::parse_url(url);
  if (const auto* error = std::get_if<util::UrlError>(&parsed)) {
    switch (*error) {
      case util::UrlError::scheme: return std::string(kBadScheme);
      case util::UrlError::host: return std::string(kNoHost);
      case util::UrlError::port: return std::string(kBadPort);
    }
  }
  if (allow_private) return std::nullopt;
  const util::Url& u = std::get<util::Url>(parsed);

  if (is_localhost_name(u.host)) return std::string(kLocalhost);
  // A literal address is judged as written.
  if (const auto address = util::literal_address(u.host)) {
    switch (util::classify_address(reinterpret_cast<const sockaddr&>(*address))) {
      case util::AddressClass::global: return std::nullopt;
      case util::AddressClass::loopback: return std::string(kLocalhost);
      case util::AddressClass::restricted: return std::string(kRestricted);
    }
  }
  if (never_resolves(u.host)) return std::string(kUnresolved);
  return std::nullopt;  // a name: its addresses are checked at delivery
}

std::optional<std::string> refuse_address(const sockaddr& address) {
  if (util::classify_address(address) == util::AddressClass::global) return std::nullopt;
  return std::string(kRestricted) + " (" + util::address_text(address) + ")";
}

}  // namespace runq::webhooks
