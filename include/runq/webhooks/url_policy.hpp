#pragma once
#include <optional>
#include <string>

namespace runq::webhooks {

// Why `url` may not be a webhook target, or nullopt if it may: it must be http(s) with a
// host, and unless allow_private, every address the host resolves to must be public
// (not loopback, private, link-local, multicast, unspecified or reserved).
std::optional<std::string> refuse_url(const std::string& url, bool allow_private);

}  // namespace runq::webhooks
