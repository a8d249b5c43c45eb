// The durable job store on SQLite.
//
// Connections: one write connection does every write (SQLite allows one writer at a
// time anyway); writes that arrive together share one transaction and one fsync (group
// commit, group_commit.hpp). For a database file, reads go to a small pool of reader
// connections, each with its own mutex: WAL lets them read the last committed state
// while a write batch is in progress, so a status GET never waits behind a group
// commit. ":memory:" is private to its connection, so there the single connection does
// everything.
//
// Every connection keeps its prepared statements (Db::cached), so the hot paths
// (get_status, claim_next, finish) only bind and step.
#include "runq/store/sqlite_store.hpp"
#include "runq/util/json_text.hpp"

#include "runq/util/time.hpp"
#include "group_commit.hpp"
#include "sqlite_db.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>

namespace runq::store {
namespace {

using sqlite::Db;
using sqlite::Use;

constexpr int kSchemaVersion = 3;                // PRAGMA user_version of this code's schema
constexpr int kBusyTimeoutMs = 5000;             // wait for another process's write lock
constexpr std::size_t kReaderConnections = 4;    // reader pool size (file databases)
constexpr int kQuickCheckMessages = 5;           // quick_check findings named in the error

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
  s_claim, s_finish, s_cancel, s_remove_lookup, s_delete_job,
  s_count_all, s_count_owner, s_requeue, s_requeue_fail, s_retry, s_delete_finished,
  s_due_webhooks, s_webhook_attempted, s_next_webhook, s_probe,
  s_unclaim,
  s_list_base,                      // + filter mask (8 variants)
  s_count_base = s_list_base + 8,   // + filter mask (8 variants)
};

constexpr const char* kGetWhole = "SELECT " RUNQ_ROW_WHOLE " FROM jobs WHERE id = ?1";
constexpr const char* kGetStatus = "SELECT " RUNQ_ROW_STATUS " FROM jobs WHERE id = ?1";
constexpr const char* kInsertJob =
    "INSERT INTO jobs (" RUNQ_COLS_STATUS ", " RUNQ_COLS_HEAVY ") VALUES (?1, ?2, ?3, ?4, "
    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
    "?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)";
// The subquery reads the first entry of jobs_claim: O(log n) whatever the number of
// jobs. INDEXED BY is needed: left alone, the planner prefers jobs_status (status = ?)
// and then sorts every queued job (75 ms instead of 20 us with 10^5 queued of 10^6).
// One statement is one write transaction, so two claimers (threads or processes) can
// never take the same row.
constexpr const char* kClaim =
    "UPDATE jobs SET status = 'running', started_at = ?1, attempts = attempts + 1 "
    "WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_claim WHERE status = 'queued' "
    "AND not_before <= ?1 ORDER BY priority DESC, seq LIMIT 1) RETURNING " RUNQ_ROW_WHOLE;
// A job that ends with a webhook_url has its webhook due at once.
#define WEBHOOK_DUE(now)                                                    \
  "webhook_state = CASE WHEN webhook_url IS NULL THEN 0 ELSE 1 END, "      \
  "webhook_next_at = CASE WHEN webhook_url IS NULL THEN NULL ELSE " now " END"
constexpr const char* kFinish =
    "UPDATE jobs SET status = ?2, result = ?3, error = ?4, progress_pct = ?5, "
    "progress_step = ?6, steps_completed = ?7, steps_total = ?8, completed_at = ?9, "
    "events_json = ?10, run_id = ?11, agent_id = ?12, metrics = ?13, " WEBHOOK_DUE("?9")
    " WHERE id = ?1 AND status IN ('queued', 'running')";
constexpr const char* kCancel =
    "UPDATE jobs SET status = 'cancelled', completed_at = ?2, error = ?3, events_json = ?4, "
    WEBHOOK_DUE("?2") " WHERE id = ?1 AND status = 'queued'";
// Crash recovery: a job that has started max_attempts (?2) times and was interrupted
// again fails instead of looping forever.
constexpr const char* kRequeueFail =
    "UPDATE jobs SET status = 'failed', completed_at = ?1, error = 'Job interrupted ' || "
    "attempts || ' times (the server stopped while it ran); giving up', " WEBHOOK_DUE("?1")
    " WHERE status = 'running' AND attempts >= ?2";
// Retention: the oldest finished jobs first, straight off jobs_completed.
constexpr const char* kDeleteFinished =
    "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_completed "
    "WHERE status IN ('succeeded', 'failed', 'cancelled') AND completed_at < ?1 "
    "AND webhook_state <> 1 ORDER BY completed_at LIMIT ?2) "
    "RETURNING id, idempotency_key, owner";
constexpr const char* kRetry =
    "UPDATE jobs SET status = 'queued', not_before = ?2, error = NULL, progress_pct = 0, "
    "progress_step = NULL, steps_completed = 0, steps_total = NULL "
    "WHERE id = ?1 AND status = 'running'";

// List filters, as bits of a mask; parameters ?1 status, ?2 session_id, ?3 owner,
// ?4 limit, ?5 offset.
enum : unsigned { f_status = 1, f_session = 2, f_owner = 4 };

std::string where_clause(unsigned mask) {
  std::string w;
  auto add = [&](const char* term) {
    w += w.empty() ? " WHERE " : " AND ";
    w += term;
  };
  if (mask & f_status) add("status = ?1");
  if (mask & f_session) add("session_id = ?2");
  if (mask & f_owner) add("owner = ?3");
  return w;
}

// SQL of the list (count = false) or total (count = true) query for a filter mask.
const std::string& list_sql(unsigned mask, bool count) {
  static const auto sqls = [] {
    std::array<std::string, 16> a;
    for (unsigned m = 0; m < 8; ++m) {
      a[m] = "SELECT " RUNQ_ROW_STATUS " FROM jobs" + where_clause(m) +
             " ORDER BY created_at DESC, seq DESC LIMIT ?4 OFFSET ?5";
      a[8 + m] = "SELECT COUNT(*) FROM jobs" + where_clause(m);
    }
    return a;
  }();
  return sqls[(count ? 8 : 0) + mask];
}

nlohmann::json parse_json(std::string_view text) {
  if (text == "{}") return nlohmann::json::object();  // the usual case, without the parser
  return nlohmann::json::parse(text.begin(), text.end());
}

// Reads a row laid out as RUNQ_ROW_STATUS (whole = false) or RUNQ_ROW_WHOLE.
Job read_job(const Use& u, bool whole) {
  Job j;
  j.seq = u.i64(c_seq);
  j.id = u.text(c_id);
  auto status = jobs::parse_status(u.text_view(c_status));
  if (!status) throw std::runtime_error("sqlite: job " + j.id + " has an unknown status");
  j.status = *status;
  j.progress.percentage = u.real(c_progress_pct);
  j.progress.current_step = u.opt_text(c_progress_step);
  j.progress.steps_completed = u.i32(c_steps_completed);
  j.progress.steps_total = u.opt_i32(c_steps_total);
  j.created_at_us = u.i64(c_created_at);
  j.started_at_us = u.opt_i64(c_started_at);
  j.completed_at_us = u.opt_i64(c_completed_at);
  j.agent_id = u.opt_text(c_agent_id);
  j.run_id = u.opt_text(c_run_id);
  j.session_id = u.opt_text(c_session_id);
  j.error = u.opt_text(c_error);
  j.attempts = u.i32(c_attempts);
  j.agent_file = u.opt_text(c_agent_file);
  j.recipe_name = u.opt_text(c_recipe_name);
  j.recipe_config = parse_json(u.text_view(c_recipe_config));
  j.config = parse_json(u.text_view(c_config));
  j.framework = u.opt_text(c_framework);
  j.webhook_url = u.opt_text(c_webhook_url);
  j.timeout_s = u.i32(c_timeout_s);
  j.priority = u.i32(c_priority);
  j.metadata = parse_json(u.text_view(c_metadata));
  j.max_retries = u.i32(c_max_retries);
  j.owner = u.text(c_owner);
  j.idempotency_key = u.opt_text(c_idempotency_key);
  j.request_hash = u.text(c_request_hash);
  if (whole) {
    j.prompt = u.text(c_prompt);
    j.agent_yaml = u.opt_text(c_agent_yaml);
    j.result = u.opt_text(c_result);
    j.events_json = u.text(c_events_json);
    if (auto m = u.opt_text(c_metrics)) j.metrics = nlohmann::json::parse(*m);
  }
  return j;
}

// A transaction on one connection: rolled back unless commit() succeeded (also when
// COMMIT itself fails, e.g. disk full), so a failed batch leaves nothing behind.
class Transaction {
 public:
  Transaction(Db& db, bool immediate) : db_(db) {
    Use(immediate ? db.cached(s_begin_immediate, "BEGIN IMMEDIATE")
                  : db.cached(s_begin, "BEGIN"))
        .run();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    Use(db_.cached(s_commit, "COMMIT")).run();
  }
  ~Transaction() {
    if (db_.in_transaction()) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  Db& db_;
};

// Whether a write must be on disk when the call returns (fsync), or may become durable
// with the next write that is.
enum class Sync { now, later };

// One write waiting for its group commit, and how it went.
struct WriteOp : GroupCommitted {
  WriteOp(std::function<void(Db&)> f, Sync s) : fn(std::move(f)), sync(s) {}
  std::function<void(Db&)> fn;
  Sync sync = Sync::now;
  std::exception_ptr error;  // set if it failed: nothing of it is stored
};

// One connection and the mutex that gives one thread at a time the use of it.
struct Conn {
  Conn(const std::string& path, int flags) : db(path, flags) {
    sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  }
  std::mutex mu;
  Db db;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(const std::string& path, StartupCheck check) {
    const bool memory = path.empty() || path == ":memory:";
    // Looked at before opening: our own open may create the -wal file.
    const bool unclean = !memory && left_a_wal(path);
    try {
      writer_ = std::make_unique<Conn>(
          path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
      Db& db = writer_->db;
      // The first statement reads the file: a file that is not a database fails here.
      if (!memory) {
        std::string mode;
        {
          sqlite::Stmt st(db.get(), "PRAGMA journal_mode = WAL");
          Use u(st.get());
          if (u.step()) mode = u.text(0);
        }
        if (mode != "wal") {
          spdlog::warn("sqlite store {}: journal_mode is '{}', not 'wal'", path, mode);
        }
        if (check == StartupCheck::full || (check == StartupCheck::after_crash && unclean)) {
          const auto t0 = std::chrono::steady_clock::now();
          quick_check(db, path);
          spdlog::info("sqlite store {}: quick_check ok in {:.2f} s", path,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                           .count());
        } else if (check == StartupCheck::after_crash && std::filesystem::file_size(path) > 0) {
          spdlog::info("sqlite store {}: closed cleanly last time; quick_check skipped "
                       "(--check-db after-crash)",
                       path);
        }
      }
      if (sqlite3_db_readonly(db.get(), "main") == 1) throw read_only_at_start(path);
      db.exec("PRAGMA synchronous = FULL");
      // Checkpoint every ~40 MB of WAL instead of SQLite's 4 MB: a checkpoint writes each
      // page once however often it changed, and the hot pages (queue and status indexes)
      // change with every job. Measured: about 7 % more jobs per second end to end.
      db.exec("PRAGMA wal_autocheckpoint = 10000");
      migrate(db);
      if (!memory) {
        for (std::size_t i = 0; i < kReaderConnections; ++i) {
          auto c = std::make_unique<Conn>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
          c->db.exec("PRAGMA query_only = 1");
          readers_.push_back(std::move(c));
        }
      }
    } catch (const DamagedDatabase&) {
      throw;
    } catch (const StoreUnavailable& e) {
      if (e.reason() == FaultReason::read_only || (!memory && read_only_path(path)))
        throw read_only_at_start(path);
      throw std::runtime_error("cannot open SQLite database '" + path + "': " +
                               std::string(describe(e.reason())) + " (" + e.what() + ")");
    } catch (const std::exception& e) {
      std::string what = e.what();
      const int code = writer_ ? sqlite3_extended_errcode(writer_->db.get()) & 0xff : SQLITE_OK;
      // SQLite found a malformed page on its own (e.g. while reading the schema).
      if (code == SQLITE_CORRUPT) throw damaged(path, what);
      // No SQLite header: the wrong file, or runq's file with its first page destroyed.
      if (code == SQLITE_NOTADB) throw not_a_database(path, what);
      if (!memory && read_only_path(path)) throw read_only_at_start(path);
      if (what.rfind("cannot open SQLite database", 0) == 0) throw;  // already names the path
      throw std::runtime_error("cannot open SQLite database '" + path + "': " + what);
    }
  }

  std::string kind() const override { return "sqlite"; }

  // The last connection to close a WAL database checkpoints it and removes its -wal
  // file; one left behind with frames in it means a process died with the file open
  // (or another process has it open now).
  static bool left_a_wal(const std::string& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path + "-wal", ec);
    return !ec && size > 0;
  }

