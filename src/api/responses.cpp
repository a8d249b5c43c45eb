#include "responses.hpp"

namespace runq::api {

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::Response json_response(int status, const Json& body) {
  return json_response(status, dump(body));
}

http::Response error_response(int status, std::string_view detail) {
  return json_response(status, error_body(detail));
}

http::Response not_found_job(std::string_view id) {
  std::string detail = "Job not found: ";
  detail += id;
  return error_response(404, detail);
}

http::Response validation_response(const ValidationErrors& errors) {
  return json_response(422, validation_error_body(errors));
}

http::Response internal_error() { return error_response(500, "Internal server error"); }

http::Response store_unavailable(std::string_view detail) {
  http::Response r = error_response(503, detail);
  r.headers.push_back({"Retry-After", std::to_string(kStoreRetryAfterS)});
  return r;
}

http::Response unauthorized() {
  http::Response r = error_response(401, "Unauthorized");
  r.headers.push_back({"WWW-Authenticate", "Bearer"});
  return r;
}

http::Response method_not_allowed(std::string_view allow) {
  http::Response r = error_response(405, "Method Not Allowed");
  r.headers.push_back({"Allow", std::string(allow)});
  return r;
}

}  // namespace runq::api
