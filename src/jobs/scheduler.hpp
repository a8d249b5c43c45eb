#pragma once
// Private to jobs/: the worker pool. Each worker claims the best queued job from the
// store (priority, then FIFO), runs it on the agent, and records how it ended.
#include "live_jobs.hpp"
#include "transitions.hpp"
#include "runq/jobs/agent.hpp"
#include "runq/jobs/timer_queue.hpp"
#include "runq/jobs/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace runq::jobs {

struct SchedulerOptions {
  int workers = 10;
  std::chrono::milliseconds retry_base_delay{1000};  // first retry after about this
  std::chrono::milliseconds retry_max_delay{300'000};
  // Queue bookkeeping (backpressure): a job was claimed off the queue; a failed job
  // went back to it for a retry. May be empty.
  std::function<void()> on_claimed;
  std::function<void()> on_requeued;
  // First pause before storing a job's end again after the store failed; doubles up to
  // 5 s. (Tests shorten it.)
  std::chrono::milliseconds end_retry_first{200};
};

class Scheduler {
 public:
  Scheduler(jobs::Store& store, Transitions& transitions, jobs::Agent& agent,
            LiveJobs& live, TimerQueue& timers, SchedulerOptions options);
  ~Scheduler();

  void start();
  // Graceful stop, step 1: no new job is claimed; running jobs go on.
  void stop_claiming();
  // Step 2: waits until no job is running, or until `deadline`. True if none is.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);
  // Step 3: stops every job still running (each goes back to the queue) and joins the
  // workers. Also works without steps 1 and 2.
  void stop();
  // This node lost its lease on the jobs it runs (several nodes): stops every one of
  // them without recording anything; another node runs them again.
  void stop_all_for_lost_lease();
  // New jobs were queued: an idle worker claims for every idle worker.
  void wake();
  // Jobs whose work is going on right now (a slot is free only once work stopped).
  int running() const { return running_.load(); }

 private:
  // One claim (see begin_claim). end_claim runs once for it, from the destructor at the
  // latest (also when the claim throws).
  struct ClaimEnd {
    Scheduler& s;
    std::vector<Job>& jobs;
    int wanted = 0;                // 0: no claim begun, or ended
    std::uint64_t generation = 0;  // generation_ when it began
    bool ok = false;               // the store answered
    ~ClaimEnd() { s.end_claim(*this); }
  };
  void worker_loop();
  bool may_claim() const;
  bool begin_claim(ClaimEnd& claim);
  void end_claim(ClaimEnd& claim);
  void run_job(Job job);
  void record_end(RunningJob& rj, const Job& job, Ending ending, bool want_retry);
  bool retry_later(RunningJob& rj, const Job& job, const std::string& error);
  void requeue_stopped(RunningJob& rj, const Job& job);
  // Sleeps `d` or until claiming stops (stop_claiming or stop), or with until_cancel
  // until stop() alone; false if that came first.
  bool pause(std::chrono::milliseconds d, bool until_cancel = false);

  jobs::Store& store_;
  Transitions& transitions_;
  jobs::Agent& agent_;
  LiveJobs& live_;
  TimerQueue& timers_;
  SchedulerOptions options_;

  std::mutex mu_;
  // Two condition variables: a wake-up for new work must reach an idle worker, never
  // one sleeping in pause() (which would swallow it).
  std::condition_variable work_cv_;   // idle workers: new work, or stop
  std::condition_variable pause_cv_;  // pause(): stop_claiming / stop
  std::uint64_t generation_ = 0;  // bumped by wake(): "there may be new work"
  // False once a claim found fewer jobs than it asked for, until the next wake-up or poll
  // (guarded by mu_).
  bool queue_may_have_jobs_ = true;
  std::chrono::steady_clock::time_point last_claim_{};  // when one ended (guarded by mu_)
  bool stopping_ = false;          // no more claims
  bool cancel_running_ = false;    // stop(): running jobs are stopped too
  std::condition_variable idle_cv_;  // a job ended (for wait_idle)
  std::mt19937_64 rng_;  // retry jitter (guarded by mu_)
  std::atomic<int> running_{0};
  int claiming_ = 0;  // claims in flight, 0 or 1 (guarded by mu_): a drain waits for them too
  int idle_ = 0;      // workers waiting for work (guarded by mu_)
  int reserved_ = 0;  // jobs the claims in flight may take (guarded by mu_)
  // Jobs one claim took for other idle workers (guarded by mu_). Counted as running from
  // their claim on, and taken before anything else, also while stopping.
  std::deque<Job> handoff_;
  std::vector<std::thread> workers_;
};

}  // namespace runq::jobs