  // The file, or the directory its -wal and -shm files go to, cannot be written (a
  // read-only file system, or no permission).
  static bool read_only_path(const std::string& path) {
    auto denied = [](const std::string& p) {
      return ::access(p.c_str(), W_OK) != 0 &&
             (errno == EROFS || errno == EACCES || errno == EPERM);
    };
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    return denied(path) || denied(dir);
  }

  // runq does not start on a database it cannot write (it would refuse every submit and
  // could never record a job's end): the operator is told what to do instead.
  static std::runtime_error read_only_at_start(const std::string& path) {
    return std::runtime_error(
        "cannot open SQLite database '" + path + "': the file (or its -wal/-shm file, its "
        "directory or its file system) is read-only, and runq must write it. Make it "
        "writable (or mount the file system read-write) and start runq again.");
  }

  static DamagedDatabase damaged(const std::string& path, const std::string& finding) {
    return DamagedDatabase(
        "database file " + path + " is damaged (quick_check: " + finding +
        "). Restore it from a backup, or move it aside (with its -wal and -shm files) to "
        "start with an empty queue; `sqlite3 " + path + " .recover` may save its jobs.");
  }

  static DamagedDatabase not_a_database(const std::string& path, const std::string& what) {
    return DamagedDatabase(
        "file " + path + " is not a SQLite database, or its header is damaged (" + what +
        "). If --db names the wrong file, correct it; if this is runq's database, restore "
        "it from a backup, or move it aside (with its -wal and -shm files) to start with "
        "an empty queue.");
  }

