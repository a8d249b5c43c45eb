#pragma once
#include "runq/jobs/event_log.hpp"
#include "runq/jobs/job.hpp"
#include "runq/jobs/store_error.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace runq::jobs {

// What happened to one job handed to Store::insert.
struct InsertResult {
  enum class Outcome { inserted, replayed, conflict, refused } outcome = Outcome::inserted;
  // inserted: the new job. replayed: the earlier job with the same idempotency key and
  // request (status as stored). conflict: the earlier job, whose request differed.
  // refused: a new job beyond insert's max_new (nothing stored); `job` as given.
  Job job;
};

// Store::insert's max_new when there is no limit.
inline constexpr std::int64_t kUnlimited = std::numeric_limits<std::int64_t>::max();

struct ListQuery {
  std::optional<JobStatus> status;
  std::optional<std::string> session_id;
  std::optional<std::string> owner;  // when set, only this owner's jobs
  int page = 1;                      // 1-based
  int page_size = 20;
};

// How much of its prompt a listed job carries: a preview, and whether the prompt goes on.
inline constexpr int kListPromptChars = 101;

struct ListPage {
  // Newest first; without result payloads and events, and `prompt` holds only the
  // prompt's first kListPromptChars characters.
  std::vector<Job> jobs;
  std::int64_t total = 0;
};

// Counts per status, indexed by static_cast<int>(JobStatus).
using StatusCounts = std::array<std::int64_t, 5>;

enum class RemoveOutcome { removed, not_found, not_terminal };

// What requeue_running did.
struct RequeueCounts {
  int requeued = 0;  // running -> queued, to run again
  int failed = 0;    // interrupted too often: running -> failed
};

// A finished job whose webhook is due, and how many deliveries were tried before.
struct WebhookDelivery {
  Job job;  // whole
  int attempts = 0;
};

// The durable home of every job. Every method is thread-safe and synchronous; each
// write is atomic and committed (durable) when the call returns — except a claim, which
// may only become durable with the next write (see claim_next).
// Claiming work is a store operation so that several nodes can share one database.
//
// Storage faults: a method that cannot write (or read) because the disk is full, the
// file or file system is read-only, or I/O fails throws StoreUnavailable; nothing of
// that call is stored. The store remembers the fault (write_fault) until a later write
// changes something again: every write simply tries again, so the store recovers by
// itself when the fault is cleared.
class Store {
 public:
  virtual ~Store() = default;

  // "sqlite", "postgresql" — shown in /health.
  virtual std::string kind() const = 0;

  // Inserts a batch in ONE transaction (group commit). For a job with an
  // idempotency_key the key is checked and recorded inside the same transaction: an
  // existing key with the same request_hash is `replayed`, with another one `conflict`;
  // neither stores anything. At most max_new jobs are inserted (backpressure): new jobs
  // beyond them are `refused` and not stored, while replays and conflicts are still
  // answered. Jobs come with id, created_at_us and seq unset or set; the store assigns
  // seq. Results are in the order of `batch`.
  virtual std::vector<InsertResult> insert(const std::vector<Job>& batch,
                                           std::int64_t max_new = kUnlimited) = 0;

  // The whole job (with prompt, result and events), or nullopt.
  virtual std::optional<Job> get(const std::string& id) = 0;

  // The job without its large fields (prompt, result, events_json, agent_yaml) —
  // everything a status object needs. The hot read path.
  virtual std::optional<Job> get_status(const std::string& id) = 0;

  // Atomically takes the best queued job (highest priority, then lowest seq), marks it
  // running with started_at_us = now_us and attempts + 1, and returns it whole. The claim
  // need not be on disk yet: a power loss may forget it (the job is queued again, its
  // attempts as before), never a job or an ending.
  virtual std::optional<Job> claim_next(std::int64_t now_us) = 0;
  // claim_next for up to `max` jobs (in claim order), for a node's idle workers; fewer
  // only if no more are queued (or a store error stopped it after the first). The stores
  // claim them in one statement; the default calls claim_next up to `max` times.
  virtual std::vector<Job> claim_many(std::int64_t now_us, int max) {
    std::vector<Job> out;
    while (static_cast<int>(out.size()) < max) {
      std::optional<Job> job;
      try {
        job = claim_next(now_us);
      } catch (...) {
        if (out.empty()) throw;
        break;  // the jobs claimed already are running: hand them out
      }
      if (!job) break;
      out.push_back(std::move(*job));
    }
    return out;
  }

  // Writes a terminal state (status, result, error, progress, completed_at, events_json,
  // run_id, agent_id, metrics) if the stored job is not terminal yet. False if it
  // already was (or is gone): terminal states never change. With several nodes, a running
  // job's end is also refused (false) unless this node still runs that attempt
  // (`job.attempts`): a node that lost its lease cannot record over the next attempt. A job with a webhook_url
  // has its webhook due from then on (in the same write).
  virtual bool finish(const Job& job) = 0;

