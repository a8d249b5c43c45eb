#include "schema.hpp"

#include "connection.hpp"

#include <stdexcept>
#include <string>

namespace runq::store::sqlite {

namespace {

// Version 1. Timestamps are microseconds since the Unix epoch; JSON fields are JSON text.
// `seq` is the rowid; AUTOINCREMENT makes it strictly increasing, never reused even
// after the newest job is deleted.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT    NOT NULL UNIQUE,
  status          TEXT    NOT NULL
                  CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
  progress_pct    REAL    NOT NULL DEFAULT 0,
  progress_step   TEXT,
  steps_completed INTEGER NOT NULL DEFAULT 0,
  steps_total     INTEGER,
  created_at      INTEGER NOT NULL,
  started_at      INTEGER,
  completed_at    INTEGER,
  agent_id        TEXT,
  run_id          TEXT,
  session_id      TEXT,
  error           TEXT,
  attempts        INTEGER NOT NULL DEFAULT 0,
  agent_file      TEXT,
  recipe_name     TEXT,
  recipe_config   TEXT    NOT NULL DEFAULT '{}',
  config          TEXT    NOT NULL DEFAULT '{}',
  framework       TEXT,
  webhook_url     TEXT,
  timeout_s       INTEGER NOT NULL DEFAULT 0,
  priority        INTEGER NOT NULL DEFAULT 0,
  metadata        TEXT    NOT NULL DEFAULT '{}',
  max_retries     INTEGER NOT NULL DEFAULT 0,
  owner           TEXT    NOT NULL DEFAULT '',
  idempotency_key TEXT,
  request_hash    TEXT    NOT NULL DEFAULT '',
  prompt          TEXT    NOT NULL,
  agent_yaml      TEXT,
  result          TEXT,
  events_json     TEXT    NOT NULL DEFAULT '',
  metrics         TEXT,
  -- a failed job waiting to be retried is not claimed before this time
  not_before      INTEGER NOT NULL DEFAULT 0,
  -- webhook delivery: 0 none, 1 pending, 2 delivered, 3 given up; set to pending in
  -- the same write as the terminal state, so no ending can lose its webhook
  webhook_state    INTEGER NOT NULL DEFAULT 0,
  webhook_attempts INTEGER NOT NULL DEFAULT 0,
  webhook_next_at  INTEGER
);
-- claim_next: only queued rows, in claim order; the first entry is the next job.
-- (Partial: finished jobs never enter it, so it stays small and hot.)
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (priority DESC, seq) WHERE status = 'queued';
-- list (newest first: every index ends with the rowid, i.e. seq), count_by_status,
-- requeue_running.
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_session ON jobs (session_id, created_at)
  WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, status, created_at);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at);
CREATE INDEX IF NOT EXISTS jobs_webhooks ON jobs (webhook_next_at) WHERE webhook_state = 1;
-- Idempotency keys are per owner (API key): the same key under two API keys is two jobs.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  owner        TEXT NOT NULL DEFAULT '',
  key          TEXT NOT NULL,
  job_id       TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  PRIMARY KEY (owner, key)
) WITHOUT ROWID;
)sql";

// Version 2: retention deletes finished jobs oldest first. (Partial: only terminal rows,
// so queued/running jobs never cost it anything.)
constexpr const char* kSchemaV2 = R"sql(
CREATE INDEX IF NOT EXISTS jobs_completed ON jobs (completed_at)
  WHERE status IN ('succeeded', 'failed', 'cancelled');
)sql";

// Version 3: one row that probe_write() rewrites to learn whether a storage fault (disk
// full, read-only file system) has cleared. No job data.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE IF NOT EXISTS store_probe (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  at INTEGER NOT NULL
);
)sql";
}  // namespace

void migrate(Db& db) {
  sqlite::Stmt user_version(db.get(), "PRAGMA user_version");
  auto version = [&] {
    Use u(user_version.get());
    return u.step() ? u.i32(0) : 0;
  };
  if (version() == kSchemaVersion) return;
  Transaction txn(db, /*immediate=*/true);
  const int v = version();  // again, under the write lock: another process may have won
  if (v > kSchemaVersion) {
    throw std::runtime_error("schema version " + std::to_string(v) +
                             " is newer than this runq supports (" +
                             std::to_string(kSchemaVersion) + ")");
  }
  if (v < 1) {
    db.exec(kSchemaV1);
    db.exec("PRAGMA user_version = 1");
  }
  if (v < 2) {
    db.exec(kSchemaV2);
    db.exec("PRAGMA user_version = 2");
  }
  if (v < 3) {
    db.exec(kSchemaV3);
    db.exec("PRAGMA user_version = 3");
  }
  // Future: if (v < 3) { ALTER TABLE ...; PRAGMA user_version = 3; }
  txn.commit();
}

}  // namespace runq::store::sqlite
