#include "runq/api/json_render.hpp"
#include "runq/util/json_text.hpp"

#include "runq/util/time.hpp"

#include <algorithm>
#include <cmath>

namespace runq::api {

namespace {

Json opt_string(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

// An empty object with room for n members (ordered_json's object is a vector).
Json object_with_room(std::size_t n) {
  Json j = Json::object();
  j.get_ref<Json::object_t&>().reserve(n);
  return j;
}

}  // namespace

Json timestamp_or_null(const std::optional<std::int64_t>& us) {
  return us ? Json(util::rfc3339(*us)) : Json(nullptr);
}

double duration_seconds(const jobs::Job& job) {
  if (!job.started_at_us || !job.completed_at_us) return 0.0;
  return static_cast<double>(std::max<std::int64_t>(0, *job.completed_at_us - *job.started_at_us)) /
         1e6;
}

Json status_json(const jobs::Job& job, const RetryAfter& retry) {
  Json progress = object_with_room(4);
  double pct = job.status == jobs::JobStatus::succeeded ? 100.0 : job.progress.percentage;
  progress["percentage"] = std::isfinite(pct) ? std::clamp(pct, 0.0, 100.0) : 0.0;
  progress["current_step"] = opt_string(job.progress.current_step);
  progress["steps_completed"] = job.progress.steps_completed;
  progress["steps_total"] =
      job.progress.steps_total ? Json(*job.progress.steps_total) : Json(nullptr);

  Json j = object_with_room(16);
  j["job_id"] = job.id;
  j["status"] = jobs::to_string(job.status);
  j["progress"] = std::move(progress);
  j["created_at"] = util::rfc3339(job.created_at_us);
  j["started_at"] = timestamp_or_null(job.started_at_us);
  j["completed_at"] = timestamp_or_null(job.completed_at_us);
  j["agent_id"] = opt_string(job.agent_id);
  j["run_id"] = opt_string(job.run_id);
  j["session_id"] = opt_string(job.session_id);
  j["error"] = opt_string(job.error);
  switch (job.status) {
    case jobs::JobStatus::queued: j["retry_after"] = retry.queued_s; break;
    case jobs::JobStatus::running: j["retry_after"] = retry.running_s; break;
    default: j["retry_after"] = nullptr; break;
  }
  j["priority"] = job.priority;
  j["metadata"] = job.metadata.is_object() ? Json(job.metadata) : Json::object();
  j["attempts"] = job.attempts;
  j["timeout"] = job.timeout_s;
  j["expires_at"] = jobs::is_terminal(job.status) && job.completed_at_us && retry.retention_s > 0
                        ? Json(util::rfc3339(*job.completed_at_us + retry.retention_s * 1'000'000))
                        : Json(nullptr);
  return j;
}

Json result_json(const jobs::Job& job) {
  Json j = Json::object();
  j["job_id"] = job.id;
  j["status"] = jobs::to_string(job.status);
  j["result"] = job.result.value_or(std::string());
  j["duration_seconds"] = duration_seconds(job);
  j["created_at"] = util::rfc3339(job.created_at_us);
  j["started_at"] = timestamp_or_null(job.started_at_us);
  j["completed_at"] = timestamp_or_null(job.completed_at_us);
  j["error"] = nullptr;
  j["metrics"] = job.metrics;  // what the agent measured (token usage), null if nothing
  return j;
}

Json accepted_json(const jobs::Job& job, std::string_view base_url) {
  std::string poll_url(base_url);
  poll_url += "/api/v1/runs/";
  poll_url += job.id;
  Json j = Json::object();
  j["job_id"] = job.id;
  j["status"] = "queued";
  j["created_at"] = util::rfc3339(job.created_at_us);
  j["poll_url"] = poll_url;
  j["stream_url"] = poll_url + "/stream";
  return j;
}

Json health_json(const jobs::HealthStats& h) {
  Json stats = Json::object();
  stats["running_jobs"] = h.running_jobs;
  stats["queued_jobs"] = h.queued_jobs;
  stats["max_concurrent"] = h.max_concurrent;
  stats["default_timeout"] = h.default_timeout;
  stats["shutdown"] = h.shutdown;
  Json j = Json::object();
  j["status"] = h.store_fault ? "degraded" : "healthy";
  j["store"] = h.store_kind.empty() ? std::string("sqlite") : h.store_kind;
  j["executor_stats"] = std::move(stats);
  if (h.store_fault) {
    // Only while degraded, so a healthy answer keeps exactly its documented fields.
    j["store_error"] = "Job store is not writable (" +
                       std::string(store::describe(h.store_fault->reason)) +
                       "): " + h.store_fault->message;
    j["store_error_since"] = util::rfc3339(h.store_fault->since_us);
  }
  return j;
}

Json stats_json(const store::StatusCounts& counts) {
  Json by = Json::object();
  std::int64_t total = 0;
  for (int i = 0; i < static_cast<int>(counts.size()); ++i) {
    by[std::string(jobs::to_string(static_cast<jobs::JobStatus>(i)))] = counts[i];
    total += counts[i];
  }
  Json j = Json::object();
  j["total_jobs"] = total;
  j["by_status"] = std::move(by);
  return j;
}

Json error_json(std::string_view detail) {
  Json j = Json::object();
  j["detail"] = detail;
  return j;
}

std::string error_body(std::string_view detail) { return dump(error_json(detail)); }

std::string dump(const Json& j) { return util::json_text(j); }

}  // namespace runq::api
