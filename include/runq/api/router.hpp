#pragma once
#include "runq/api/auth.hpp"
#include "runq/api/cors.hpp"
#include "runq/api/status_cache.hpp"
#include "runq/http/message.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/metrics/runq_metrics.hpp"

#include <functional>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace runq::api {

struct ApiOptions {
  // Base for poll_url/stream_url/Location, e.g. "https://jobs.example.com". When unset
  // they are built from the request's Host header ("http://" + Host).
  std::optional<std::string> public_url;
  int max_wait_s = 60;  // largest ?wait= accepted
  bool allow_private_webhooks = false;  // --allow-private-webhooks
  // API keys (--api-key, --api-keys-file). Null or disabled: no key needed, one owner "".
  // Enabled: every path but /health needs a configured key (else 401), and a caller sees
  // only the jobs its key submitted.
  std::shared_ptr<const ApiKeys> keys;
  // --cors-origin: browser origins allowed to call the API (none: CORS off).
  std::vector<std::string> cors_origins;
  int cors_max_age_s = 600;
  // Open client connections, for /metrics (the HTTP server knows them). May be empty.
  std::function<std::int64_t()> open_connections;
};

// The route template a path belongs to (metrics::Route::other for unknown paths): what
// access logs and metrics say instead of the raw path.
metrics::Route route_of(std::string_view path);

// Maps each route of the API to JobService calls and renders the JSON answers.
// No Beast, no SQL: a plain Request in, a Response out (through `reply`).
class Router {
 public:
  Router(jobs::JobService& service, ApiOptions options);
  void handle(http::Request&& request, http::Reply reply);

 private:
  // Whose jobs a request may see: nullopt when keys are off (every job), else the
  // owner id of the caller's key (only the jobs that key submitted).
  using Caller = std::optional<std::string>;

  // The routes, one each. A route returns the answer to send now, or nullopt once it has
  // handed `reply` on (taken it, leaving `reply` empty) to be answered later. `id` is
  // the decoded, valid job id from the path. A job the caller may not see is answered
  // exactly like a job that does not exist (404).
  std::optional<http::Response> submit(const http::Request& request, const Caller& caller,
                                       http::Reply& reply);
  http::Response list(const http::Request& request, const Caller& caller);
  std::optional<http::Response> get_status(const http::Request& request, const std::string& id,
                                           const Caller& caller, http::Reply& reply);
  http::Response remove(const std::string& id, const Caller& caller);
  std::optional<http::Response> get_result(const http::Request& request, const std::string& id,
                                           const Caller& caller, http::Reply& reply);
  http::Response cancel(const std::string& id, const Caller& caller);
  http::Response stream(const http::Request& request, const std::string& id,
                        const Caller& caller);
  http::Response health();
  http::Response stats(const Caller& caller);
  http::Response metrics();
  http::Response openapi();

  // True if the job exists and the caller may see it.
  bool visible(const std::string& id, const Caller& caller);

  // What GET status / GET result answer with. `known` is the job's status view when the
  // caller has just looked it up (and may see it), else nullptr.
  using Answer = http::Response (Router::*)(const std::string& id, const Caller& caller,
                                            const jobs::Job* known);
  http::Response status_answer(const std::string& id, const Caller& caller,
                               const jobs::Job* known);
  http::Response result_answer(const std::string& id, const Caller& caller,
                               const jobs::Job* known);

  // `answer` now; or, when the request has ?wait=N and the job isn't terminal yet, hands
  // `reply` on and answers once wait_terminal reports the job ended or the wait ran out.
  // A bad ?wait= is a 422. `what` names the route in logs.
  std::optional<http::Response> answer_or_wait(const http::Request& request,
                                               const std::string& id, const Caller& caller,
                                               http::Reply& reply, Answer answer,
                                               std::string_view what);

  // Base of poll_url/stream_url/Location: public_url, else "http://" + Host.
  std::string base_url(const http::Request& request) const;

  jobs::JobService& service_;
  ApiOptions options_;
  Cors cors_;
  // Status bodies of finished jobs that were polled (about 600 bytes each).
  static constexpr std::size_t kStatusCacheEntries = 10'000;
  StatusCache status_cache_{kStatusCacheEntries};
};

}  // namespace runq::api
