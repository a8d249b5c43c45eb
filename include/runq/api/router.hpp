#pragma once
#include "runq/http/message.hpp"
#include "runq/jobs/job_service.hpp"

#include <optional>
#include <string>

namespace runq::api {

struct ApiOptions {
  // Base for poll_url/stream_url/Location, e.g. "https://jobs.example.com". When unset
  // they are built from the request's Host header ("http://" + Host).
  std::optional<std::string> public_url;
  int max_wait_s = 60;  // largest ?wait= accepted
};

// Maps each route of the API to JobService calls and renders the JSON answers.
// No Beast, no SQL: a plain Request in, a Response out (through `reply`).
class Router {
 public:
  Router(jobs::JobService& service, ApiOptions options);
  void handle(http::Request&& request, http::Reply reply);

 private:
  jobs::JobService& service_;
  ApiOptions options_;
};

}  // namespace runq::api
