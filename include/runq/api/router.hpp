#pragma once
#include "runq/api/auth.hpp"
#include "runq/api/cors.hpp"
#include "runq/api/request_guard.hpp"
#include "runq/api/status_cache.hpp"
#include "runq/http/message.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/metrics/runq_metrics.hpp"

#include <cstddef>
#include <cstdint>
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
  // The Host check against DNS rebinding (request_guard.hpp); main turns it on.
  HostCheck host_check;
  // Open client connections, for /metrics (the HTTP server knows them). May be empty.
  std::function<std::int64_t()> open_connections;
};

// What a request's path matched in the route table: which route, and where the job id is
// in the path. Plain data: the path is matched once per request and the match handed on
// (the access log and the metrics read its label, the router dispatches on it).
struct RouteMatch {
  static constexpr std::uint8_t kNone = 0xff;
  std::uint8_t route = kNone;  // row of the route table; kNone: no route
  std::size_t id_begin = 0;    // the {job_id} segment, as offsets: the match may outlive
  std::size_t id_size = 0;     // a move of the request's path
  bool found() const { return route != kNone; }
  // The raw (not percent-decoded) job id segment of `path`; "" for routes without one.
  std::string_view id(std::string_view path) const { return path.substr(id_begin, id_size); }
};

// The row of the route table `path` fits, if any. No regex, no allocation.
RouteMatch match_route(std::string_view path);
// The route's template ("/api/v1/runs/{job_id}"), "other" for no route: the `route` of
// the access log and of the HTTP metrics (a raw path would make one series per job id).
std::string_view route_template(const RouteMatch& match);
// The route as the HTTP metrics count it (slot and label).
metrics::RouteLabel metrics_route(const RouteMatch& match);

// Maps each route of the API to JobService calls and renders the JSON answers.
// No Beast, no SQL: a plain Request in, a Response out (through `reply`).
class Router {
 public:
  Router(jobs::JobService& service, ApiOptions options);
  // Matches the request's path, then answers as below.
  void handle(http::Request&& request, http::Reply reply);
  // Answers a request whose path was already matched (`match` = match_route(request.path)).
  void handle(http::Request&& request, const RouteMatch& match, http::Reply reply);

 private:
  // Whose jobs a request may see: nullopt when keys are off (every job), else the
  // owner id of the caller's key (only the jobs that key submitted).
  using Caller = std::optional<std::string>;

  // What a route handler gets: the request, the decoded path parameter (a valid job id, or
  // the dashboard file's name; "" for routes without one), the caller, and the reply to
  // hand on when answering later.
  struct Call {
    const http::Request& request;
    const std::string& id;
    const Caller& caller;
    http::Reply& reply;
  };
  // A route handler returns the answer to send now, or nullopt once it has handed `reply`
  // on (taken it, leaving `reply` empty) to be answered later. A job the caller may not
  // see is answered exactly like a job that does not exist (404).
  using Handler = std::optional<http::Response> (Router::*)(Call& call);

  // A row of the route table (routes.cpp), the one list of the API's routes.
  struct Route {
    // `path`: the template, a string literal, matched literally but for at most one
    // parameter, "{job_id}" or "{file}" (one non-empty segment); it is also the route's
    // label in access logs and metrics. The handler of each method; nullptr: 405 (and
    // not in Allow). needs_key: false for a route answered without an API key even when
    // keys are on.
    constexpr Route(std::string_view path, Handler get, Handler post, Handler del,
                    bool needs_key)
        : path(path),
          has_id(path.find('{') != std::string_view::npos),
          job_param(path.find("{job_id}") != std::string_view::npos),
          prefix(has_id ? path.substr(0, path.find('{')) : path),
          suffix(has_id ? path.substr(path.find('}') + 1) : std::string_view{}),
          get(get),
          post(post),
          del(del),
          needs_key(needs_key) {}
    std::string_view path;
    bool has_id;
    bool job_param;  // the parameter is a job id: one that is not well-formed is a 404
    std::string_view prefix;  // the template before and after "{job_id}", computed once
    std::string_view suffix;  // (the table is constant-initialized)
    Handler get;
    Handler post;
    Handler del;
    bool needs_key;
  };
  static const Route kRoutes[];
  static const std::size_t kRouteCount;
  friend RouteMatch match_route(std::string_view path);
  friend std::string_view route_template(const RouteMatch& match);
  friend metrics::RouteLabel metrics_route(const RouteMatch& match);
  // The handler of `method` on `route`, or nullptr. The Allow header lists the others.
  static Handler handler_of(const Route& route, std::string_view method);
  static std::string_view allowed_methods(const Route& route);

  // The routes (job_routes.cpp, service_routes.cpp).
  std::optional<http::Response> submit(Call& call);
  std::optional<http::Response> list(Call& call);
  std::optional<http::Response> get_status(Call& call);
  std::optional<http::Response> remove(Call& call);
  std::optional<http::Response> get_result(Call& call);
  std::optional<http::Response> cancel(Call& call);
  std::optional<http::Response> stream(Call& call);
  std::optional<http::Response> health(Call& call);
  std::optional<http::Response> stats(Call& call);
  std::optional<http::Response> metrics(Call& call);
  std::optional<http::Response> openapi(Call& call);
  std::optional<http::Response> ui_redirect(Call& call);
  std::optional<http::Response> ui_file(Call& call);

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
  std::optional<http::Response> answer_or_wait(Call& call, Answer answer, std::string_view what);

  // Base of poll_url/stream_url/Location: public_url, else "http://" + Host.
  std::string base_url(const http::Request& request) const;

  jobs::JobService& service_;
  ApiOptions options_;
  Cors cors_;
  RequestGuard guard_;
  // Status bodies of finished jobs that were polled (about 600 bytes each).
  static constexpr std::size_t kStatusCacheEntries = 10'000;
  StatusCache status_cache_{kStatusCacheEntries};
};

}  // namespace runq::api