  // PRAGMA quick_check: reads every page once (O(size of the file)); a damaged file is
  // refused before anything is written to it.
  static void quick_check(Db& db, const std::string& path) {
    std::string findings;
    int n = 0;
    {
      sqlite::Stmt st(db.get(), "PRAGMA quick_check");
      Use u(st.get());
      while (u.step()) {
        std::string line = u.text(0);
        if (line == "ok") continue;
        if (n++ < kQuickCheckMessages) findings += (findings.empty() ? "" : "; ") + line;
      }
    }
    if (n > kQuickCheckMessages)
      findings += "; and " + std::to_string(n - kQuickCheckMessages) + " more";
    if (n > 0) throw damaged(path, findings);
  }

  std::vector<InsertResult> insert(const std::vector<Job>& batch,
                                   std::int64_t max_new) override {
    for (const Job& j : batch) {
      if (j.id.empty()) throw std::invalid_argument("Store::insert: a job without an id");
    }
    std::vector<InsertResult> out;
    if (batch.empty()) return out;
    out.reserve(batch.size());
    const std::int64_t now = util::now_us();
    return write([&](Db& db) {
      std::int64_t inserted = 0;
      for (const Job& j : batch) {
        if (j.idempotency_key) {
          if (auto earlier = find_by_key(db, j.owner, *j.idempotency_key, j.request_hash)) {
            out.push_back(std::move(*earlier));
            continue;
          }
        }
        if (inserted >= max_new) {
          out.push_back(InsertResult{InsertResult::Outcome::refused, j});
          continue;
        }
        ++inserted;
        InsertResult r{InsertResult::Outcome::inserted, j};
        Job& job = r.job;
        if (job.created_at_us == 0) job.created_at_us = now;
        insert_row(db, job);
        job.seq = db.last_insert_rowid();
        if (job.idempotency_key) {
          Use(db.cached(s_insert_key,
                        "INSERT INTO idempotency_keys (owner, key, job_id, request_hash) "
                        "VALUES (?1, ?2, ?3, ?4)"))
              .bind(1, job.owner)
              .bind(2, *job.idempotency_key)
              .bind(3, job.id)
              .bind(4, job.request_hash)
              .run();
        }
        out.push_back(std::move(r));
      }
      return std::move(out);
    });
  }

