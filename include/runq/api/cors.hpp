#pragma once
// CORS: which browser origins may call the API, and the headers that tell them so.
#include "runq/http/message.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace runq::api {

// Off unless origins are configured (--cors-origin). An origin is matched exactly
// (ASCII case-insensitively), e.g. "https://app.example.com" or "http://localhost:3000";
// "*" matches any origin. Requests from other origins get no CORS headers at all.
class Cors {
 public:
  explicit Cors(std::vector<std::string> origins = {}, int max_age_s = 600);

  bool enabled() const { return !origins_.empty(); }

  // The request's Origin if CORS is on and it is an allowed origin, else nullptr.
  const std::string* allowed_origin(const http::Request& request) const;

  // A preflight: OPTIONS with an allowed Origin and Access-Control-Request-Method.
  bool is_preflight(const http::Request& request) const;

  // Access-Control-Allow-Origin (the origin itself), Vary: Origin and
  // Access-Control-Expose-Headers, added to any answer to an allowed origin.
  static void decorate(http::Response& response, const std::string& origin);

  // 204 to a preflight of a route answering `methods` ("GET, POST"): Allow-Methods,
  // Allow-Headers (Authorization, X-API-Key, Content-Type, Idempotency-Key,
  // Last-Event-ID) and Max-Age. The caller decorates it like any other answer.
  http::Response preflight(std::string_view methods) const;

 private:
  std::vector<std::string> origins_;
  int max_age_s_;
};

}  // namespace runq::api
