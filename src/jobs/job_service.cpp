#include "runq/jobs/job_service.hpp"

#include "live_jobs.hpp"
#include "scheduler.hpp"
#include "runq/jobs/timer_queue.hpp"
#include "runq/util/ids.hpp"
#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace runq::jobs {

namespace {
// How long cancel waits for a just-claimed job to show up among the running ones.
constexpr auto kClaimSettle = std::chrono::milliseconds(500);

// The live view wins over the store for what a running job is doing right now.
void overlay(Job& job, const RunningJob& rj) {
  job.status = rj.view.status;
  job.progress = rj.view.progress;
  job.agent_id = rj.view.agent_id;
  job.run_id = rj.view.run_id;
  job.error = rj.view.error;
  job.completed_at_us = rj.view.completed_at_us;
}
}  // namespace

struct JobService::State {
  State(store::Store& store, agents::Agent& agent, const ServiceOptions& o)
      : live(store, timers, o.on_job_end),
        scheduler(store, agent, live, timers,
                  SchedulerOptions{o.max_concurrent, o.retry_base_delay, o.retry_max_delay}) {}

  TimerQueue timers;
  LiveJobs live;
  Scheduler scheduler;

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

JobService::JobService(store::Store& store, agents::Agent& agent, ServiceOptions options)
    : store_(store),
      options_(options),
      state_(std::make_unique<State>(store, agent, options)) {}

JobService::~JobService() { stop(); }

void JobService::start() {
  int requeued = store_.requeue_running();
  if (requeued > 0)
    spdlog::warn("{} job(s) were running when the last process stopped; re-queued",
                 requeued);
  state_->started = true;
  state_->committer = std::thread([this] { commit_loop(); });
  state_->scheduler.start();
}

void JobService::stop() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return;
    state_->stopping = true;
  }
  state_->cv.notify_all();
  if (state_->committer.joinable()) state_->committer.join();  // commits what it holds
  state_->scheduler.stop();
  state_->live.release_all_waiters();
  state_->timers.stop();
}

void JobService::submit(Job job, std::function<void(SubmitOutcome)> done) {
  job.id = util::new_job_id();
  job.status = JobStatus::queued;
  job.created_at_us = util::now_us();
  if (job.timeout_s <= 0) job.timeout_s = options_.default_timeout_s;
  job.max_retries = std::clamp(job.max_retries, 0, options_.max_retries_cap);
  {
    std::lock_guard lock(state_->mu);
    if (!state_->stopping) {
      state_->pending.push_back({std::move(job), std::move(done)});
      state_->cv.notify_one();
      return;
    }
  }
  done(SubmitOutcome{SubmitOutcome::Kind::shutting_down, {}, {}});
}

// Takes every submit waiting (up to max_batch) and stores them in one transaction:
// under load many submits share one fsync.
void JobService::commit_loop() {
  std::vector<State::Pending> batch;
  std::vector<Job> jobs;
  for (;;) {
    batch.clear();
    jobs.clear();
    {
      std::unique_lock lock(state_->mu);
      state_->cv.wait(lock, [&] { return state_->stopping || !state_->pending.empty(); });
      if (state_->pending.empty()) return;  // stopping, and nothing left to commit
      while (!state_->pending.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(state_->pending.front()));
        state_->pending.pop_front();
      }
    }
    for (auto& p : batch) jobs.push_back(p.job);
    std::vector<store::InsertResult> results;
    std::string error;
    try {
      results = store_.insert(jobs);
    } catch (const std::exception& e) {
      error = e.what();
      spdlog::error("storing {} submitted job(s) failed: {}", batch.size(), error);
    }
    int inserted = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      SubmitOutcome out;
      if (!error.empty() || i >= results.size()) {
        out.kind = SubmitOutcome::Kind::store_error;
        out.error = error.empty() ? "store returned too few results" : error;
      } else {
        using O = store::InsertResult::Outcome;
        out.job = std::move(results[i].job);
        out.kind = results[i].outcome == O::inserted   ? SubmitOutcome::Kind::accepted
                   : results[i].outcome == O::replayed ? SubmitOutcome::Kind::replayed
                                                       : SubmitOutcome::Kind::conflict;
        if (out.kind == SubmitOutcome::Kind::accepted) ++inserted;
      }
      try {
        batch[i].done(std::move(out));
      } catch (const std::exception& e) {
        spdlog::error("submit callback threw: {}", e.what());
      }
    }
    if (inserted > 0) state_->scheduler.wake(inserted);
  }
}