  std::optional<Job> get(const std::string& id) override {
    return read([&](Db& db) { return get_on(db, id, true); });
  }

  std::optional<Job> get_status(const std::string& id) override {
    return read([&](Db& db) { return get_on(db, id, false); });
  }

  // Not fsynced by itself (Sync::later): a claim becomes durable with the next write that
  // is, since the WAL is one file written in order. Power lost before that forgets the
  // start — the job is queued again, as if it had not started — never a stored job.
  std::optional<Job> claim_next(std::int64_t now_us) override {
    return write(Sync::later, [&](Db& db) -> std::optional<Job> {
      Use u(db.cached(s_claim, kClaim));
      u.bind(1, now_us);
      if (!u.step()) return std::nullopt;
      std::optional<Job> job = read_job(u, true);
      u.run();  // finish the statement: the UPDATE commits when it is done
      return job;
    });
  }

  bool finish(const Job& job) override {
    if (!jobs::is_terminal(job.status)) {
      throw std::invalid_argument("Store::finish: status " +
                                  std::string(jobs::to_string(job.status)) +
                                  " is not terminal");
    }
    const std::string_view status = jobs::to_string(job.status);
    const std::int64_t completed = job.completed_at_us.value_or(util::now_us());
    return write([&](Db& db) {
      Use(db.cached(s_finish, kFinish))
          .bind(1, job.id)
          .bind(2, status)
          .bind(3, job.result)
          .bind(4, job.error)
          .bind(5, job.progress.percentage)
          .bind(6, job.progress.current_step)
          .bind(7, job.progress.steps_completed)
          .bind(8, job.progress.steps_total)
          .bind(9, completed)
          .bind(10, job.events_json)
          .bind(11, job.run_id)
          .bind(12, job.agent_id)
          .bind(13, job.metrics.is_null() ? std::optional<std::string>()
                                          : std::optional<std::string>(util::json_text(job.metrics)))
          .run();
      return db.changes() == 1;
    });
  }

