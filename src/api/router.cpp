#include "runq/api/router.hpp"

#include "runq/api/json_render.hpp"
#include "runq/api/openapi.hpp"
#include "runq/api/sse_stream.hpp"
#include "runq/api/validation.hpp"
#include "runq/util/ids.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <string_view>
#include <utility>

namespace runq::api {

namespace {

using http::Header;
using http::Reply;
using http::Request;
using http::Response;

enum class Route {
  none, health, stats, metrics, openapi, runs, run, run_result, run_cancel, run_stream
};

struct Match {
  Route route = Route::none;
  std::string_view id;  // raw path segment (not decoded)
};

// The routing table, by hand: no regex, no allocation.
Match match_path(std::string_view path) {
  if (path == "/health") return {Route::health, {}};
  if (path == "/stats") return {Route::stats, {}};
  if (path == "/metrics") return {Route::metrics, {}};
  if (path == "/openapi.json") return {Route::openapi, {}};
  constexpr std::string_view kRuns = "/api/v1/runs";
  if (!path.starts_with(kRuns)) return {};
  std::string_view rest = path.substr(kRuns.size());
  if (rest.empty()) return {Route::runs, {}};
  if (rest.front() != '/') return {};
  rest.remove_prefix(1);
  auto slash = rest.find('/');
  std::string_view id = rest.substr(0, slash);
  if (id.empty()) return {};
  if (slash == std::string_view::npos) return {Route::run, id};
  std::string_view tail = rest.substr(slash + 1);
  if (tail == "result") return {Route::run_result, id};
  if (tail == "cancel") return {Route::run_cancel, id};
  if (tail == "stream") return {Route::run_stream, id};
  return {};
}

// The methods a route answers, as the Allow header lists them.
std::string_view allowed_methods(Route r) {
  switch (r) {
    case Route::runs: return "GET, POST";
    case Route::run: return "GET, DELETE";
    case Route::run_cancel: return "POST";
    case Route::health:
    case Route::stats:
    case Route::metrics:
    case Route::openapi:
    case Route::run_result:
    case Route::run_stream: return "GET";
    case Route::none: break;
  }
  return "";
}

bool method_allowed(Route r, std::string_view method) {
  std::string_view allowed = allowed_methods(r);
  while (!allowed.empty()) {
    auto comma = allowed.find(", ");
    if (allowed.substr(0, comma) == method) return true;
    if (comma == std::string_view::npos) break;
    allowed.remove_prefix(comma + 2);
  }
  return false;
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response json_response(int status, const Json& body) { return json_response(status, dump(body)); }

Response error_response(int status, std::string_view detail) {
  return json_response(status, error_body(detail));
}

Response not_found_job(std::string_view id) {
  std::string detail = "Job not found: ";
  detail += id;
  return error_response(404, detail);
}

Response validation_response(const ValidationErrors& errors) {
  return json_response(422, validation_error_body(errors));
}

Response internal_error() { return error_response(500, "Internal server error"); }

// Seconds a client is asked to wait when the job store cannot be written.
constexpr int kStoreRetryAfterS = 5;

// 503 for a store that cannot be written now (disk full, read-only): the client may
// retry the very same request later.
Response store_unavailable(std::string_view detail) {
  Response r = error_response(503, detail);
  r.headers.push_back({"Retry-After", std::to_string(kStoreRetryAfterS)});
  return r;
}

Response unauthorized() {
  Response r = error_response(401, "Unauthorized");
  r.headers.push_back({"WWW-Authenticate", "Bearer"});
  return r;
}

constexpr std::string_view kInvalidStatus =
    ". Valid values: ['queued', 'running', 'succeeded', 'failed', 'cancelled']";

Response method_not_allowed(Route r) {
  Response response = error_response(405, "Method Not Allowed");
  response.headers.push_back({"Allow", std::string(allowed_methods(r))});
  return response;
}

// The job id from the path: percent-decoded only when it needs it (the hot path doesn't).
std::string decode_id(std::string_view raw) {
  return raw.find('%') == std::string_view::npos ? std::string(raw) : percent_decode(raw, false);
}

RetryAfter retry_after(const jobs::ServiceOptions& so) {
  return RetryAfter{so.retry_after_queued_s, so.retry_after_running_s, so.retention_s};
}

// Takes `reply` from a route that answers later, leaving it empty: handle() then knows the
// reply was handed on and must not answer it.
Reply hand_on(Reply& reply) { return std::exchange(reply, nullptr); }

// The 202/409/429/503 answer of a submit, once the service has committed or refused the job.
Response submit_answer(const jobs::SubmitOutcome& out, const std::string& base,
                       int queued_after) {
  using Kind = jobs::SubmitOutcome::Kind;
  Response r;
  switch (out.kind) {
    case Kind::accepted:
    case Kind::replayed: {
      Json body = accepted_json(out.job, base);
      std::string location = body["poll_url"].get<std::string>();
      r = json_response(202, body);
      r.headers.push_back({"Location", std::move(location)});
      r.headers.push_back({"Retry-After", std::to_string(queued_after)});
      break;
    }
    case Kind::conflict:
      r = error_response(409, "Idempotency key already used for job " + out.job.id +
                                  " with a different request");
      break;
    case Kind::queue_full:
      r = error_response(429, "Queue is full (" + std::to_string(out.queued_jobs) +
                                  " jobs queued); retry later");
      r.headers.push_back({"Retry-After", std::to_string(std::max(1, out.retry_after_s))});
      break;
    case Kind::shutting_down:
      r = error_response(503, "Server is shutting down");
      r.headers.push_back({"Retry-After", "5"});
      break;
    case Kind::store_unavailable:
      r = store_unavailable(out.error);
      break;
    case Kind::store_error:
      r = error_response(503, "Job store unavailable: " + out.error);
      r.headers.push_back({"Retry-After", std::to_string(kStoreRetryAfterS)});
      break;
  }
  return r;
}

// ?page, ?page_size, ?status, ?session_id into `q`; the 422/400 answer if one is bad.
std::optional<Response> parse_list_query(std::string_view query, store::ListQuery& q) {
  if (query.empty()) return std::nullopt;
  QueryParams params = parse_query(query);
  ValidationErrors errors;
  if (const std::string* v = query_value(params, "page"))
    if (auto n = query_int(*v, "page", 1, 10'000'000, errors)) q.page = static_cast<int>(*n);
  if (const std::string* v = query_value(params, "page_size"))
    if (auto n = query_int(*v, "page_size", 1, 100, errors)) q.page_size = static_cast<int>(*n);
  if (!errors.empty()) return validation_response(errors);
  if (const std::string* v = query_value(params, "status")) {
    auto st = jobs::parse_status(*v);
    if (!st) return error_response(400, "Invalid status: " + *v + std::string(kInvalidStatus));
    q.status = *st;
  }
  if (const std::string* v = query_value(params, "session_id")) q.session_id = *v;
  return std::nullopt;
}

}  // namespace

metrics::Route route_of(std::string_view path) {
  switch (match_path(path).route) {
    case Route::health: return metrics::Route::health;
    case Route::stats: return metrics::Route::stats;
    case Route::metrics: return metrics::Route::metrics;
    case Route::openapi: return metrics::Route::openapi;
    case Route::runs: return metrics::Route::runs;
    case Route::run: return metrics::Route::run;
    case Route::run_result: return metrics::Route::run_result;
    case Route::run_cancel: return metrics::Route::run_cancel;
    case Route::run_stream: return metrics::Route::run_stream;
    case Route::none: break;
  }
  return metrics::Route::other;
}

Router::Router(jobs::JobService& service, ApiOptions options)
    : service_(service),
      options_(std::move(options)),
      cors_(options_.cors_origins, options_.cors_max_age_s) {}

void Router::handle(http::Request&& request, http::Reply reply) {
  // An allowed browser origin gets the CORS headers on every answer, also those sent later.
  if (const std::string* origin = cors_.allowed_origin(request)) {
    reply = [reply = std::move(reply), origin = *origin](Response r) {
      Cors::decorate(r, origin);
      reply(std::move(r));
    };
  }
  // The answer to send now. A route that answers later hands `reply` on (leaves it empty).
  std::optional<Response> response;
  try {
    const Match m = match_path(request.path);
    // Every path but /health (and a CORS preflight, which browsers send without
    // credentials) needs a key when keys are on; the caller is then that key's owner.
    const bool preflight = m.route != Route::none && cors_.is_preflight(request);
    const bool needs_key = options_.keys && options_.keys->enabled() &&
                           m.route != Route::health && !preflight;
    Caller caller;
    if (needs_key) caller = options_.keys->authenticate(request);
    if (preflight) {
      response = cors_.preflight(allowed_methods(m.route));
    } else if (needs_key && !caller) {
      response = unauthorized();
    } else if (m.route == Route::none) {
      response = error_response(404, "Not Found");
    } else if (!method_allowed(m.route, request.method)) {
      response = method_not_allowed(m.route);
    } else if (const std::string id = decode_id(m.id); !m.id.empty() && !util::is_job_id(id)) {
      response = not_found_job(id);
    } else {
      const bool is_get = request.method == "GET";
      switch (m.route) {
        case Route::health: response = health(); break;
        case Route::stats: response = stats(caller); break;
        case Route::metrics: response = metrics(); break;
        case Route::openapi: response = openapi(); break;
        case Route::runs:
          response = is_get ? list(request, caller) : submit(request, caller, reply);
          break;
        case Route::run:
          response = is_get ? get_status(request, id, caller, reply) : remove(id, caller);
          break;
        case Route::run_result: response = get_result(request, id, caller, reply); break;
        case Route::run_cancel: response = cancel(id, caller); break;
        case Route::run_stream: response = stream(request, id, caller); break;
        case Route::none: break;
      }
    }
  } catch (const store::StoreUnavailable& e) {
    // e.g. cancel or delete while the disk is full: 503, never 500.
    spdlog::warn("api: {} {}: {}", request.method, request.path, e.what());
    response = store_unavailable(e.detail());
  } catch (const std::exception& e) {
    spdlog::error("api: {} {} failed: {}", request.method, request.path, e.what());
    response = internal_error();
  } catch (...) {
    spdlog::error("api: {} {} failed with an unknown exception", request.method, request.path);
    response = internal_error();
  }
  if (!reply) return;  // a route handed it on: it answers
  reply(response ? std::move(*response) : internal_error());
}

Response Router::health() { return json_response(200, health_json(service_.health())); }

// All of the server's numbers (not per key): an operator's view, behind a key like
// everything but /health.
Response Router::metrics() {
  const jobs::HealthStats h = service_.health();
  metrics::RunqMetrics::Gauges g;
  g.queued = h.queued_jobs;
  g.running = h.running_jobs;
  g.max_concurrent = h.max_concurrent;
  if (options_.open_connections) g.open_connections = options_.open_connections();
  g.store_writable = !h.store_fault;
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics::runq().render(g);
  return r;
}

Response Router::openapi() {
  Response r;
  r.body = std::string(openapi_json());
  return r;
}

Response Router::stats(const Caller& caller) {
  return json_response(200, stats_json(service_.counts(caller)));
}

bool Router::visible(const std::string& id, const Caller& caller) {
  if (!caller) return true;  // keys off: one owner; a missing job is the route's 404
  auto job = service_.status(id);
  return job && job->owner == *caller;
}

std::string Router::base_url(const http::Request& request) const {
  std::string base;
  if (options_.public_url && !options_.public_url->empty()) {
    base = *options_.public_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
  } else {
    const std::string* host = request.header("host");
    base = "http://";
    base += host && !host->empty() ? *host : std::string("127.0.0.1");
  }
  return base;
}

std::optional<Response> Router::submit(const http::Request& request, const Caller& caller,
                                       http::Reply& reply) {
  if (!is_json_content_type(request.header("content-type")))
    return error_response(415, "Content-Type must be application/json");
  const jobs::ServiceOptions& so = service_.options();
  const SubmitLimits limits{so.default_timeout_s, so.max_timeout_s,
                            options_.allow_private_webhooks};
  auto parsed = parse_submit(request.body, request.header("idempotency-key"), limits);
  if (auto* errors = std::get_if<ValidationErrors>(&parsed)) return validation_response(*errors);
  jobs::Job& job = std::get<jobs::Job>(parsed);
  if (caller) job.owner = *caller;  // idempotency keys are per owner, too

  auto done = [reply, base = base_url(request),
               queued_after = so.retry_after_queued_s](jobs::SubmitOutcome out) {
    Response r;
    try {
      r = submit_answer(out, base, queued_after);
    } catch (const std::exception& e) {
      spdlog::error("api: rendering a submit answer failed: {}", e.what());
      r = internal_error();
    }
    reply(std::move(r));
  };
  const Reply later = hand_on(reply);  // from here on `done` answers
  try {
    service_.submit(std::move(job), std::move(done));
  } catch (const std::exception& e) {
    spdlog::error("api: submit failed: {}", e.what());
    later(internal_error());
  }
  return std::nullopt;
}

Response Router::list(const http::Request& request, const Caller& caller) {
  store::ListQuery q;
  q.owner = caller;
  if (auto bad = parse_list_query(request.query, q)) return std::move(*bad);
  store::ListPage page = service_.list(q);
  const RetryAfter retry = retry_after(service_.options());
  std::string body = "{\"jobs\":[";
  for (std::size_t i = 0; i < page.jobs.size(); ++i) {
    if (i > 0) body += ',';
    body += status_text(page.jobs[i], retry);
  }
  body += "],\"total\":" + std::to_string(page.total) + ",\"page\":" + std::to_string(q.page) +
          ",\"page_size\":" + std::to_string(q.page_size) + "}";
  return json_response(200, std::move(body));
}

std::optional<Response> Router::answer_or_wait(const http::Request& request,
                                               const std::string& id, const Caller& caller,
                                               http::Reply& reply, Answer answer,
                                               std::string_view what) {
  long long wait_s = 0;
  if (!request.query.empty()) {
    QueryParams params = parse_query(request.query);
    if (const std::string* w = query_value(params, "wait")) {
      ValidationErrors errors;
      auto n = query_int(*w, "wait", 0, options_.max_wait_s, errors);
      if (!n) return validation_response(errors);
      wait_s = *n;
    }
  }
  std::optional<jobs::Job> current;
  if (wait_s > 0) {
    current = service_.status(id);
    if (!current || (caller && current->owner != *caller)) return not_found_job(id);
    if (!jobs::is_terminal(current->status)) {
      auto done = [this, id, caller, reply, answer, what]() {
        Response r;
        try {
          r = (this->*answer)(id, caller, nullptr);
        } catch (const store::StoreUnavailable& e) {
          spdlog::warn("api: {} after wait: {}", what, e.what());
          r = store_unavailable(e.detail());
        } catch (const std::exception& e) {
          spdlog::error("api: {} after wait failed: {}", what, e.what());
          r = internal_error();
        }
        reply(std::move(r));
      };
      const Reply later = hand_on(reply);  // from here on `done` answers
      try {
        service_.wait_terminal(id, std::chrono::seconds(wait_s), std::move(done));
      } catch (const std::exception& e) {
        spdlog::error("api: wait failed: {}", e.what());
        later(internal_error());
      }
      return std::nullopt;
    }
  }
  return (this->*answer)(id, caller, current ? &*current : nullptr);
}

Response Router::status_answer(const std::string& id, const Caller& caller,
                               const jobs::Job* known) {
  const RetryAfter retry = retry_after(service_.options());
  if (known) return json_response(200, status_text(*known, retry));
  const std::uint64_t generation = service_.removals();  // before the store is read
  if (auto body = status_cache_.find(id, caller, generation))
    return json_response(200, std::move(*body));
  auto job = service_.status(id);
  if (!job || (caller && job->owner != *caller)) return not_found_job(id);
  std::string body = status_text(*job, retry);
  if (jobs::is_terminal(job->status)) status_cache_.put(id, job->owner, body, generation);
  return json_response(200, std::move(body));
}

Response Router::result_answer(const std::string& id, const Caller& caller,
                               const jobs::Job* /*known: a status view, no result in it*/) {
  auto job = service_.get(id);
  if (!job || (caller && job->owner != *caller)) return not_found_job(id);
  switch (job->status) {
    case jobs::JobStatus::succeeded:
      return json_response(200, result_json(*job));
    case jobs::JobStatus::queued:
      return error_response(400, "Job is still queued. Current status: queued");
    case jobs::JobStatus::running:
      return error_response(400, "Job is still running. Current status: running");
    case jobs::JobStatus::failed:
    case jobs::JobStatus::cancelled: {
      Json body = error_json(job->status == jobs::JobStatus::failed
                                 ? "Job failed. No result available."
                                 : "Job was cancelled. No result available.");
      body["error"] = job->error ? Json(*job->error) : Json(nullptr);
      return json_response(400, body);
    }
  }
  return internal_error();
}

std::optional<Response> Router::get_status(const http::Request& request, const std::string& id,
                                           const Caller& caller, http::Reply& reply) {
  return answer_or_wait(request, id, caller, reply, &Router::status_answer, "status");
}

std::optional<Response> Router::get_result(const http::Request& request, const std::string& id,
                                           const Caller& caller, http::Reply& reply) {
  return answer_or_wait(request, id, caller, reply, &Router::result_answer, "result");
}

// cancel, delete and stream act on the job: whether the caller may see it is checked
// first (a job's owner never changes, so the check stays true).
Response Router::remove(const std::string& id, const Caller& caller) {
  if (!visible(id, caller)) return not_found_job(id);
  switch (service_.remove(id)) {
    case store::RemoveOutcome::removed: {
      Response r;
      r.status = 204;
      r.content_type.clear();
      return r;
    }
    case store::RemoveOutcome::not_terminal:
      return error_response(400, "Cannot delete running job. Cancel it first.");
    case store::RemoveOutcome::not_found:
      return not_found_job(id);
  }
  return internal_error();
}

Response Router::cancel(const std::string& id, const Caller& caller) {
  if (!visible(id, caller)) return not_found_job(id);
  jobs::CancelOutcome out = service_.cancel(id);
  switch (out.kind) {
    case jobs::CancelOutcome::Kind::cancelled:
      return json_response(200, status_text(out.job, retry_after(service_.options())));
    case jobs::CancelOutcome::Kind::not_cancellable:
      return error_response(
          400, "Cannot cancel job with status: " + std::string(jobs::to_string(out.job.status)));
    case jobs::CancelOutcome::Kind::not_found:
      return not_found_job(id);
  }
  return internal_error();
}

Response Router::stream(const http::Request& request, const std::string& id,
                        const Caller& caller) {
  if (!visible(id, caller)) return not_found_job(id);
  auto log = service_.events(id);
  if (!log) return not_found_job(id);
  Response r;
  r.content_type = "text/event-stream";
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"X-Accel-Buffering", "no"});
  r.stream = std::make_shared<JobEventStream>(std::move(log),
                                              parse_last_event_id(request.header("last-event-id")));
  return r;
}

}  // namespace runq::api