std::optional<Job> JobService::status(const std::string& id) {
  if (auto rj = state_->live.find(id)) {
    std::lock_guard lock(rj->mu);
    // Once finalized the store holds the final state (and a delete may follow).
    if (!rj->finalized) return rj->view;
  }
  return store_.get_status(id);
}

std::optional<Job> JobService::get(const std::string& id) {
  auto job = store_.get(id);
  if (job) {
    if (auto rj = state_->live.find(id)) {
      std::lock_guard lock(rj->mu);
      if (!rj->finalized) overlay(*job, *rj);
    }
  }
  return job;
}

CancelOutcome JobService::cancel(const std::string& id) {
  auto deadline = std::chrono::steady_clock::now() + kClaimSettle;
  for (;;) {
    auto rj = state_->live.find(id);
    // Record `cancelled` first (so the answer is true at once and survives a crash),
    // then stop the work; the worker frees its slot when the work has stopped. A job
    // that was already finalized is answered from the store below.
    if (rj && state_->live.finalize(*rj, ending_cancelled(std::nullopt))) {
      rj->token.cancel(StopReason::cancelled);
      std::lock_guard lock(rj->mu);
      return {CancelOutcome::Kind::cancelled, rj->view};
    }
    if (store_.cancel_queued(id, util::now_us(), std::nullopt)) {
      state_->live.queued_job_cancelled(id, ending_cancelled(std::nullopt));
      auto job = store_.get_status(id);
      if (!job) return {CancelOutcome::Kind::not_found, {}};
      return {CancelOutcome::Kind::cancelled, *job};
    }
    auto job = store_.get_status(id);
    if (!job) return {CancelOutcome::Kind::not_found, {}};
    if (job->status == JobStatus::cancelled) return {CancelOutcome::Kind::cancelled, *job};
    if (is_terminal(job->status)) return {CancelOutcome::Kind::not_cancellable, *job};
    // Running but not (yet) among ours: just claimed, or another node runs it (or
    // ours is finishing right now).
    if (std::chrono::steady_clock::now() > deadline)
      return {CancelOutcome::Kind::not_cancellable, *job};
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

store::RemoveOutcome JobService::remove(const std::string& id) {
  return store_.remove(id);  // the store refuses a job that is not terminal there
}

store::ListPage JobService::list(const store::ListQuery& q) {
  auto page = store_.list(q);
  for (auto& job : page.jobs) {
    if (job.status != JobStatus::running) continue;
    if (auto rj = state_->live.find(job.id)) {
      std::lock_guard lock(rj->mu);
      if (!rj->finalized) overlay(job, *rj);
    }
  }
  return page;
}

store::StatusCounts JobService::counts(const std::optional<std::string>& owner) {
  return store_.count_by_status(owner);
}

HealthStats JobService::health() {
  HealthStats h;
  h.running_jobs = state_->scheduler.running();
  h.queued_jobs = store_.count_by_status(std::nullopt)[static_cast<int>(JobStatus::queued)];
  h.max_concurrent = options_.max_concurrent;
  h.default_timeout = options_.default_timeout_s;
  {
    std::lock_guard lock(state_->mu);
    h.shutdown = state_->stopping;
  }
  h.store_kind = store_.kind();
  return h;
}

void JobService::wait_terminal(const std::string& id, std::chrono::milliseconds max_wait,
                               std::function<void()> done) {
  bool stopping;
  {
    std::lock_guard lock(state_->mu);
    stopping = state_->stopping;
  }
  if (stopping) return done();  // answer now: the server is going away
  state_->live.wait_terminal(id, max_wait, std::move(done));
}

std::shared_ptr<EventLog> JobService::events(const std::string& id) {
  return state_->live.log_for_stream(id);
}

}  // namespace runq::jobs
