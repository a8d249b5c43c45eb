#include "schema.hpp"

#include <stdexcept>
#include <string>

namespace runq::store::postgres {

namespace {

// pg_advisory_lock's key for migrations: "runq" and 1. (Advisory locks are per database.)
constexpr const char* kLockMigrations = "SELECT pg_advisory_lock(8247619724209291265)";
constexpr const char* kUnlockMigrations = "SELECT pg_advisory_unlock(8247619724209291265)";

// Version 1: the SQLite store's schema (version 3) with PostgreSQL's types. Timestamps are
// bigint microseconds since the Unix epoch; JSON fields are JSON text (runq writes and
// reads it whole, never queries into it). `seq` is an identity: strictly increasing,
// never reused.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE jobs (
  seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id               text    NOT NULL UNIQUE,
  status           text    NOT NULL
                   CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
  progress_pct     double precision NOT NULL DEFAULT 0,
  progress_step    text,
  steps_completed  integer NOT NULL DEFAULT 0,
  steps_total      integer,
  created_at       bigint  NOT NULL,
  started_at       bigint,
  completed_at     bigint,
  agent_id         text,
  run_id           text,
  session_id       text,
  error            text,
  attempts         integer NOT NULL DEFAULT 0,
  agent_file       text,
  recipe_name      text,
  recipe_config    text    NOT NULL DEFAULT '{}',
  config           text    NOT NULL DEFAULT '{}',
  framework        text,
  webhook_url      text,
  timeout_s        integer NOT NULL DEFAULT 0,
  priority         integer NOT NULL DEFAULT 0,
  metadata         text    NOT NULL DEFAULT '{}',
  max_retries      integer NOT NULL DEFAULT 0,
  owner            text    NOT NULL DEFAULT '',
  idempotency_key  text,
  request_hash     text    NOT NULL DEFAULT '',
  prompt           text    NOT NULL,
  agent_yaml       text,
  result           text,
  events_json      text    NOT NULL DEFAULT '',
  metrics          text,
  -- a failed job waiting to be retried is not claimed before this time
  not_before       bigint  NOT NULL DEFAULT 0,
  -- webhook delivery: 0 none, 1 pending, 2 delivered, 3 given up; set to pending in
  -- the same write as the terminal state, so no ending can lose its webhook
  webhook_state    integer NOT NULL DEFAULT 0,
  webhook_attempts integer NOT NULL DEFAULT 0,
  webhook_next_at  bigint,
  -- the node that claimed it last (leases and fencing build on it)
  lease_node       text
) WITH (
  -- The queue is hot: every job is inserted, updated two or three times and deleted, and
  -- dead tuples slow the claim down. Vacuum after 2 % of the rows changed, not 20 %.
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02
);
-- claim_next: only queued rows, in claim order; the first entry is the next job.
-- (Partial: finished jobs never enter it, so it stays small and hot.)
CREATE INDEX jobs_claim ON jobs (priority DESC, seq) WHERE status = 'queued';
-- list (newest first: created_at, then seq), count_by_status, requeue_running.
CREATE INDEX jobs_created ON jobs (created_at, seq);
CREATE INDEX jobs_status ON jobs (status, created_at, seq);
CREATE INDEX jobs_session ON jobs (session_id, created_at, seq) WHERE session_id IS NOT NULL;
CREATE INDEX jobs_owner ON jobs (owner, status, created_at, seq);
CREATE INDEX jobs_owner_created ON jobs (owner, created_at, seq);
CREATE INDEX jobs_webhooks ON jobs (webhook_next_at) WHERE webhook_state = 1;
-- retention deletes finished jobs oldest first
CREATE INDEX jobs_completed ON jobs (completed_at)
  WHERE status IN ('succeeded', 'failed', 'cancelled');
-- Idempotency keys are per owner (API key): the same key under two API keys is two jobs.
-- The primary key makes a key unique across every node.
CREATE TABLE idempotency_keys (
  owner        text NOT NULL DEFAULT '',
  key          text NOT NULL,
  job_id       text NOT NULL,
  request_hash text NOT NULL,
  PRIMARY KEY (owner, key)
);
-- One row that probe_write() rewrites to learn whether the database can be written
-- again. No job data.
CREATE TABLE store_probe (
  id integer PRIMARY KEY CHECK (id = 1),
  at bigint  NOT NULL
);
)sql";

// Version 2: several nodes. Each node's lease is a row of runq_nodes, renewed by the
// node (last_seen, by the database's clock); lease_id is new at every start of a node,
// `name` is what users see. jobs.lease_node is the lease id of the claim, jobs.node
// the name of the node that runs or last ran the job.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE jobs ADD COLUMN node text;
CREATE TABLE runq_nodes (
  lease_id   text        PRIMARY KEY,
  name       text        NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  last_seen  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);  -- renewed all the time: room for HOT updates
)sql";

// Version 3: what one node does reaches the others. job_events holds the events of jobs
// that have not ended (a stream on any node follows them, and resumes after a restart);
// a job's end moves its whole history into jobs.events_json and deletes them.
// cancel_requested: a node asked the node running the job to cancel it.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE jobs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
CREATE TABLE job_events (
  job_id text   NOT NULL,
  id     bigint NOT NULL,
  type   text   NOT NULL,
  data   text   NOT NULL,
  PRIMARY KEY (job_id, id)
) WITH (
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02
);
)sql";

int schema_version(Connection& c) {
  c.exec("CREATE TABLE IF NOT EXISTS runq_schema (version integer NOT NULL)");
  Result r = c.exec("SELECT max(version) FROM runq_schema");
  return r.is_null(0, 0) ? 0 : r.i32(0, 0);
}

void migrate_locked(Connection& c) {
  const int v = schema_version(c);
  if (v > kSchemaVersion) {
    throw std::runtime_error("schema version " + std::to_string(v) +
                             " is newer than this runq supports (" +
                             std::to_string(kSchemaVersion) + ")");
  }
  if (v == kSchemaVersion) return;
  Transaction txn(c);
  if (v < 1) c.exec(kSchemaV1);
  if (v < 2) c.exec(kSchemaV2);
  if (v < 3) c.exec(kSchemaV3);
  c.exec(("DELETE FROM runq_schema; INSERT INTO runq_schema (version) VALUES (" +
          std::to_string(kSchemaVersion) + ")")
             .c_str());
  txn.commit();
}

}  // namespace

void migrate(Connection& c) {
  c.exec(kLockMigrations);
  try {
    migrate_locked(c);
  } catch (...) {
    if (c.ok()) {
      c.rollback_if_open();
      c.exec(kUnlockMigrations);
    }
    throw;
  }
  c.exec(kUnlockMigrations);
}

}  // namespace runq::store::postgres
