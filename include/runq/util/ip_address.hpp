#pragma once
// What kind of network an IP address is in: the part of the webhook policy that needs
// no DNS, shared by the submit-time check (literal addresses) and the delivery-time one
// (every address a name resolved to).
#include <sys/socket.h>

#include <optional>
#include <string>

namespace runq::util {

enum class AddressClass {
  global,      // a public address
  loopback,    // 127/8, ::1 (also IPv4-mapped)
  restricted,  // private, link-local, CGNAT, multicast, unspecified, documentation, ...
};

AddressClass classify_address(const sockaddr& address);

// The address `host` is a literal for, with no DNS: dotted quads and the other inet_aton
// spellings ("127.1", "0x7f.0.0.1", "2130706433"), and IPv6 without brackets.
// nullopt for a name.
std::optional<sockaddr_storage> literal_address(const std::string& host);

// "10.0.0.1", "::1": for messages.
std::string address_text(const sockaddr& address);

}  // namespace runq::util
