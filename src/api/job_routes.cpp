// The job routes: submit, list, status, result (with ?wait=), cancel, delete, stream.
#include "runq/api/router.hpp"

#include "responses.hpp"

#include "runq/api/json_render.hpp"
#include "runq/api/query.hpp"
#include "runq/api/sse_stream.hpp"
#include "runq/api/validation.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <string_view>
#include <utility>

namespace runq::api {

namespace {

using http::Reply;
using http::Response;

constexpr std::string_view kInvalidStatus =
    ". Valid values: ['queued', 'running', 'succeeded', 'failed', 'cancelled']";

RetryAfter retry_after(const jobs::ServiceOptions& so) {
  return RetryAfter{so.retry_after_queued_s, so.retry_after_running_s, so.retention_s};
}

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
std::optional<Response> parse_list_query(std::string_view query, jobs::ListQuery& q) {
  if (query.empty()) return std::nullopt;
  QueryParams params = parse_query(query);
  ValidationErrors errors;
  if (const std::string* v = query_value(params, "page"))
    if (auto n = query_int(*v, "page", 1, 10'000'000, errors)) q.page = static_cast<int>(*n);
  if (const std::string* v = query_value(params, "page_size"))
    if (auto n = query_int(*v, "page_size", 1, 100, errors)) q.page_size = static_cast<int>(*n);
  if (!errors.empty()) return validation_response(errors);
  // Empty is no filter, as in PraisonAI (`if status:`), like session_id below.
  if (const std::string* v = query_value(params, "status"); v && !v->empty()) {
    auto st = jobs::parse_status(*v);
    if (!st) return error_response(400, "Invalid status: " + *v + std::string(kInvalidStatus));
    q.status = *st;
  }
  // Empty is no filter, as in PraisonAI (a form's empty field, `?session_id=`).
  if (const std::string* v = query_value(params, "session_id"); v && !v->empty())
    q.session_id = *v;
  return std::nullopt;
}

}  // namespace

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

std::optional<Response> Router::submit(Call& call) {
  const http::Request& request = call.request;
  if (!is_json_content_type(request.header("content-type")))
    return error_response(415, "Content-Type must be application/json");
  const jobs::ServiceOptions& so = service_.options();
  const SubmitLimits limits{so.default_timeout_s, so.max_timeout_s,
                            options_.allow_private_webhooks};
  auto parsed = parse_submit(request.body, request.header("idempotency-key"), limits);
  if (auto* errors = std::get_if<ValidationErrors>(&parsed)) return validation_response(*errors);
  jobs::Job& job = std::get<jobs::Job>(parsed);
  if (call.caller) job.owner = *call.caller;  // idempotency keys are per owner, too

  auto done = [reply = call.reply, base = base_url(request),
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
  const Reply later = hand_on(call.reply);  // from here on `done` answers
  try {
    service_.submit(std::move(job), std::move(done));
  } catch (const std::exception& e) {
    spdlog::error("api: submit failed: {}", e.what());
    later(internal_error());
  }
  return std::nullopt;
}

std::optional<Response> Router::list(Call& call) {
  jobs::ListQuery q;
  q.owner = call.caller;
  if (auto bad = parse_list_query(call.request.query, q)) return bad;
  jobs::ListPage page = service_.list(q);
  const RetryAfter retry = retry_after(service_.options());
  std::string body = "{\"jobs\":[";
  for (std::size_t i = 0; i < page.jobs.size(); ++i) {
    if (i > 0) body += ',';
    body += status_text(page.jobs[i], retry, /*with_prompt_preview=*/true);
  }
  body += "],\"total\":" + std::to_string(page.total) + ",\"page\":" + std::to_string(q.page) +
          ",\"page_size\":" + std::to_string(q.page_size) + "}";
  return json_response(200, std::move(body));
}

std::optional<Response> Router::answer_or_wait(Call& call, Answer answer,
                                               std::string_view what) {
  const http::Request& request = call.request;
  const std::string& id = call.id;
  const Caller& caller = call.caller;
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
      auto done = [this, id, caller, reply = call.reply, answer, what]() {
        Response r;
        try {
          r = (this->*answer)(id, caller, nullptr);
        } catch (const jobs::StoreUnavailable& e) {
          spdlog::warn("api: {} after wait: {}", what, e.what());
          r = store_unavailable(e.detail());
        } catch (const std::exception& e) {
          spdlog::error("api: {} after wait failed: {}", what, e.what());
          r = internal_error();
        }
        reply(std::move(r));
      };
      const Reply later = hand_on(call.reply);  // from here on `done` answers
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

std::optional<Response> Router::get_status(Call& call) {
  return answer_or_wait(call, &Router::status_answer, "status");
}

std::optional<Response> Router::get_result(Call& call) {
  return answer_or_wait(call, &Router::result_answer, "result");
}

// cancel, delete and stream act on the job: whether the caller may see it is checked
// first (a job's owner never changes, so the check stays true).
std::optional<Response> Router::remove(Call& call) {
  const std::string& id = call.id;
  const Caller& caller = call.caller;
  if (!visible(id, caller)) return not_found_job(id);
  switch (service_.remove(id)) {
    case jobs::RemoveOutcome::removed: {
      Response r;
      r.status = 204;
      r.content_type.clear();
      return r;
    }
    case jobs::RemoveOutcome::not_terminal:
      return error_response(400, "Cannot delete running job. Cancel it first.");
    case jobs::RemoveOutcome::not_found:
      return not_found_job(id);
  }
  return internal_error();
}

std::optional<Response> Router::cancel(Call& call) {
  const std::string& id = call.id;
  const Caller& caller = call.caller;
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

std::optional<Response> Router::stream(Call& call) {
  const std::string& id = call.id;
  const Caller& caller = call.caller;
  if (!visible(id, caller)) return not_found_job(id);
  auto log = service_.events(id);
  if (!log) return not_found_job(id);
  Response r;
  r.content_type = "text/event-stream";
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"X-Accel-Buffering", "no"});
  const std::string* last_event_id = call.request.header("last-event-id");
  r.stream = std::make_shared<JobEventStream>(std::move(log), parse_last_event_id(last_event_id));
  return r;
}

}  // namespace runq::api
