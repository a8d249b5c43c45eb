#pragma once
// Private to jobs/: what a JobService holds. Its methods are defined by theme:
// job_service.cpp (start, stop, reads, cancel), submit_commit.cpp (the group commit of
// submits), retention.cpp (the sweep of finished jobs and the count of the queue).
#include "live_jobs.hpp"
#include "scheduler.hpp"
#include "transitions.hpp"
#include "runq/jobs/drain_rate.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/jobs/timer_queue.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace runq::jobs {

struct JobService::State {
  State(jobs::Store& store, jobs::Agent& agent, const ServiceOptions& o);

  // Backpressure bookkeeping (declared before the scheduler, which updates them).
  // `queued` moves with this node's submits, claims, cancels and retries (queued_add);
  // queued_moves counts those moves, so that a recount from a store shared by several
  // nodes that raced with one is not taken (retention.cpp).
  std::atomic<std::int64_t> queued{0};
  std::atomic<std::uint64_t> queued_moves{0};
  void queued_add(std::int64_t d) {
    queued.fetch_add(d);
    queued_moves.fetch_add(1);
  }
  DrainRate drain;

  Transitions transitions;  // every status change of a job goes through it
  TimerQueue timers;
  // Several nodes: the events of the jobs run here, for the other nodes (else null).
  std::unique_ptr<EventFeed> feed;
  LiveJobs live;
  Scheduler scheduler;

  std::atomic<std::uint64_t> removals{0};  // see removals()

  // Upkeep threads: the retention sweep and, with several nodes, the queue count.
  std::mutex upkeep_mu;
  std::condition_variable upkeep_cv;
  bool upkeep_stopping = false;
  std::thread sweeper;
  std::thread queue_counter;

  // Submits waiting for the committer (group commit).
  struct Pending {
    Job job;
    std::function<void(SubmitOutcome)> done;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> pending;
  bool stopping = false;
  bool started = false;
  std::thread committer;
};

}  // namespace runq::jobs
