#pragma once
// Private to the PostgreSQL store: its statements (prepared once per connection) and the
// layout of the rows they return. (The schema itself is in schema.cpp.)
#include <cstddef>
#include <cstdint>

namespace runq::store::postgres {

// Column lists. A row read back is "seq, " COLS_STATUS [", " COLS_HEAVY]: column i of a
// row is parameter $i of kInsertJob, and the column indexes below.
#define RUNQ_PG_COLS_STATUS                                                               \
  "id, status, progress_pct, progress_step, steps_completed, steps_total, created_at, "  \
  "started_at, completed_at, agent_id, run_id, session_id, error, attempts, agent_file, " \
  "recipe_name, recipe_config, config, framework, webhook_url, timeout_s, priority, "     \
  "metadata, max_retries, owner, idempotency_key, request_hash, node"
#define RUNQ_PG_COLS_HEAVY "prompt, agent_yaml, result, events_json, metrics"
#define RUNQ_PG_ROW_STATUS "seq, " RUNQ_PG_COLS_STATUS
#define RUNQ_PG_ROW_WHOLE "seq, " RUNQ_PG_COLS_STATUS ", " RUNQ_PG_COLS_HEAVY

enum Col : int {
  c_seq, c_id, c_status, c_progress_pct, c_progress_step, c_steps_completed, c_steps_total,
  c_created_at, c_started_at, c_completed_at, c_agent_id, c_run_id, c_session_id, c_error,
  c_attempts, c_agent_file, c_recipe_name, c_recipe_config, c_config, c_framework,
  c_webhook_url, c_timeout_s, c_priority, c_metadata, c_max_retries, c_owner,
  c_idempotency_key, c_request_hash, c_node,
  // heavy columns, only in whole rows
  c_prompt, c_agent_yaml, c_result, c_events_json, c_metrics,
  c_count
};
// A list row: the status row, the prompt's head (where a whole row has the prompt),
// then the total.
inline constexpr int kListTotalCol = c_prompt + 1;

// due_webhooks claims the deliveries it returns for this long (another node takes them
// after it, if webhook_attempted has not said what became of them).
#define RUNQ_PG_WEBHOOK_CLAIM_US 60000000
inline constexpr std::int64_t kWebhookClaimUs = RUNQ_PG_WEBHOOK_CLAIM_US;

// The prepared statements, by index into statements() (sql.cpp).
enum Sql : std::size_t {
  s_get_whole, s_get_status,
  s_insert_job, s_find_key, s_take_key, s_delete_stale_key,
  s_claim, s_finish, s_cancel, s_remove, s_exists,
  s_count_all, s_count_owner, s_retry, s_delete_finished,
  s_due_webhooks, s_webhook_attempted, s_next_webhook, s_probe,
  // leases (lease.cpp)
  s_node_insert, s_node_renew, s_rescue_lock, s_rescue_expire, s_rescue_cancel, s_rescue_fail,
  s_rescue_requeue, s_notify_changed, s_notify_queued,
  // several nodes (cluster_queries.cpp)
  s_publish, s_events_after, s_request_cancel, s_cancels_for,
  s_list_base,                     // + filter mask (8 variants)
  s_statement_count = s_list_base + 8,
};

// List filters, as bits of a mask; parameters $1 status, $2 session_id, $3 owner,
// $4 limit, $5 offset (all declared, so a variant need not use every one).
enum : unsigned { f_status = 1, f_session = 2, f_owner = 4 };

struct Statement {
  const char* name;       // the prepared statement's name on every connection
  const char* sql;
  int param_count = 0;    // > 0: parameter types are given (param_types), not inferred
  const unsigned* param_types = nullptr;  // OIDs
};

// Every statement, indexed by Sql.
const Statement& statement(Sql s);

}  // namespace runq::store::postgres