  bool cancel_queued(const std::string& id, std::int64_t now_us,
                     const std::optional<std::string>& reason,
                     const std::string& events_json) override {
    return write([&](Db& db) {
      Use(db.cached(s_cancel, kCancel))
          .bind(1, id)
          .bind(2, now_us)
          .bind(3, reason)
          .bind(4, events_json)
          .run();
      return db.changes() == 1;
    });
  }

  RemoveOutcome remove(const std::string& id) override {
    return write([&](Db& db) {
      std::optional<std::string> key;
      std::string owner;
      {
        Use u(db.cached(s_remove_lookup,
                        "SELECT status, idempotency_key, owner FROM jobs WHERE id = ?1"));
        u.bind(1, id);
        if (!u.step()) return RemoveOutcome::not_found;
        auto status = jobs::parse_status(u.text_view(0));
        if (!status || !jobs::is_terminal(*status)) return RemoveOutcome::not_terminal;
        key = u.opt_text(1);
        owner = u.text(2);
      }
      Use(db.cached(s_delete_job, "DELETE FROM jobs WHERE id = ?1")).bind(1, id).run();
      if (key) delete_key_of_job(db, owner, *key, id);
      return RemoveOutcome::removed;
    });
  }

  ListPage list(const ListQuery& q) override {
    const unsigned mask = (q.status ? f_status : 0u) | (q.session_id ? f_session : 0u) |
                          (q.owner ? f_owner : 0u);
    const std::string_view status = q.status ? jobs::to_string(*q.status) : "";
    const std::int64_t page_size = std::max(q.page_size, 1);
    const std::int64_t offset = (std::max(q.page, 1) - std::int64_t{1}) * page_size;
    auto bind_filters = [&](Use& u) {
      if (mask & f_status) u.bind(1, status);
      if (mask & f_session) u.bind(2, *q.session_id);
      if (mask & f_owner) u.bind(3, *q.owner);
    };
    return read([&](Db& db) {
      ListPage page;
      Transaction txn(db, /*immediate=*/false);  // the page and its total from one snapshot
      {
        Use u(db.cached(s_count_base + mask, list_sql(mask, true)));
        bind_filters(u);
        if (u.step()) page.total = u.i64(0);
      }
      if (offset < page.total) {
        Use u(db.cached(s_list_base + mask, list_sql(mask, false)));
        bind_filters(u);
        u.bind(4, page_size).bind(5, offset);
        page.jobs.reserve(static_cast<std::size_t>(std::min(page_size, page.total - offset)));
        while (u.step()) page.jobs.push_back(read_job(u, false));
      }
      txn.commit();
      return page;
    });
  }

  StatusCounts count_by_status(const std::optional<std::string>& owner) override {
    return read([&](Db& db) {
      StatusCounts counts{};
      Use u(owner ? db.cached(s_count_owner,
                              "SELECT status, COUNT(*) FROM jobs WHERE owner = ?1 "
                              "GROUP BY status")
                  : db.cached(s_count_all, "SELECT status, COUNT(*) FROM jobs GROUP BY status"));
      if (owner) u.bind(1, *owner);
      while (u.step()) {
        if (auto s = jobs::parse_status(u.text_view(0))) {
          counts[static_cast<std::size_t>(*s)] = u.i64(1);
        }
      }
      return counts;
    });
  }

