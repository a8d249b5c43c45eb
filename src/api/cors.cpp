#include "runq/api/cors.hpp"
#include "runq/util/ascii.hpp"

#include <utility>

namespace runq::api {

Cors::Cors(std::vector<std::string> origins, int max_age_s)
    : origins_(std::move(origins)), max_age_s_(max_age_s) {}

const std::string* Cors::allowed_origin(const http::Request& request) const {
  if (origins_.empty()) return nullptr;
  const std::string* origin = request.header("origin");
  if (!origin || origin->empty()) return nullptr;
  for (const auto& o : origins_)
    if (o == "*" || util::iequals(o, *origin)) return origin;
  return nullptr;
}

bool Cors::is_preflight(const http::Request& request) const {
  return request.method == "OPTIONS" && allowed_origin(request) != nullptr &&
         request.header("access-control-request-method") != nullptr;
}

void Cors::decorate(http::Response& response, const std::string& origin) {
  response.headers.push_back({"Access-Control-Allow-Origin", origin});
  response.headers.push_back({"Vary", "Origin"});
  response.headers.push_back({"Access-Control-Expose-Headers",
                              "Location, Retry-After, WWW-Authenticate, X-Request-ID"});
}

http::Response Cors::preflight(std::string_view methods) const {
  http::Response r;
  r.status = 204;
  r.content_type.clear();
  std::string allow(methods);
  allow += ", OPTIONS";
  r.headers.push_back({"Access-Control-Allow-Methods", std::move(allow)});
  r.headers.push_back(
      {"Access-Control-Allow-Headers",
       "Authorization, X-API-Key, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-ID"});
  r.headers.push_back({"Access-Control-Max-Age", std::to_string(max_age_s_)});
  return r;
}

}  // namespace runq::api
