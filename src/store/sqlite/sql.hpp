#pragma once
// Private to the SQLite store: its statements and the layout of the rows they return.
// (The schema itself is in schema.cpp.)
#include <cstddef>
#include <string>

namespace runq::store::sqlite {

// Column lists. A row read back is "seq, " COLS_STATUS [", " COLS_HEAVY]: column i of a
// row is parameter ?i of kInsertJob, and the column indexes below.
#define RUNQ_COLS_STATUS                                                                  \
  "id, status, progress_pct, progress_step, steps_completed, steps_total, created_at, "  \
  "started_at, completed_at, agent_id, run_id, session_id, error, attempts, agent_file, " \
  "recipe_name, recipe_config, config, framework, webhook_url, timeout_s, priority, "     \
  "metadata, max_retries, owner, idempotency_key, request_hash"
#define RUNQ_COLS_HEAVY "prompt, agent_yaml, result, events_json, metrics"
#define RUNQ_ROW_STATUS "seq, " RUNQ_COLS_STATUS
#define RUNQ_ROW_WHOLE "seq, " RUNQ_COLS_STATUS ", " RUNQ_COLS_HEAVY

enum Col : int {
  c_seq, c_id, c_status, c_progress_pct, c_progress_step, c_steps_completed, c_steps_total,
  c_created_at, c_started_at, c_completed_at, c_agent_id, c_run_id, c_session_id, c_error,
  c_attempts, c_agent_file, c_recipe_name, c_recipe_config, c_config, c_framework,
  c_webhook_url, c_timeout_s, c_priority, c_metadata, c_max_retries, c_owner,
  c_idempotency_key, c_request_hash,
  // heavy columns, only in whole rows
  c_prompt, c_agent_yaml, c_result, c_events_json, c_metrics,
  c_count
};

// Keys of the per-connection statement cache (Db::cached). List statements follow.
enum Sql : std::size_t {
  s_begin, s_begin_immediate, s_commit, s_savepoint, s_release, s_rollback_to,
  s_sync_full, s_sync_normal,
  s_get_whole, s_get_status,
  s_insert_job, s_find_key, s_insert_key, s_delete_key, s_delete_key_of_job,
  s_claim, s_claim_many, s_finish, s_cancel, s_remove_lookup, s_delete_job,
  s_count_all, s_count_owner, s_requeue, s_requeue_fail, s_retry, s_delete_finished,
  s_due_webhooks, s_webhook_attempted, s_next_webhook, s_probe,
  s_list_base,                      // + filter mask (8 variants)
  s_count_base = s_list_base + 8,   // + filter mask (8 variants)
};

inline constexpr const char* kGetWhole = "SELECT " RUNQ_ROW_WHOLE " FROM jobs WHERE id = ?1";
inline constexpr const char* kGetStatus = "SELECT " RUNQ_ROW_STATUS " FROM jobs WHERE id = ?1";
inline constexpr const char* kInsertJob =
    "INSERT INTO jobs (" RUNQ_COLS_STATUS ", " RUNQ_COLS_HEAVY ") VALUES (?1, ?2, ?3, ?4, "
    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
    "?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)";
// The subquery reads the first entry of jobs_claim: O(log n) whatever the number of
// jobs. INDEXED BY is needed: left alone, the planner prefers jobs_status (status = ?)
// and then sorts every queued job (75 ms instead of 20 us with 10^5 queued of 10^6).
// One statement is one write transaction, so two claimers (threads or processes) can
// never take the same row.
inline constexpr const char* kClaim =
    "UPDATE jobs SET status = 'running', started_at = ?1, attempts = attempts + 1 "
    "WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_claim WHERE status = 'queued' "
    "AND not_before <= ?1 ORDER BY priority DESC, seq LIMIT 1) RETURNING " RUNQ_ROW_WHOLE;
// claim_next for up to ?2 jobs in one statement (for every idle worker). RETURNING has
// no order: the caller sorts the rows into claim order.
inline constexpr const char* kClaimMany =
    "UPDATE jobs SET status = 'running', started_at = ?1, attempts = attempts + 1 "
    "WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_claim WHERE status = 'queued' "
    "AND not_before <= ?1 ORDER BY priority DESC, seq LIMIT ?2) RETURNING " RUNQ_ROW_WHOLE;
// A job that ends with a webhook_url has its webhook due at once.
#define WEBHOOK_DUE(now)                                                    \
  "webhook_state = CASE WHEN webhook_url IS NULL THEN 0 ELSE 1 END, "      \
  "webhook_next_at = CASE WHEN webhook_url IS NULL THEN NULL ELSE " now " END"
inline constexpr const char* kFinish =
    "UPDATE jobs SET status = ?2, result = ?3, error = ?4, progress_pct = ?5, "
    "progress_step = ?6, steps_completed = ?7, steps_total = ?8, completed_at = ?9, "
    "events_json = ?10, run_id = ?11, agent_id = ?12, metrics = ?13, " WEBHOOK_DUE("?9")
    " WHERE id = ?1 AND status IN ('queued', 'running')";
inline constexpr const char* kCancel =
    "UPDATE jobs SET status = 'cancelled', completed_at = ?2, error = ?3, events_json = ?4, "
    WEBHOOK_DUE("?2") " WHERE id = ?1 AND status = 'queued'";
// Crash recovery: a job that has started max_attempts (?2) times and was interrupted
// again fails instead of looping forever.
inline constexpr const char* kRequeueFail =
    "UPDATE jobs SET status = 'failed', completed_at = ?1, error = 'Job interrupted ' || "
    "attempts || ' times (the server stopped while it ran); giving up', " WEBHOOK_DUE("?1")
    " WHERE status = 'running' AND attempts >= ?2";
// Retention: the oldest finished jobs first, straight off jobs_completed.
inline constexpr const char* kDeleteFinished =
    "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_completed "
    "WHERE status IN ('succeeded', 'failed', 'cancelled') AND completed_at < ?1 "
    "AND webhook_state <> 1 ORDER BY completed_at LIMIT ?2) "
    "RETURNING id, idempotency_key, owner";
inline constexpr const char* kRetry =
    "UPDATE jobs SET status = 'queued', not_before = ?2, error = NULL, progress_pct = 0, "
    "progress_step = NULL, steps_completed = 0, steps_total = NULL "
    "WHERE id = ?1 AND status = 'running' AND attempts = ?3";

// List filters, as bits of a mask; parameters ?1 status, ?2 session_id, ?3 owner,
// ?4 limit, ?5 offset.
enum : unsigned { f_status = 1, f_session = 2, f_owner = 4 };

// SQL of the list (count = false) or total (count = true) query for a filter mask.
const std::string& list_sql(unsigned mask, bool count);

}  // namespace runq::store::sqlite
