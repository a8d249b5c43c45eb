#pragma once
// JSON documents the API answers with. Key order follows API.md (ordered_json).
#include "runq/jobs/job.hpp"
#include "runq/jobs/job_service.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace runq::api {

using Json = nlohmann::ordered_json;

// Seconds a poller should wait, by state (from ServiceOptions); and the retention that
// gives a finished job its expires_at (0: kept forever).
struct RetryAfter {
  int queued_s = 2;
  int running_s = 5;
  std::int64_t retention_s = 0;
};

// The status object ("Job record" of API.md plus the extensions priority, metadata,
// attempts, timeout, expires_at). retry_after is null once terminal; expires_at
// (completed_at + retention) is null until then, and when retention is 0. As JSON text.
// A list's items also carry prompt_preview (prompt_preview() below): what each job is.
std::string status_text(const jobs::Job& job, const RetryAfter& retry,
                        bool with_prompt_preview = false);

// The prompt's first kPromptPreviewChars characters, and "…" if there were more.
// (A list's jobs carry one more, jobs::kListPromptChars: enough to know a prompt goes on.)
inline constexpr std::size_t kPromptPreviewChars = jobs::kListPromptChars - 1;
std::string prompt_preview(std::string_view prompt);

// The 200 answer of GET /result for a succeeded job.
Json result_json(const jobs::Job& job);

// The 202 answer of a submit. `base_url` has no trailing slash ("http://host:port").
Json accepted_json(const jobs::Job& job, std::string_view base_url);

// {"running_jobs","queued_jobs","max_concurrent","default_timeout","shutdown"}: /health's
// executor_stats and /stats's executor (PraisonAI's executor.get_stats()).
Json executor_stats_json(const jobs::HealthStats& h);

// {"status":"healthy","store",...,"executor_stats":{...}}; while the store cannot be
// written: "status":"degraded" and also "store_error" (what and why) and
// "store_error_since" (when it began).
Json health_json(const jobs::HealthStats& h);

// {"total_jobs":N,"by_status":{...},"executor":{...}}: the counts are the caller's jobs,
// the executor this node's (as in /health).
Json stats_json(const jobs::StatusCounts& counts,
                const jobs::HealthStats& executor);

// {"detail": detail}
Json error_json(std::string_view detail);
std::string error_body(std::string_view detail);

// Serialises compactly; invalid UTF-8 (should never reach here) is replaced, not thrown.
std::string dump(const Json& j);

// RFC 3339 timestamp or null.
Json timestamp_or_null(const std::optional<std::int64_t>& us);

// Seconds between started and completed (0.0 if either is missing), as a float.
double duration_seconds(const jobs::Job& job);

}  // namespace runq::api