  RequeueCounts requeue_running(int max_attempts) override {
    return write([&](Db& db) {
      RequeueCounts counts;
      if (max_attempts > 0) {
        Use(db.cached(s_requeue_fail, kRequeueFail))
            .bind(1, util::now_us())
            .bind(2, max_attempts)
            .run();
        counts.failed = static_cast<int>(db.changes());
      }
      Use(db.cached(s_requeue,
                    "UPDATE jobs SET status = 'queued', started_at = NULL "
                    "WHERE status = 'running'"))
          .run();
      counts.requeued = static_cast<int>(db.changes());
      return counts;
    });
  }

  int delete_finished_before(std::int64_t completed_before_us, int limit) override {
    if (limit <= 0) return 0;
    return write([&](Db& db) {
      struct Key {
        std::string owner, key, job_id;
      };
      std::vector<Key> keys;
      int deleted = 0;
      {
        Use u(db.cached(s_delete_finished, kDeleteFinished));
        u.bind(1, completed_before_us).bind(2, std::int64_t{limit});
        while (u.step()) {
          ++deleted;
          if (!u.is_null(1)) keys.push_back(Key{u.text(2), u.text(1), u.text(0)});
        }
      }
      for (const auto& k : keys) delete_key_of_job(db, k.owner, k.key, k.job_id);
      return deleted;
    });
  }

  bool requeue_for_retry(const std::string& id, std::int64_t not_before_us) override {
    return write([&](Db& db) {
      Use(db.cached(s_retry, kRetry)).bind(1, id).bind(2, not_before_us).run();
      return db.changes() == 1;
    });
  }

  // A claim undone (the job never ran): back to queued with the attempt given back, and
  // no start time if it had never started before.
  bool unclaim(const std::string& id) override {
    return write([&](Db& db) {
      Use(db.cached(s_unclaim,
                    "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), "
                    "started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END "
                    "WHERE id = ?1 AND status = 'running'"))
          .bind(1, id)
          .run();
      return db.changes() == 1;
    });
  }

  std::vector<WebhookDelivery> due_webhooks(std::int64_t now_us, int limit) override {
    return read([&](Db& db) {
      std::vector<WebhookDelivery> out;
      Use u(db.cached(s_due_webhooks,
                      "SELECT " RUNQ_ROW_WHOLE ", webhook_attempts FROM jobs "
                      "INDEXED BY jobs_webhooks WHERE webhook_state = 1 AND "
                      "webhook_next_at <= ?1 ORDER BY webhook_next_at LIMIT ?2"));
      u.bind(1, now_us).bind(2, std::int64_t{limit});
      while (u.step()) out.push_back({read_job(u, true), u.i32(c_count)});
      return out;
    });
  }

  void webhook_attempted(const std::string& id, bool delivered,
                         std::optional<std::int64_t> next_at_us) override {
    const int state = delivered ? 2 : next_at_us ? 1 : 3;
    write([&](Db& db) {
      Use(db.cached(s_webhook_attempted,
                    "UPDATE jobs SET webhook_state = ?2, webhook_attempts = "
                    "webhook_attempts + 1, webhook_next_at = ?3 WHERE id = ?1"))
          .bind(1, id)
          .bind(2, state)
          .bind(3, delivered ? std::nullopt : next_at_us)
          .run();
    });
  }

  std::optional<StoreFault> write_fault() const override {
    std::lock_guard lock(fault_mu_);
    return fault_;
  }

  void probe_write() override {
    write([&](Db& db) {
      Use(db.cached(s_probe,
                    "INSERT INTO store_probe (id, at) VALUES (1, ?1) "
                    "ON CONFLICT (id) DO UPDATE SET at = excluded.at"))
          .bind(1, util::now_us())
          .run();
    });
  }

  std::optional<std::int64_t> next_webhook_at() override {
    return read([&](Db& db) -> std::optional<std::int64_t> {
      Use u(db.cached(s_next_webhook,
                      "SELECT MIN(webhook_next_at) FROM jobs INDEXED BY jobs_webhooks "
                      "WHERE webhook_state = 1"));
      if (!u.step()) return std::nullopt;
      return u.opt_i64(0);
    });
  }

