#include "sql.hpp"

#include "runq/jobs/store.hpp"

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
  "AND k.key = gone.idempotency_key AND k.job_id = gone.id), " RUNQ_PG_DROP_EVENTS("gone")
// Deletes the job_events of the jobs in CTE `cte` (they have ended or are gone; an ended
// job's history is in its events_json).
#define RUNQ_PG_DROP_EVENTS(cte) \
  "dropped AS (DELETE FROM job_events e USING " cte " WHERE e.job_id = " cte ".id) "

// A running job's write names its attempt ($a) and this node's lease ($l): 0 rows if
// the job was taken away (see the fencing in lease.cpp). Opens a parenthesis.
#define RUNQ_PG_OURS(a, l) \
  "((status = 'running' AND attempts = " a " AND lease_node = " l ")"
// The running job's lease is gone: no node holds it any more, or its holder has not
// renewed it for $ms milliseconds (by the database's clock).
#define RUNQ_PG_LEASE_GONE(ms)                                                           \
  "NOT EXISTS (SELECT 1 FROM runq_nodes n WHERE n.lease_id = jobs.lease_node AND "      \
  "n.last_seen >= now() - " ms "::double precision * interval '1 millisecond')"
#define RUNQ_PG_STR2(x) #x
#define RUNQ_PG_STR(x) RUNQ_PG_STR2(x)

// Leases (lease.cpp): $1 lease id, $2 name; lease lengths are milliseconds. Every time is
// the database's (now()), so the nodes' clocks need not agree.
template <class Set>
void lease_statements(Set& set) {
  set(s_node_insert, "node_insert", "INSERT INTO runq_nodes (lease_id, name) VALUES ($1, $2)");
  // An expired lease is never renewed, even if no other node has noticed yet: its jobs
  // are as good as gone.
  set(s_node_renew, "node_renew",
      "UPDATE runq_nodes SET last_seen = now() WHERE lease_id = $1 AND "
      "last_seen >= now() - $2::double precision * interval '1 millisecond'");
  set(s_rescue_lock, "rescue_lock", "SELECT pg_try_advisory_xact_lock(8247619724209291266)");
  // Ends the expired leases first: the DELETE locks their rows, so a renewal in flight
  // either commits first (and the row is re-checked and kept) or finds nothing (and its
  // node learns it has lost the lease).
  set(s_rescue_expire, "rescue_expire",
      "DELETE FROM runq_nodes WHERE "
      "last_seen < now() - $1::double precision * interval '1 millisecond' "
      "RETURNING name, lease_id");
  // Each re-checks the lease in its own WHERE, and status = 'running' is re-checked on
  // a row changed meanwhile: a job that has just ended is never overwritten (River #1302).
  // A job whose cancel was asked for ends cancelled, as its node would have ended it.
  set(s_rescue_cancel, "rescue_cancel",
      "UPDATE jobs SET status = 'cancelled', completed_at = $1, lease_node = NULL, "
      RUNQ_PG_WEBHOOK_DUE("$1::bigint") " WHERE status = 'running' AND cancel_requested "
      "AND " RUNQ_PG_LEASE_GONE("$2") " RETURNING id");
  set(s_rescue_fail, "rescue_fail",
      "UPDATE jobs SET status = 'failed', completed_at = $1, lease_node = NULL, "
      "error = 'Job interrupted ' || attempts || ' times (the server stopped while it ran); "
      "giving up', " RUNQ_PG_WEBHOOK_DUE("$1::bigint") " WHERE status = 'running' AND "
      "attempts >= $2 AND " RUNQ_PG_LEASE_GONE("$3") " RETURNING id");
  set(s_rescue_requeue, "rescue_requeue",
      "UPDATE jobs SET status = 'queued', started_at = NULL, lease_node = NULL, node = NULL "
      "WHERE status = 'running' AND " RUNQ_PG_LEASE_GONE("$1") " RETURNING id");
  // News for the other nodes' listeners (delivered when the transaction commits).
  // $1: a JSON array of job ids, cut into payloads well under NOTIFY's 8000 bytes.
  set(s_notify_changed, "notify_changed",
      "SELECT pg_notify('runq_jobs', string_agg(value, ',')) FROM (SELECT value, "
      "(row_number() OVER ()) / 200 AS part FROM json_array_elements_text($1::json)) ids "
      "GROUP BY part");
  set(s_notify_queued, "notify_queued", "SELECT pg_notify('runq_queued', $1::text)");
}

