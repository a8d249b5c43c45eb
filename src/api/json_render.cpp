#include "runq/api/json_render.hpp"
#include "runq/util/json_text.hpp"

#include "runq/util/time.hpp"
#include "runq/util/utf8.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>

namespace runq::api {

Json timestamp_or_null(const std::optional<std::int64_t>& us) {
  return us ? Json(util::rfc3339(*us)) : Json(nullptr);
}

double duration_seconds(const jobs::Job& job) {
  if (!job.started_at_us || !job.completed_at_us) return 0.0;
  return static_cast<double>(std::max<std::int64_t>(0, *job.completed_at_us - *job.started_at_us)) /
         1e6;
}

// The status object is the hottest answer (every poll), so it is written straight into
// the string instead of through a JSON tree. Output is byte for byte what dump() would
// write for the same document; json_render_test holds it to that.
namespace {

// A JSON string as dump() writes it: printable ASCII as is, anything else (escapes,
// UTF-8, invalid UTF-8 replaced) by nlohmann's serializer.
void append_string(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
  });
  if (!plain) {
    out += dump(Json(std::string(s)));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

void append_string_or_null(std::string& out, const std::optional<std::string>& s) {
  if (s)
    append_string(out, *s);
  else
    out += "null";
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_int_or_null(std::string& out, const std::optional<int>& v) {
  if (v)
    append_int(out, *v);
  else
    out += "null";
}

void append_time_or_null(std::string& out, const std::optional<std::int64_t>& us) {
  if (!us) {
    out += "null";
    return;
  }
  out += '"';
  util::append_rfc3339(out, *us);
  out += '"';
}

}  // namespace

std::string prompt_preview(std::string_view prompt) {
  std::size_t end = 0;
  for (std::size_t chars = 0; end < prompt.size() && chars < kPromptPreviewChars; ++chars)
    end += std::max<std::size_t>(1, util::utf8_sequence_length(prompt, end));
  if (end >= prompt.size()) return std::string(prompt);
  std::string out(prompt.substr(0, end));
  out += "\u2026";  // …
  return out;
}

std::string status_text(const jobs::Job& job, const RetryAfter& retry,
                        bool with_prompt_preview) {
  std::string out;
  out.reserve(512);
  out += "{\"job_id\":";
  append_string(out, job.id);
  out += ",\"status\":\"";
  out += jobs::to_string(job.status);
  out += "\",\"progress\":{\"percentage\":";
  double pct = job.status == jobs::JobStatus::succeeded ? 100.0 : job.progress.percentage;
  pct = std::isfinite(pct) ? std::clamp(pct, 0.0, 100.0) : 0.0;
  if (pct == 100.0)
    out += "100.0";
  else if (pct == 0.0)
    out += "0.0";
  else
    out += dump(Json(pct));
  out += ",\"current_step\":";
  append_string_or_null(out, job.progress.current_step);
  out += ",\"steps_completed\":";
  append_int(out, job.progress.steps_completed);
  out += ",\"steps_total\":";
  append_int_or_null(out, job.progress.steps_total);
  out += "},\"created_at\":";
  append_time_or_null(out, job.created_at_us);
  out += ",\"started_at\":";
  append_time_or_null(out, job.started_at_us);
  out += ",\"completed_at\":";
  append_time_or_null(out, job.completed_at_us);
  out += ",\"agent_id\":";
  append_string_or_null(out, job.agent_id);
  out += ",\"run_id\":";
  append_string_or_null(out, job.run_id);
  out += ",\"session_id\":";
  append_string_or_null(out, job.session_id);
  out += ",\"error\":";
  append_string_or_null(out, job.error);
  out += ",\"retry_after\":";
  switch (job.status) {
    case jobs::JobStatus::queued: append_int(out, retry.queued_s); break;
    case jobs::JobStatus::running: append_int(out, retry.running_s); break;
    default: out += "null"; break;
  }
  out += ",\"priority\":";
  append_int(out, job.priority);
  out += ",\"metadata\":";
  if (job.metadata.is_object() && !job.metadata.empty())
    out += dump(Json(job.metadata));
  else
    out += "{}";
  out += ",\"attempts\":";
  append_int(out, job.attempts);
  out += ",\"timeout\":";
  append_int(out, job.timeout_s);
  out += ",\"expires_at\":";
  if (jobs::is_terminal(job.status) && job.completed_at_us && retry.retention_s > 0)
    append_time_or_null(out, *job.completed_at_us + retry.retention_s * 1'000'000);
  else
    out += "null";
  if (job.node) {  // several nodes: the one that runs or last ran it
    out += ",\"node\":";
    append_string_or_null(out, job.node);
  }
  if (with_prompt_preview) {
    out += ",\"prompt_preview\":";
    append_string(out, prompt_preview(job.prompt));
  }
  out += '}';
  return out;
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

Json executor_stats_json(const jobs::HealthStats& h) {
  Json stats = Json::object();
  stats["running_jobs"] = h.running_jobs;
  stats["queued_jobs"] = h.queued_jobs;
  stats["max_concurrent"] = h.max_concurrent;
  stats["default_timeout"] = h.default_timeout;
  stats["shutdown"] = h.shutdown;
  return stats;
}

Json health_json(const jobs::HealthStats& h) {
  Json j = Json::object();
  // A database server that cannot be reached serves nothing: unhealthy. A local file
  // that cannot be written still serves reads: degraded.
  j["status"] = !h.store_fault                                           ? "healthy"
                : h.store_fault->reason == jobs::FaultReason::unreachable ? "unhealthy"
                                                                          : "degraded";
  j["store"] = h.store_kind.empty() ? std::string("sqlite") : h.store_kind;
  if (!h.node_name.empty()) j["node"] = h.node_name;
  j["executor_stats"] = executor_stats_json(h);
  if (h.store_fault) {
    // Only while degraded, so a healthy answer keeps exactly its documented fields.
    j["store_error"] = "Job store is not writable (" +
                       std::string(jobs::describe(h.store_fault->reason)) +
                       "): " + h.store_fault->message;
    j["store_error_since"] = util::rfc3339(h.store_fault->since_us);
  }
  return j;
}

Json stats_json(const jobs::StatusCounts& counts,
                const jobs::HealthStats& executor) {
  Json by = Json::object();
  std::int64_t total = 0;
  for (int i = 0; i < static_cast<int>(counts.size()); ++i) {
    by[std::string(jobs::to_string(static_cast<jobs::JobStatus>(i)))] = counts[i];
    total += counts[i];
  }
  Json j = Json::object();
  j["total_jobs"] = total;
  j["by_status"] = std::move(by);
  j["executor"] = executor_stats_json(executor);  // PraisonAI's /stats member
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