 private:
  // Creates or upgrades the schema to kSchemaVersion.
  static void migrate(Db& db) {
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

  // Runs the write `f(Db&)` on the writer connection, in a batch with the writes of
  // other threads (group commit), and returns when its batch has committed.
  template <class F>
  std::invoke_result_t<F&, Db&> write(F&& f) {
    return write(Sync::now, std::forward<F>(f));
  }
  template <class F>
  std::invoke_result_t<F&, Db&> write(Sync sync, F&& f) {
    using R = std::invoke_result_t<F&, Db&>;
    if constexpr (std::is_void_v<R>) {
      WriteOp op{[&](Db& db) { f(db); }, sync};
      run_write(op);
    } else {
      std::optional<R> result;
      WriteOp op{[&](Db& db) { result.emplace(f(db)); }, sync};
      run_write(op);
      return std::move(*result);
    }
  }

  void run_write(WriteOp& op) {
    batches_.run(op, [this](std::vector<WriteOp*>& batch) { commit_batch(batch); });
    if (op.error) std::rethrow_exception(op.error);
  }

  // Runs a batch of writes in one transaction: one fsync for all (none if no write in it
  // needs one). With several writes, each runs under a savepoint, so one that fails for
  // its own reasons (a constraint, a bug) is undone alone and only its caller gets the
  // error. A storage fault (disk full, read-only, I/O error) or a failed COMMIT undoes
  // the whole batch and every caller gets it: nothing of the batch is stored.
  // write_fault() is kept here: a fault is recorded; a batch that changed a row clears
  // it. (One that changed nothing, e.g. a claim with nothing queued, may not have
  // touched the disk, so it proves nothing.)
  void commit_batch(std::vector<WriteOp*>& batch) {
    std::lock_guard lock(writer_->mu);
    Db& db = writer_->db;
    const bool several = batch.size() > 1;
    const bool sync = std::any_of(batch.begin(), batch.end(),
                                  [](const WriteOp* op) { return op->sync == Sync::now; });
    const std::int64_t before = sqlite3_total_changes64(db.get());
    try {
      if (sync != writer_syncs_) {
        Use(sync ? db.cached(s_sync_full, "PRAGMA synchronous = FULL")
                 : db.cached(s_sync_normal, "PRAGMA synchronous = NORMAL"))
            .run();
        writer_syncs_ = sync;
      }
      Transaction txn(db, /*immediate=*/true);
      for (WriteOp* op : batch) {
        if (several) Use(db.cached(s_savepoint, "SAVEPOINT w")).run();
        try {
          op->fn(db);
        } catch (const StoreUnavailable&) {
          throw;
        } catch (...) {
          op->error = std::current_exception();
          // Alone, or SQLite rolled the whole transaction back: nothing to keep.
          if (!several || !db.in_transaction()) throw;
          Use(db.cached(s_rollback_to, "ROLLBACK TO w")).run();
        }
        if (several) Use(db.cached(s_release, "RELEASE w")).run();
      }
      txn.commit();
      if (sqlite3_total_changes64(db.get()) != before) clear_fault();
    } catch (const StoreUnavailable& e) {
      note_fault(e);
      for (WriteOp* op : batch) op->error = std::current_exception();
    } catch (...) {
      for (WriteOp* op : batch)
        if (!op->error) op->error = std::current_exception();
    }
  }

  void note_fault(const StoreUnavailable& e) {
    std::lock_guard lock(fault_mu_);
    if (fault_ && fault_->reason == e.reason()) {
      fault_->message = e.what();
      return;
    }
    spdlog::error("job store is not writable ({}): {}; submits get 503 until it is, "
                  "reads go on, writes are retried",
                  describe(e.reason()), e.what());
    fault_ = StoreFault{e.reason(), e.what(), fault_ ? fault_->since_us : util::now_us()};
  }

  void clear_fault() {
    std::lock_guard lock(fault_mu_);
    if (!fault_) return;
    spdlog::warn("job store is writable again (it was not for {:.1f} s: {})",
                 static_cast<double>(util::now_us() - fault_->since_us) / 1e6,
                 describe(fault_->reason));
    fault_.reset();
  }

  // Runs `f(Db&)` on a reader connection (the writer for ":memory:"): a free one if
  // there is one, else waits for one picked round-robin.
  template <class F>
  std::invoke_result_t<F&, Db&> read(F&& f) {
    if (readers_.empty()) {
      std::lock_guard lock(writer_->mu);
      return f(writer_->db);
    }
    const std::size_t n = readers_.size();
    const std::size_t start = next_reader_.fetch_add(1, std::memory_order_relaxed) % n;
    for (std::size_t i = 0; i < n; ++i) {
      Conn& c = *readers_[(start + i) % n];
      std::unique_lock lock(c.mu, std::try_to_lock);
      if (lock.owns_lock()) return f(c.db);
    }
    Conn& c = *readers_[start];
    std::lock_guard lock(c.mu);
    return f(c.db);
  }

  static std::optional<Job> get_on(Db& db, const std::string& id, bool whole) {
    Use u(whole ? db.cached(s_get_whole, kGetWhole) : db.cached(s_get_status, kGetStatus));
    u.bind(1, id);
    if (!u.step()) return std::nullopt;
    return read_job(u, whole);
  }

  // For an idempotency key already recorded: the earlier job as replayed or conflict.
  // nullopt if the key is free (a key whose job is gone is freed here).
  static std::optional<InsertResult> find_by_key(Db& db, const std::string& owner,
                                                 const std::string& key,
                                                 const std::string& request_hash) {
    std::string job_id;
    bool same_request = false;
    {
      Use u(db.cached(s_find_key,
                      "SELECT job_id, request_hash FROM idempotency_keys "
                      "WHERE owner = ?1 AND key = ?2"));
      u.bind(1, owner).bind(2, key);
      if (!u.step()) return std::nullopt;
      job_id = u.text(0);
      same_request = u.text_view(1) == request_hash;
    }
    if (auto earlier = get_on(db, job_id, true)) {
      return InsertResult{same_request ? InsertResult::Outcome::replayed
                                       : InsertResult::Outcome::conflict,
                          std::move(*earlier)};
    }
    Use(db.cached(s_delete_key, "DELETE FROM idempotency_keys WHERE owner = ?1 AND key = ?2"))
        .bind(1, owner)
        .bind(2, key)
        .run();
    return std::nullopt;
  }

  // Frees an idempotency key, but only if it still points at this job.
  static void delete_key_of_job(Db& db, const std::string& owner, const std::string& key,
                                const std::string& job_id) {
    Use(db.cached(s_delete_key_of_job,
                  "DELETE FROM idempotency_keys WHERE owner = ?1 AND key = ?2 AND job_id = ?3"))
        .bind(1, owner)
        .bind(2, key)
        .bind(3, job_id)
        .run();
  }

  static void insert_row(Db& db, const Job& j) {
    const std::string recipe_config = util::json_text(j.recipe_config);
    const std::string config = util::json_text(j.config);
    const std::string metadata = util::json_text(j.metadata);
    Use(db.cached(s_insert_job, kInsertJob))
        .bind(c_id, j.id)
        .bind(c_status, jobs::to_string(j.status))
        .bind(c_progress_pct, j.progress.percentage)
        .bind(c_progress_step, j.progress.current_step)
        .bind(c_steps_completed, j.progress.steps_completed)
        .bind(c_steps_total, j.progress.steps_total)
        .bind(c_created_at, j.created_at_us)
        .bind(c_started_at, j.started_at_us)
        .bind(c_completed_at, j.completed_at_us)
        .bind(c_agent_id, j.agent_id)
        .bind(c_run_id, j.run_id)
        .bind(c_session_id, j.session_id)
        .bind(c_error, j.error)
        .bind(c_attempts, j.attempts)
        .bind(c_agent_file, j.agent_file)
        .bind(c_recipe_name, j.recipe_name)
        .bind(c_recipe_config, recipe_config)
        .bind(c_config, config)
        .bind(c_framework, j.framework)
        .bind(c_webhook_url, j.webhook_url)
        .bind(c_timeout_s, j.timeout_s)
        .bind(c_priority, j.priority)
        .bind(c_metadata, metadata)
        .bind(c_max_retries, j.max_retries)
        .bind(c_owner, j.owner)
        .bind(c_idempotency_key, j.idempotency_key)
        .bind(c_request_hash, j.request_hash)
        .bind(c_prompt, j.prompt)
        .bind(c_agent_yaml, j.agent_yaml)
        .bind(c_result, j.result)
        .bind(c_events_json, j.events_json)
        .bind(c_metrics, j.metrics.is_null() ? std::optional<std::string>()
                                             : std::optional<std::string>(util::json_text(j.metrics)))
        .run();
  }

  // Declared first, destroyed last: the writer closes after the readers, so it is the
  // one that checkpoints the WAL on close.
  std::unique_ptr<Conn> writer_;
  bool writer_syncs_ = true;  // PRAGMA synchronous of the writer: FULL, or NORMAL
  GroupCommit<WriteOp> batches_;
  std::vector<std::unique_ptr<Conn>> readers_;
  std::atomic<std::size_t> next_reader_{0};
  mutable std::mutex fault_mu_;
  std::optional<StoreFault> fault_;  // guarded by fault_mu_
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& path, StartupCheck check) {
  return std::make_unique<SqliteStore>(path, check);
}

}  // namespace runq::store
