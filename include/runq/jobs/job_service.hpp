#pragma once
#include "runq/jobs/agent.hpp"
#include "runq/jobs/defaults.hpp"
#include "runq/jobs/event_log.hpp"
#include "runq/jobs/job.hpp"
#include "runq/jobs/store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace runq::jobs {

struct ServiceOptions {
  int max_concurrent = defaults::kMaxConcurrent;  // worker threads = jobs running at once
  int default_timeout_s = defaults::kTimeoutS;    // running-time limit when a submit gives none
  int max_timeout_s = defaults::kMaxTimeoutS;     // largest timeout a submit may ask for
  int retry_after_queued_s = 2;   // `retry_after` while queued
  int retry_after_running_s = 5;  // `retry_after` while running
  int max_batch = 512;            // most submits committed in one transaction
  int max_retries_cap = defaults::kMaxRetries;  // a job's max_retries is cut to this
  std::chrono::milliseconds retry_base_delay{1000};  // backoff of the first retry
  std::chrono::milliseconds retry_max_delay{300'000};
  // Backpressure: most jobs waiting in the queue (running ones don't count); a submit
  // beyond it is refused (queue_full) and nothing is stored. <= 0: no limit.
  std::int64_t max_queued = defaults::kMaxQueued;
  // Retention: finished jobs are deleted this long after they completed. 0: kept forever.
  std::int64_t retention_s = defaults::kRetentionS;
  int retention_batch = 500;                          // rows deleted per transaction
  std::chrono::milliseconds retention_pause{20};      // between two full batches
  // Crash recovery: a job found `running` at start that has already started this many
  // times fails instead of running again. 0: never give up.
  int max_attempts = defaults::kMaxAttempts;
  // First pause before a worker tries again to store a job's end the store refused
  // (doubling up to 5 s, until it is stored or the server stops). Tests shorten it.
  std::chrono::milliseconds end_retry_first{200};
  // Called after the terminal state of a job with a webhook_url is stored, so its
  // webhook is delivered soon (and after any cancel of a queued job).
  std::function<void(const std::string& job_id)> on_job_end;
  // This node's name in /health when several nodes share the store; "" for one node.
  std::string node_name;
};

struct SubmitOutcome {
  enum class Kind {
    accepted,       // stored; `job` is the new job
    replayed,       // same idempotency key and request: `job` is the earlier job
    conflict,       // same key, other request: `job` is the earlier job
    store_error,    // could not be stored; `error` says why; nothing was stored
    store_unavailable,  // the store cannot be written now (disk full, read-only);
                        // `error` is the detail for the client; nothing was stored
    shutting_down,  // the service is stopping; nothing was stored
    queue_full,     // max_queued jobs are waiting; nothing was stored
  } kind = Kind::accepted;
  Job job;
  std::string error;
  // queue_full: jobs queued when it was refused, and seconds to wait (from the drain rate).
  std::int64_t queued_jobs = 0;
  int retry_after_s = 0;
};

struct CancelOutcome {
  enum class Kind { cancelled, not_cancellable, not_found } kind = Kind::not_found;
  Job job;  // the status after the call (when found)
};

struct HealthStats {
  int running_jobs = 0;
  std::int64_t queued_jobs = 0;
  int max_concurrent = 0;
  int default_timeout = 0;
  bool shutdown = false;
  std::string store_kind;
  std::string node_name;  // this node's name (a PostgreSQL cluster); "" for SQLite
  // Set while the store cannot be written (disk full, read-only): /health is degraded.
  std::optional<jobs::StoreFault> store_fault;
};

// The domain: accepts jobs, stores them, runs them on the worker pool, answers
// questions about them. Knows nothing of HTTP. Thread-safe.
class JobService {
 public:
  JobService(jobs::Store& store, jobs::Agent& agent, ServiceOptions options);
  ~JobService();
  JobService(const JobService&) = delete;
  JobService& operator=(const JobService&) = delete;

  const ServiceOptions& options() const { return options_; }

  // Re-queues jobs a dead process left running (failing those interrupted max_attempts
  // times), then starts the committer, the workers and the retention sweep.
  void start();
  // Graceful stop, step 1: refuses submits from now on (shutting_down), commits those
  // already taken, answers every ?wait= waiter, starts no new job. Running jobs go on.
  void begin_stop();
  // Step 2: waits up to `timeout` for the running jobs to end. True if none is left.
  bool drain(std::chrono::milliseconds timeout);
  // Step 3 (also alone): begin_stop(), then stops the jobs still running (each goes
  // back to the queue for the next start) and the workers. Idempotent.
  void stop();
  // Jobs running right now.
  int running() const;

  // Stores `job` (the validated request: prompt, fields, idempotency_key,
  // request_hash, timeout_s 0 = default) and calls `done` once it is committed or
  // refused — on another thread. The service fills in id, status, created_at.
  void submit(Job job, std::function<void(SubmitOutcome)> done);

  // The status view (no prompt/result payloads), with live progress of running jobs.
  std::optional<Job> status(const std::string& id);
  // The whole job, including its result.
  std::optional<Job> get(const std::string& id);

  CancelOutcome cancel(const std::string& id);
  jobs::RemoveOutcome remove(const std::string& id);
  // Goes up after every removal of jobs (DELETE, retention sweep), once they are gone:
  // what was read before is stale from then on if it was a removed job.
  std::uint64_t removals() const;
  jobs::ListPage list(const jobs::ListQuery& q);
  jobs::StatusCounts counts(const std::optional<std::string>& owner = std::nullopt);
  HealthStats health();

  // Jobs waiting in the queue, as the backpressure check sees them (kept in memory:
  // counted once at start, then +inserted, -claimed, -cancelled, +retried).
  std::int64_t queued_count() const;

  // One retention pass now: deletes every finished job past retention_s, in batches of
  // retention_batch. Returns how many. (The sweep thread calls it periodically.)
  std::int64_t sweep_expired();

  // Calls `done` (on some other thread, or at once) when the job is terminal, gone,
  // or `max_wait` has passed — whichever is first. Exactly once.
  void wait_terminal(const std::string& id, std::chrono::milliseconds max_wait,
                     std::function<void()> done);

  // The job's event log, for SSE: live for queued/running jobs, replayed (closed) for
  // finished ones. nullptr if there is no such job.
  std::shared_ptr<EventLog> events(const std::string& id);

 private:
  void commit_loop();
  void sweep_loop();
  // Several nodes: the queue is the whole cluster's, which this node's own submits and
  // claims do not tell; it is counted from the store every second.
  void queue_count_loop();
  // Cancels `id` if it runs on this node; its status view then, else nullopt.
  std::optional<Job> cancel_here(const std::string& id);

  jobs::Store& store_;
  ServiceOptions options_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace runq::jobs