// Several nodes (cluster_queries.cpp). $1 a JSON array of {"j","a","i","t","d"} (job id,
// attempt, event id, type, data), $2 this node's lease id, $3 a JSON array of job ids.
// Events are stored only for an attempt this node still runs (or has just handed back
// to the queue for a retry). Without a row lock (it would write every job row again and
// hold up its end): an end written at the same moment may leave rows behind, which
// nobody reads (an ended job's history is its events_json) and which go with the job.
template <class Set>
void cluster_statements(Set& set) {
  set(s_publish, "publish",
      "WITH e AS (SELECT * FROM json_to_recordset($1::json) AS e(j text, a integer, "
      "i bigint, t text, d text)), "
      "ours AS (SELECT id, attempts FROM jobs WHERE id IN (SELECT DISTINCT j FROM e) AND "
      "lease_node = $2 AND status IN ('running', 'queued')), "
      "stored AS (INSERT INTO job_events (job_id, id, type, data) SELECT e.j, e.i, e.t, "
      "e.d FROM e JOIN ours ON ours.id = e.j AND ours.attempts = e.a "
      "ON CONFLICT DO NOTHING) "
      "SELECT pg_notify('runq_jobs', string_agg(value, ',')) "
      "FROM (SELECT value, (row_number() OVER ()) / 200 AS part FROM "
      "json_array_elements_text($3::json)) ids GROUP BY part");
  // The job's status, then its events after $2 (none once it has ended).
  set(s_events_after, "events_after",
      "SELECT j.status, e.id, e.type, e.data FROM jobs j LEFT JOIN job_events e ON "
      "e.job_id = j.id AND e.id > $2 AND j.status IN ('queued', 'running') "
      "WHERE j.id = $1 ORDER BY e.id");
  set(s_request_cancel, "request_cancel",
      "WITH asked AS (UPDATE jobs SET cancel_requested = true WHERE id = $1 AND "
      "status = 'running' RETURNING id) "
      "SELECT pg_notify('runq_cancel', id) FROM asked");
  // After the listener (re)connects: cancels asked for while it was not listening.
  set(s_cancels_for, "cancels_for",
      "SELECT id FROM jobs WHERE status = 'running' AND cancel_requested AND "
      "lease_node = $1");
}

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
// and a page past the end is one row of NULLs with the total. The prompt's head comes as
// its bytes: a SQL_ASCII database cuts it by bytes, maybe inside a character, which the
// conversion to the client's UTF8 would refuse.
const std::array<std::string, 8>& list_sqls() {
  static const auto sqls = [] {
    std::array<std::string, 8> a;
    for (unsigned m = 0; m < 8; ++m) {
      a[m] = "SELECT p.*, t.total FROM (SELECT count(*) AS total FROM jobs" +
             where_clause(m) + ") t LEFT JOIN LATERAL (SELECT " RUNQ_PG_ROW_STATUS
             ", convert_to(left(prompt, " + std::to_string(jobs::kListPromptChars) +
             "), current_setting('server_encoding')) FROM jobs" +
             where_clause(m) +
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
        "$21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33) RETURNING seq");
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
    // other, and never take the same row). The locking CTE runs exactly once. $2 is this
    // node's lease id, $4 its name.
    set(s_claim, "claim",
        "WITH next AS (SELECT seq AS next_seq FROM jobs WHERE status = 'queued' "
        "AND not_before <= $1 ORDER BY priority DESC, seq LIMIT $3 FOR UPDATE SKIP LOCKED) "
        "UPDATE jobs SET status = 'running', started_at = $1, attempts = attempts + 1, "
        "lease_node = $2, node = $4, cancel_requested = false FROM next WHERE jobs.seq = next.next_seq "
        "RETURNING " RUNQ_PG_ROW_WHOLE);
    // A running job is ended only by the node that runs that attempt ($14 attempts, $15
    // lease id). A queued job only if it never started: one that did (re-queued after
    // its node's lease ran out, or waiting for a retry) may still be reported on late by
    // the node that ran it, and that report must not end it.
    set(s_finish, "finish",
        "WITH done AS (UPDATE jobs SET status = $2, result = $3, error = $4, "
        "progress_pct = $5, progress_step = $6, steps_completed = $7, steps_total = $8, "
        "completed_at = $9, events_json = $10, run_id = $11, agent_id = $12, metrics = $13, "
        RUNQ_PG_WEBHOOK_DUE("$9::bigint") " WHERE id = $1 AND " RUNQ_PG_OURS("$14", "$15")
        " OR (status = 'queued' AND attempts = 0)) RETURNING id), " RUNQ_PG_DROP_EVENTS("done")
        "SELECT count(*) FROM done");
    set(s_cancel, "cancel",
        "WITH done AS (UPDATE jobs SET status = 'cancelled', completed_at = $2, error = $3, "
        "events_json = $4, " RUNQ_PG_WEBHOOK_DUE("$2::bigint")
        " WHERE id = $1 AND status = 'queued' RETURNING id), " RUNQ_PG_DROP_EVENTS("done")
        "SELECT count(*) FROM done");
    set(s_remove, "remove",
        "WITH gone AS (DELETE FROM jobs WHERE id = $1 AND status IN " RUNQ_PG_TERMINAL
        " RETURNING id, idempotency_key, owner), " RUNQ_PG_FREE_KEYS
        "SELECT count(*) FROM gone");
    set(s_exists, "exists", "SELECT 1 FROM jobs WHERE id = $1");
    set(s_count_all, "count_all", "SELECT status, count(*) FROM jobs GROUP BY status");
    set(s_count_owner, "count_owner",
        "SELECT status, count(*) FROM jobs WHERE owner = $1 GROUP BY status");
    set(s_retry, "retry",
        "UPDATE jobs SET status = 'queued', not_before = $2, error = NULL, progress_pct = 0, "
        "progress_step = NULL, steps_completed = 0, steps_total = NULL "
        "WHERE id = $1 AND " RUNQ_PG_OURS("$3", "$4") ")");
    // Retention: the oldest finished jobs first, straight off jobs_completed. SKIP LOCKED:
    // two nodes pruning at once take different rows instead of waiting.
    set(s_delete_finished, "delete_finished",
        "WITH doomed AS (SELECT seq FROM jobs WHERE status IN " RUNQ_PG_TERMINAL
        " AND completed_at < $1 AND webhook_state <> 1 ORDER BY completed_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED), gone AS (DELETE FROM jobs USING doomed WHERE jobs.seq = "
        "doomed.seq RETURNING jobs.id, jobs.idempotency_key, jobs.owner), " RUNQ_PG_FREE_KEYS
        "SELECT count(*) FROM gone");
    // Claims the due deliveries (several nodes never take the same one): they are due
    // again only after kWebhookClaimUs, unless webhook_attempted says otherwise first,
    // so a node that dies while delivering leaves its deliveries to another.
    set(s_due_webhooks, "due_webhooks",
        "WITH due AS (SELECT seq AS due_seq, webhook_next_at AS was_due FROM jobs "
        "WHERE webhook_state = 1 AND webhook_next_at <= $1 ORDER BY webhook_next_at "
        "LIMIT $2 FOR UPDATE SKIP LOCKED) UPDATE jobs SET webhook_next_at = $1::bigint + "
        RUNQ_PG_STR(RUNQ_PG_WEBHOOK_CLAIM_US) " FROM due WHERE jobs.seq = due.due_seq "
        "RETURNING " RUNQ_PG_ROW_WHOLE ", webhook_attempts, was_due");
    set(s_webhook_attempted, "webhook_attempted",
        "UPDATE jobs SET webhook_state = $2, webhook_attempts = webhook_attempts + 1, "
        "webhook_next_at = $3 WHERE id = $1");
    set(s_next_webhook, "next_webhook",
        "SELECT min(webhook_next_at) FROM jobs WHERE webhook_state = 1");
    set(s_probe, "probe",
        "INSERT INTO store_probe (id, at) VALUES (1, $1) "
        "ON CONFLICT (id) DO UPDATE SET at = excluded.at");
    lease_statements(set);
    cluster_statements(set);
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
