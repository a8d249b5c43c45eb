#pragma once
// What keeps web pages a user visits from driving a runq on that user's machine.
// - DNS rebinding: a page on evil.example whose name is made to resolve to 127.0.0.1
//   talks to runq as its own origin, so CORS does not stop it. The Host it sends is its
//   own name: while runq listens on loopback without API keys, a Host that is not a
//   loopback name or address, the --public-url host or an --allowed-host gets 421.
// - Cross-origin writes: a page may send a "simple" POST to another origin without asking
//   (no preflight). A browser's POST or DELETE that says it comes from another site
//   (Sec-Fetch-Site, else Origin) gets 403, unless --cors-origin allows that origin.
// Requests without those headers (curl, httpx, the CLI) are not browsers' and pass.
#include "runq/api/cors.hpp"
#include "runq/http/message.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runq::api {

struct HostCheck {
  bool enabled = false;                // on: loopback listener and no API keys
  std::vector<std::string> allowed;    // names besides loopback ones; "*" allows any
};

class RequestGuard {
 public:
  RequestGuard(HostCheck hosts, const Cors& cors);
  // The refusal to send instead of an answer, or nullopt if the request may go on.
  std::optional<http::Response> check(const http::Request& request) const;

 private:
  bool host_allowed(std::string_view host_header) const;
  bool cross_origin_write(const http::Request& request) const;

  HostCheck hosts_;
  const Cors& cors_;
};

// "127.0.0.1:8005" -> "127.0.0.1", "[::1]:80" -> "::1", "Example.COM." -> "example.com".
std::string host_name(std::string_view host_header);
// localhost, *.localhost (RFC 6761), 127/8, ::1 and their other spellings.
bool is_loopback_name(const std::string& name);

}  // namespace runq::api
