#pragma once
// Private to jobs/: the state of jobs this process is running, their SSE event logs,
// and the ?wait= waiters. Shared by JobService (reads, cancel) and Scheduler (workers).
#include "runq/jobs/cancel_token.hpp"
#include "runq/jobs/event_log.hpp"
#include "runq/jobs/job.hpp"
#include "runq/jobs/timer_queue.hpp"
#include "runq/jobs/store.hpp"
#include "event_feed.hpp"
#include "transitions.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace runq::jobs {

// One job running on a worker of this process.
struct RunningJob {
  std::mutex mu;
  Job view;  // the status view: no prompt/result payloads; progress kept current
  CancelToken token;
  bool finalized = false;  // its terminal state has been written (first writer wins)
  bool completed_event = false;  // the 100% progress event of a success is in the log
  // A failed attempt went back to the queue for a retry: the store row is `queued`
  // again, so this attempt can no longer be finalized (a cancel goes to the queue).
  bool requeued = false;
  std::shared_ptr<EventLog> log;

  // Its view is the job's current state (not ended, not handed back to the queue).
  bool current() const { return !finalized && !requeued; }
};

// The terminal state to record for a job, and the SSE event that announces it.
struct Ending {
  JobStatus status;
  std::optional<std::string> result;
  std::optional<std::string> error;
  std::string event_type;  // "result", "error", "cancelled"
  std::string event_data;  // JSON text
  // When the job ended; unset: when finalize is called. (Set by a worker that may have
  // to retry the write, so the stored time is when the work ended.)
  std::optional<std::int64_t> completed_at_us;
};

Ending ending_succeeded(const std::string& result);
Ending ending_failed(const std::string& error);
Ending ending_cancelled(const std::optional<std::string>& reason);

// Events for a finished job stored without any (e.g. cancelled while queued).
std::shared_ptr<EventLog> synthesize_events(const Job& job);

class LiveJobs {
 public:
  // on_end is called (on the ending thread) after the terminal state of a job with a
  // webhook_url is stored (and after any cancel of a queued job).
  // `feed` (several nodes; else nullptr) publishes the events of the jobs run here.
  LiveJobs(jobs::Store& store, Transitions& transitions, TimerQueue& timers,
           std::function<void(const std::string& id)> on_end, EventFeed* feed);

  // A worker claimed `job`: track it and announce `running` on its event log. If the
  // job's previous attempt is still being handed back to the queue, that finishes first
  // (its "queued" retry event comes before this "running" one).
  std::shared_ptr<RunningJob> add_running(const Job& job);
  std::shared_ptr<RunningJob> find(const std::string& id) const;
  std::vector<std::shared_ptr<RunningJob>> all() const;
  // The worker is done with the job (its work has stopped). Removes the entry only if it
  // is still `rj` (a retry of the job may already be running under the same id).
  void remove(const std::string& id, const RunningJob* rj);

  // Progress from the agent: updates the view and emits a `progress` event.
  void progress(RunningJob& rj, double percentage, std::optional<std::string> step,
                int steps_completed, std::optional<int> steps_total);
  void output(RunningJob& rj, std::string_view delta);

  // A failed attempt goes back to the queue for a retry (the store says so already):
  // announce it on the event log; the worker then removes the job from the running ones.
  // Called with rj.mu held (see add_running).
  void retrying(RunningJob& rj, const std::string& error, std::chrono::milliseconds delay);

  // Writes the job's terminal state to the store, then to the view and the event log,
  // then wakes waiters. Only the first call for a job does anything; returns whether
  // this call did. Throws if the store write fails (StoreUnavailable for a storage
  // fault): the job is then still running as far as readers can tell, and a later call
  // may try again.
  bool finalize(RunningJob& rj, const Ending& ending);

  // Cancels a queued job in the store, storing its event history (the live log's, when
  // it has one: e.g. the attempts of a retried job), then closes that log and wakes
  // waiters. False if the job was not queued.
  bool cancel_queued(const std::string& id, const Ending& ending);

  // The event log for an SSE stream (see JobService::events).
  std::shared_ptr<EventLog> log_for_stream(const std::string& id);

  // ?wait= support (see JobService::wait_terminal).
  void wait_terminal(const std::string& id, std::chrono::milliseconds max_wait,
                     std::function<void()> done);
  // Fires every waiter (shutdown), and from now on every new one at once.
  void release_all_waiters();

  // Several nodes: the jobs `ids` have news from another node (events, an end, a delete).
  // The logs that streams here follow get the new events (copied from the store, with
  // the same ids), and end when the job has; waiters of an ended job are answered.
  // Empty `ids`: look at every job followed or waited for here.
  void cluster_changed(const std::vector<std::string>& ids);
  // Tells the other nodes that `id` has news (e.g. it was deleted here).
  void touch(const std::string& id);

 private:
  struct Waiter;
  std::shared_ptr<EventLog> log_locked(const std::string& id);  // get or create
  // Forgets the log of `id` if it is still `log` (a newer one may have replaced it).
  void drop_log(const std::string& id, const EventLog* log);
  void notify_waiters(const std::string& id);
  // cluster_changed for one job, unless it runs here.
  void refresh_from_store(const std::string& id);

  jobs::Store& store_;
  Transitions& transitions_;
  TimerQueue& timers_;
  std::function<void(const std::string& id)> on_end_;
  EventFeed* feed_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<RunningJob>> running_;
  std::unordered_map<std::string, std::shared_ptr<EventLog>> logs_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Waiter>>> waiters_;
  bool released_ = false;  // release_all_waiters ran: waiters fire as they come
};

}  // namespace runq::jobs
