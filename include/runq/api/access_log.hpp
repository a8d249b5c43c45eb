#pragma once
// Per-request observation around the API's handler: a request id (the client's
// X-Request-ID when sane, else made here) echoed in the answer, one access-log line and
// the HTTP metrics (route template, method, status, latency) once the answer is known.
#include "runq/http/message.hpp"

#include <optional>
#include <string>

namespace runq::api {

// The client's X-Request-ID if it is 1..128 printable ASCII characters, else nullopt.
std::optional<std::string> sane_request_id(const std::string* header);
// A new request id: unique within this process, unlikely to repeat across processes.
std::string new_request_id();

// `inner` with the above around it; without the access-log line if !access_log.
http::Handler observed(http::Handler inner, bool access_log = true);

}  // namespace runq::api
