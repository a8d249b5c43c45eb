#include "runq/api/router.hpp"

#include "runq/api/json_render.hpp"
#include "runq/api/sse_stream.hpp"
#include "runq/api/validation.hpp"
#include "runq/util/ids.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <string_view>

namespace runq::api {

namespace {

using http::Header;
using http::Reply;
using http::Request;
using http::Response;

enum class Route { none, health, stats, runs, run, run_result, run_cancel, run_stream };

struct Match {
  Route route = Route::none;
  std::string_view id;  // raw path segment (not decoded)
};

// The routing table, by hand: no regex, no allocation.
Match match_path(std::string_view path) {
  if (path == "/health") return {Route::health, {}};
  if (path == "/stats") return {Route::stats, {}};
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

constexpr std::string_view kInvalidStatus =
    ". Valid values: ['queued', 'running', 'succeeded', 'failed', 'cancelled']";

}  // namespace

Router::Router(jobs::JobService& service, ApiOptions options)
    : service_(service), options_(std::move(options)) {}

void Router::handle(http::Request&& request, http::Reply reply) {
  // Everything synchronous answers through `reply` at the end; the asynchronous routes
  // (submit, ?wait=) hand `reply` on and mark it taken.
  std::optional<Response> response;
  bool taken = false;
  try {
    const Match m = match_path(request.path);
    if (m.route == Route::none) {
      response = error_response(404, "Not Found");
    } else if (!method_allowed(m.route, request.method)) {
      response = error_response(405, "Method Not Allowed");
      response->headers.push_back({"Allow", std::string(allowed_methods(m.route))});
    } else {
      // Job id from the path: percent-decoded only when it needs it (the hot path doesn't).
      std::string id;
      if (!m.id.empty()) {
        id = m.id.find('%') == std::string_view::npos ? std::string(m.id)
                                                      : percent_decode(m.id, false);
        if (!util::is_job_id(id)) response = not_found_job(id);
      }
      const RetryAfter retry{service_.options().retry_after_queued_s,
                             service_.options().retry_after_running_s};

      // ?wait=N on status and result; 422 if bad. Returns false if it answered.
      auto parse_wait = [&](long long& wait_s) -> bool {
        wait_s = 0;
        if (request.query.empty()) return true;
        QueryParams params = parse_query(request.query);
        if (const std::string* w = query_value(params, "wait")) {
          ValidationErrors errors;
          auto n = query_int(*w, "wait", 0, options_.max_wait_s, errors);
          if (!n) {
            response = validation_response(errors);
            return false;
          }
          wait_s = *n;
        }
        return true;
      };

      switch (response ? Route::none : m.route) {
        case Route::health:
          response = json_response(200, health_json(service_.health()));
          break;

        case Route::stats:
          response = json_response(200, stats_json(service_.counts()));
          break;

        case Route::runs:
          if (request.method == "POST") {
            if (!is_json_content_type(request.header("content-type"))) {
              response = error_response(415, "Content-Type must be application/json");
              break;
            }
            const jobs::ServiceOptions& so = service_.options();
            auto parsed = parse_submit(request.body, request.header("idempotency-key"),
                                       SubmitLimits{so.default_timeout_s, so.max_timeout_s});
            if (auto* errors = std::get_if<ValidationErrors>(&parsed)) {
              response = validation_response(*errors);
              break;
            }
            std::string base;
            if (options_.public_url && !options_.public_url->empty()) {
              base = *options_.public_url;
              while (!base.empty() && base.back() == '/') base.pop_back();
            } else {
              const std::string* host = request.header("host");
              base = "http://";
              base += host && !host->empty() ? *host : std::string("127.0.0.1");
            }
            const int queued_after = so.retry_after_queued_s;
            auto done = [reply, base = std::move(base), queued_after](jobs::SubmitOutcome out) {
              Response r;
              try {
                using Kind = jobs::SubmitOutcome::Kind;
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
                    r = error_response(409, "Idempotency key already used for job " +
                                                out.job.id + " with a different request");
                    break;
                  case Kind::shutting_down:
                    r = error_response(503, "Server is shutting down");
                    r.headers.push_back({"Retry-After", "5"});
                    break;
                  case Kind::store_error:
                    r = error_response(503, "Job store unavailable: " + out.error);
                    r.headers.push_back({"Retry-After", "5"});
                    break;
                }
              } catch (const std::exception& e) {
                spdlog::error("api: rendering a submit answer failed: {}", e.what());
                r = internal_error();
              }
              reply(std::move(r));
            };
            taken = true;  // from here on `done` answers
            try {
              service_.submit(std::move(std::get<jobs::Job>(parsed)), std::move(done));
            } catch (const std::exception& e) {
              spdlog::error("api: submit failed: {}", e.what());
              reply(internal_error());
            }
            break;
          } else {
            store::ListQuery q;
            if (!request.query.empty()) {
              QueryParams params = parse_query(request.query);
              ValidationErrors errors;
              if (const std::string* v = query_value(params, "page"))
                if (auto n = query_int(*v, "page", 1, 10'000'000, errors))
                  q.page = static_cast<int>(*n);
              if (const std::string* v = query_value(params, "page_size"))
                if (auto n = query_int(*v, "page_size", 1, 100, errors))
                  q.page_size = static_cast<int>(*n);
              if (!errors.empty()) {
                response = validation_response(errors);
                break;
              }
              if (const std::string* v = query_value(params, "status")) {
                auto st = jobs::parse_status(*v);
                if (!st) {
                  response = error_response(400, "Invalid status: " + *v + std::string(kInvalidStatus));
                  break;
                }
                q.status = *st;
              }
              if (const std::string* v = query_value(params, "session_id")) q.session_id = *v;
            }
            store::ListPage page = service_.list(q);
            Json jobs_arr = Json::array();
            for (const auto& job : page.jobs) jobs_arr.push_back(status_json(job, retry));
            Json body = Json::object();
            body["jobs"] = std::move(jobs_arr);
            body["total"] = page.total;
            body["page"] = q.page;
            body["page_size"] = q.page_size;
            response = json_response(200, body);
          }
          break;

        case Route::run:
          if (request.method == "GET") {
            long long wait_s = 0;
            if (!parse_wait(wait_s)) break;
            auto st = service_.status(id);
            if (!st) {
              response = not_found_job(id);
              break;
            }
            if (wait_s > 0 && !jobs::is_terminal(st->status)) {
              taken = true;
              auto done = [this, id, reply, retry]() {
                Response r;
                try {
                  auto now = service_.status(id);
                  r = now ? json_response(200, status_json(*now, retry)) : not_found_job(id);
                } catch (const std::exception& e) {
                  spdlog::error("api: status after wait failed: {}", e.what());
                  r = internal_error();
                }
                reply(std::move(r));
              };
              try {
                service_.wait_terminal(id, std::chrono::seconds(wait_s), std::move(done));
              } catch (const std::exception& e) {
                spdlog::error("api: wait failed: {}", e.what());
                reply(internal_error());
              }
              break;
            }
            response = json_response(200, status_json(*st, retry));
          } else {  // DELETE
            switch (service_.remove(id)) {
              case store::RemoveOutcome::removed: {
                Response r;
                r.status = 204;
                r.content_type.clear();
                response = std::move(r);
                break;
              }
              case store::RemoveOutcome::not_terminal:
                response = error_response(400, "Cannot delete running job. Cancel it first.");
                break;
              case store::RemoveOutcome::not_found:
                response = not_found_job(id);
                break;
            }
          }
          break;

        case Route::run_result: {
          long long wait_s = 0;
          if (!parse_wait(wait_s)) break;
          auto answer = [this](const std::string& job_id) -> Response {
            auto job = service_.get(job_id);
            if (!job) return not_found_job(job_id);
            switch (job->status) {
              case jobs::JobStatus::succeeded:
                return json_response(200, result_json(*job));
              case jobs::JobStatus::queued:
                return error_response(400, "Job is still queued. Current status: queued");
              case jobs::JobStatus::running:
                return error_response(400, "Job is still running. Current status: running");
              case jobs::JobStatus::failed: {
                Json body = error_json("Job failed. No result available.");
                body["error"] = job->error ? Json(*job->error) : Json(nullptr);
                return json_response(400, body);
              }
              case jobs::JobStatus::cancelled: {
                Json body = error_json("Job was cancelled. No result available.");
                body["error"] = job->error ? Json(*job->error) : Json(nullptr);
                return json_response(400, body);
              }
            }
            return internal_error();
          };
          if (wait_s > 0) {
            auto st = service_.status(id);
            if (!st) {
              response = not_found_job(id);
              break;
            }
            if (!jobs::is_terminal(st->status)) {
              taken = true;
              auto done = [id, reply, answer]() {
                Response r;
                try {
                  r = answer(id);
                } catch (const std::exception& e) {
                  spdlog::error("api: result after wait failed: {}", e.what());
                  r = internal_error();
                }
                reply(std::move(r));
              };
              try {
                service_.wait_terminal(id, std::chrono::seconds(wait_s), std::move(done));
              } catch (const std::exception& e) {
                spdlog::error("api: wait failed: {}", e.what());
                reply(internal_error());
              }
              break;
            }
          }
          response = answer(id);
          break;
        }

        case Route::run_cancel: {
          jobs::CancelOutcome out = service_.cancel(id);
          switch (out.kind) {
            case jobs::CancelOutcome::Kind::cancelled:
              response = json_response(200, status_json(out.job, retry));
              break;
            case jobs::CancelOutcome::Kind::not_cancellable:
              response = error_response(
                  400, "Cannot cancel job with status: " + std::string(jobs::to_string(out.job.status)));
              break;
            case jobs::CancelOutcome::Kind::not_found:
              response = not_found_job(id);
              break;
          }
          break;
        }

        case Route::run_stream: {
          auto log = service_.events(id);
          if (!log) {
            response = not_found_job(id);
            break;
          }
          Response r;
          r.content_type = "text/event-stream";
          r.headers.push_back({"Cache-Control", "no-cache"});
          r.headers.push_back({"X-Accel-Buffering", "no"});
          r.stream = std::make_shared<JobEventStream>(
              std::move(log), parse_last_event_id(request.header("last-event-id")));
          response = std::move(r);
          break;
        }

        case Route::none: break;
      }
    }
  } catch (const std::exception& e) {
    spdlog::error("api: {} {} failed: {}", request.method, request.path, e.what());
    if (!taken) response = internal_error();
  } catch (...) {
    spdlog::error("api: {} {} failed with an unknown exception", request.method, request.path);
    if (!taken) response = internal_error();
  }
  if (taken) return;
  reply(response ? std::move(*response) : internal_error());
}

}  // namespace runq::api
