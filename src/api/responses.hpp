#pragma once
// The answers the routes share: JSON bodies, error details, the refusals every route may
// give. Internal to the api layer.
#include "runq/api/json_render.hpp"
#include "runq/api/validation_errors.hpp"
#include "runq/http/message.hpp"

#include <string>
#include <string_view>
#include <utility>

namespace runq::api {

// Seconds a client is asked to wait when the job store cannot be written.
inline constexpr int kStoreRetryAfterS = 5;

http::Response json_response(int status, std::string body);
http::Response json_response(int status, const Json& body);
// {"detail": detail}
http::Response error_response(int status, std::string_view detail);
// 404 {"detail": "Job not found: <id>"}
http::Response not_found_job(std::string_view id);
http::Response validation_response(const ValidationErrors& errors);
http::Response internal_error();
// 503 for a store that cannot be written now (disk full, read-only): the client may
// retry the very same request later.
http::Response store_unavailable(std::string_view detail);
// 401 with WWW-Authenticate: Bearer.
http::Response unauthorized();
// 405 with the Allow header ("GET, POST").
http::Response method_not_allowed(std::string_view allow);

// Takes `reply` from a route that answers later, leaving it empty: the dispatcher then
// knows the reply was handed on and must not answer it.
inline http::Reply hand_on(http::Reply& reply) { return std::exchange(reply, nullptr); }

}  // namespace runq::api
