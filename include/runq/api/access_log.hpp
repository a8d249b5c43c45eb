#pragma once
// Per-request observation around the API's handler: a request id (the client's
// X-Request-ID when sane, else made here) echoed in the answer, one access-log line and
// the HTTP metrics (route template, method, status, latency) once the answer is known.
#include "runq/api/router.hpp"
#include "runq/http/message.hpp"

#include <functional>
#include <optional>
#include <string>

namespace runq::api {

// The client's X-Request-ID if it is 1..128 printable ASCII characters, else nullopt.
std::optional<std::string> sane_request_id(const std::string* header);
// A new request id: unique within this process, unlikely to repeat across processes.
std::string new_request_id();

// A handler that is given what the request's path matched (api::Router::handle): the path
// is matched once, by observed(), for its labels and for the handler.
using RoutedHandler = std::function<void(http::Request&&, const RouteMatch&, http::Reply)>;

// `inner` with the above around it; without the access-log line if !access_log.
http::Handler observed(RoutedHandler inner, bool access_log = true);
// The same for a handler that needs no match.
http::Handler observed(http::Handler inner, bool access_log = true);

}  // namespace runq::api
