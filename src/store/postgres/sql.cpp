#include "sql.hpp"

#include <array>
#include <string>

namespace runq::store::postgres {

namespace {

#define RUNQ_PG_TERMINAL "('succeeded', 'failed', 'cancelled')"
// A job that ends with a webhook_url has its webhook due at once.
#define RUNQ_PG_WEBHOOK_DUE(now)                                       \
  "webhook_state = CASE WHEN webhook_url IS NULL THEN 0 ELSE 1 END, " \
  "webhook_next_at = CASE WHEN webhook_url IS NULL THEN NULL ELSE " now " END"
// Frees the idempotency keys of the deleted jobs in CTE `gone`, but only those that
// still point at them.
#define RUNQ_PG_FREE_KEYS                                                             \
  "freed AS (DELETE FROM idempotency_keys k USING gone WHERE k.owner = gone.owner " \
  "AND k.key = gone.idempotency_key AND k.job_id = gone.id) "

constexpr unsigned kText = 25, kInt8 = 20;  // type OIDs (pg_type)
constexpr unsigned kListTypes[] = {kText, kText, kText, kInt8, kInt8};

std::string where_clause(unsigned mask) {
  std::string w;
  auto add = [&](const char* term) {
    w += w.empty() ? " WHERE " : " AND ";
    w += term;
  };
  if (mask & f_status) add("status = $1");
  if (mask & f_session) add("session_id = $2");
  if (mask & f_owner) add("owner = $3");
  return w;
}

// The page and its total in one statement, so from one snapshot. The total comes last,
// and a page past the end is one row of NULLs with the total.
const std::array<std::string, 8>& list_sqls() {
  static const auto sqls = [] {
    std::array<std::string, 8> a;
    for (unsigned m = 0; m < 8; ++m) {
      a[m] = "SELECT p.*, t.total FROM (SELECT count(*) AS total FROM jobs" +
             where_clause(m) + ") t LEFT JOIN LATERAL (SELECT " RUNQ_PG_ROW_STATUS
             " FROM jobs" + where_clause(m) +
             " ORDER BY created_at DESC, seq DESC LIMIT $4 OFFSET $5) p ON true "
             "ORDER BY p.created_at DESC, p.seq DESC";
    }
    return a;
  }();
  return sqls;
}

const std::array<Statement, s_statement_count>& table() {
  static const auto statements = [] {
    std::array<Statement, s_statement_count> t{};
    auto set = [&](Sql s, const char* name, const char* sql) { t[s] = Statement{name, sql}; };
    set(s_get_whole, "get_whole", "SELECT " RUNQ_PG_ROW_WHOLE " FROM jobs WHERE id = $1");
    set(s_get_status, "get_status", "SELECT " RUNQ_PG_ROW_STATUS " FROM jobs WHERE id = $1");
    set(s_insert_job, "insert_job",
        "INSERT INTO jobs (" RUNQ_PG_COLS_STATUS ", " RUNQ_PG_COLS_HEAVY ") VALUES ($1, $2, "
        "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
        "$21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32) RETURNING seq");
    set(s_find_key, "find_key",
        "SELECT job_id, request_hash FROM idempotency_keys WHERE owner = $1 AND key = $2");
    // Waits for another transaction inserting the same key; inserts nothing if that one
    // commits (the key is then found again, committed, and answered as a replay).
    set(s_take_key, "take_key",
        "INSERT INTO idempotency_keys (owner, key, job_id, request_hash) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING");
    set(s_delete_stale_key, "delete_stale_key",
        "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND job_id = $3");
    // River's and Oban's claim: the first entries of the partial index jobs_claim that no
    // other transaction holds (SKIP LOCKED: claimers on other nodes never wait for each
    // other, and never take the same row). The locking CTE runs exactly once.
    set(s_claim, "claim",
        "WITH next AS (SELECT seq AS next_seq FROM jobs WHERE status = 'queued' "
        "AND not_before <= $1 ORDER BY priority DESC, seq LIMIT $3 FOR UPDATE SKIP LOCKED) "
        "UPDATE jobs SET status = 'running', started_at = $1, attempts = attempts + 1, "
        "lease_node = $2 FROM next WHERE jobs.seq = next.next_seq RETURNING " RUNQ_PG_ROW_WHOLE);
    set(s_finish, "finish",
        "UPDATE jobs SET status = $2, result = $3, error = $4, progress_pct = $5, "
        "progress_step = $6, steps_completed = $7, steps_total = $8, completed_at = $9, "
        "events_json = $10, run_id = $11, agent_id = $12, metrics = $13, "
        RUNQ_PG_WEBHOOK_DUE("$9::bigint") " WHERE id = $1 AND status IN ('queued', 'running')");
    set(s_cancel, "cancel",
        "UPDATE jobs SET status = 'cancelled', completed_at = $2, error = $3, "
        "events_json = $4, " RUNQ_PG_WEBHOOK_DUE("$2::bigint")
        " WHERE id = $1 AND status = 'queued'");
    set(s_remove, "remove",
        "WITH gone AS (DELETE FROM jobs WHERE id = $1 AND status IN " RUNQ_PG_TERMINAL
        " RETURNING id, idempotency_key, owner), " RUNQ_PG_FREE_KEYS
        "SELECT count(*) FROM gone");
    set(s_exists, "exists", "SELECT 1 FROM jobs WHERE id = $1");
    set(s_count_all, "count_all", "SELECT status, count(*) FROM jobs GROUP BY status");
    set(s_count_owner, "count_owner",
        "SELECT status, count(*) FROM jobs WHERE owner = $1 GROUP BY status");
    set(s_requeue, "requeue",
        "UPDATE jobs SET status = 'queued', started_at = NULL WHERE status = 'running'");
    // Crash recovery: a job that has started max_attempts ($2) times and was interrupted
    // again fails instead of looping forever.
    set(s_requeue_fail, "requeue_fail",
        "UPDATE jobs SET status = 'failed', completed_at = $1, error = 'Job interrupted ' "
        "|| attempts || ' times (the server stopped while it ran); giving up', "
        RUNQ_PG_WEBHOOK_DUE("$1::bigint") " WHERE status = 'running' AND attempts >= $2");
    set(s_retry, "retry",
        "UPDATE jobs SET status = 'queued', not_before = $2, error = NULL, progress_pct = 0, "
        "progress_step = NULL, steps_completed = 0, steps_total = NULL "
        "WHERE id = $1 AND status = 'running' AND attempts = $3");
    // Retention: the oldest finished jobs first, straight off jobs_completed. SKIP LOCKED:
    // two nodes pruning at once take different rows instead of waiting.
    set(s_delete_finished, "delete_finished",
        "WITH doomed AS (SELECT seq FROM jobs WHERE status IN " RUNQ_PG_TERMINAL
        " AND completed_at < $1 AND webhook_state <> 1 ORDER BY completed_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED), gone AS (DELETE FROM jobs USING doomed WHERE jobs.seq = "
        "doomed.seq RETURNING jobs.id, jobs.idempotency_key, jobs.owner), " RUNQ_PG_FREE_KEYS
        "SELECT count(*) FROM gone");
    set(s_due_webhooks, "due_webhooks",
        "SELECT " RUNQ_PG_ROW_WHOLE ", webhook_attempts FROM jobs WHERE webhook_state = 1 "
        "AND webhook_next_at <= $1 ORDER BY webhook_next_at LIMIT $2");
    set(s_webhook_attempted, "webhook_attempted",
        "UPDATE jobs SET webhook_state = $2, webhook_attempts = webhook_attempts + 1, "
        "webhook_next_at = $3 WHERE id = $1");
    set(s_next_webhook, "next_webhook",
        "SELECT min(webhook_next_at) FROM jobs WHERE webhook_state = 1");
    set(s_probe, "probe",
        "INSERT INTO store_probe (id, at) VALUES (1, $1) "
        "ON CONFLICT (id) DO UPDATE SET at = excluded.at");
    static const char* const kListNames[8] = {"list0", "list1", "list2", "list3",
                                              "list4", "list5", "list6", "list7"};
    for (unsigned m = 0; m < 8; ++m) {
      t[s_list_base + m] = Statement{kListNames[m], list_sqls()[m].c_str(), 5, kListTypes};
    }
    return t;
  }();
  return statements;
}

}  // namespace

const Statement& statement(Sql s) { return table()[s]; }

}  // namespace runq::store::postgres