  // queued -> cancelled with `reason` as error (webhook due as for finish), storing
  // `events_json` (the job's SSE history, closed with its `cancelled` event; "": none,
  // readers synthesize it). False if the job was not queued.
  virtual bool cancel_queued(const std::string& id, std::int64_t now_us,
                             const std::optional<std::string>& reason,
                             const std::string& events_json = {}) = 0;

  // Deletes a terminal job and frees its idempotency key.
  virtual RemoveOutcome remove(const std::string& id) = 0;

  virtual ListPage list(const ListQuery& q) = 0;

  virtual StatusCounts count_by_status(const std::optional<std::string>& owner) = 0;

  // On start-up of a single node: jobs left `running` by a dead process go back to
  // `queued` (keeping their attempts) — except those that have started max_attempts
  // times or more already (max_attempts > 0): they become `failed` with error
  // "Job interrupted {attempts} times (the server stopped while it ran); giving up",
  // completed_at now and their webhook due, as finish() would. One transaction.
  virtual RequeueCounts requeue_running(int max_attempts) = 0;

  // Retention: deletes up to `limit` terminal jobs that completed before
  // completed_before_us (oldest first), in one transaction, and frees their idempotency
  // keys. Jobs whose webhook is still pending are kept until it is delivered or given
  // up. Returns how many were deleted (less than `limit`: nothing more is due).
  virtual int delete_finished_before(std::int64_t completed_before_us, int limit) = 0;

  // A failed attempt will be retried: running -> queued, not claimed before
  // not_before_us; attempts kept, error and progress cleared. False if the job is not
  // running that attempt any more (`running.attempts`; with several nodes: on this node).
  virtual bool requeue_for_retry(const Job& running, std::int64_t not_before_us) = 0;

  // Finished jobs whose webhook is due at now_us, earliest first, at most `limit`.
  virtual std::vector<WebhookDelivery> due_webhooks(std::int64_t now_us, int limit) = 0;
  // Records one delivery attempt: delivered; or failed, to be tried again at next_at_us
  // (nullopt: given up).
  virtual void webhook_attempted(const std::string& id, bool delivered,
                                 std::optional<std::int64_t> next_at_us) = 0;
  // When the earliest pending webhook is due, or nullopt if none is pending.
  virtual std::optional<std::int64_t> next_webhook_at() = 0;

  // The storage fault of the last write, or nullopt when the last write that changed
  // something succeeded (or nothing failed yet). Cheap: no I/O.
  virtual std::optional<StoreFault> write_fault() const { return std::nullopt; }
  // A tiny durable write that changes nothing a client can see, to learn whether the
  // store can be written again: clears write_fault on success, throws StoreUnavailable
  // (and keeps it) on a storage fault.
  virtual void probe_write() {}

  // Several nodes on one store (PostgreSQL). `stop_all` is called, from the store's own
  // thread, when this node has lost its claim on the jobs it runs, or is about to (it
  // could not renew its lease in time, or another node has already taken its jobs back):
  // it must stop them at once. Whatever they report afterwards is refused by the store
  // (finish and requeue_for_retry return false); another node runs them again. Set it
  // before the first claim; set an empty function before `stop_all`'s target goes away.
  // A store of a single node never calls it.
  virtual void on_lease_lost(std::function<void()> stop_all) { (void)stop_all; }

  // ---- Several nodes: what one node does reaches the others (PostgreSQL) ----
  // A store of a single node answers false, and nobody calls the methods below.
  virtual bool shared() const { return false; }

  // One event of a job this node runs, of attempt `attempt`.
  struct PublishedEvent {
    std::string job_id;
    int attempt = 0;
    Event event;
  };
  // Stores the events (only those of an attempt this node still runs: the rest are
  // dropped) and tells every node that the jobs `changed` have news (events, an end, a
  // cancel, a delete). One write.
  virtual void publish(const std::vector<PublishedEvent>& events,
                       const std::vector<std::string>& changed) {
    (void)events, (void)changed;
  }
  struct EventsAfter {
    bool found = false;     // the job exists
    bool terminal = false;  // it has ended: its whole history is in the job (events_json)
    std::vector<Event> events;  // not terminal: its stored events with id > after_id
  };
  virtual EventsAfter events_after(const std::string& id, std::int64_t after_id) {
    (void)id, (void)after_id;
    return {};
  }
  // Asks the node that runs `id` to cancel it; recorded on the job, so that the node
  // that rescues it from a dead node cancels it too. False if the job is not running.
  virtual bool request_cancel(const std::string& id) {
    (void)id;
    return false;
  }
  // News from the nodes (this one too), called from the store's own listener thread.
  struct ClusterNews {
    // These jobs have news. Empty: news may have been missed (the listener reconnected):
    // look at every job of interest again.
    std::function<void(const std::vector<std::string>& ids)> jobs_changed;
    // A cancel was requested for a job this node runs.
    std::function<void(const std::string& id)> cancel_requested;
    // About `n` jobs were queued (submitted, re-queued).
    std::function<void(int n)> jobs_queued;
  };
  // Sets the handlers; as for on_lease_lost, once it returns the old ones are not
  // running any more. Set empty ones before their target goes away.
  virtual void on_cluster_news(ClusterNews news) { (void)news; }
};

}  // namespace runq::jobs
