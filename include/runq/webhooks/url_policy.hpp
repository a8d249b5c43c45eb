#pragma once
// Which webhook URLs runq may POST to. Beast-free and SQLite-free (library
// runq_url_policy), so the API can check a submit without linking the dispatcher.
#include <sys/socket.h>

#include <optional>
#include <string>

namespace runq::webhooks {

// Why `url` may not be a webhook target, or nullopt if it may. Makes no DNS lookup, so
// it may run on an I/O thread: the URL must be http(s) with a host, and unless
// allow_private it must not name localhost (or *.localhost), a literal address that is
// not public (loopback, private, link-local, multicast, unspecified, reserved), or a name
// that can never resolve. Other names pass here: they are judged at delivery, by
// refuse_address on every address they resolve to then.
std::optional<std::string> refuse_url(const std::string& url, bool allow_private);

// Why a webhook may not be delivered to `address` (one its host resolved to), or nullopt
// if it is public. The delivery connects to the address checked here.
std::optional<std::string> refuse_address(const sockaddr& address);

}  // namespace runq::webhooks
