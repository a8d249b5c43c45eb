#include "runq/jobs/job_service.hpp"

#include "live_jobs.hpp"
#include "scheduler.hpp"
#include "transitions.hpp"
#include "runq/jobs/drain_rate.hpp"
#include "runq/jobs/timer_queue.hpp"
#include "runq/metrics/runq_metrics.hpp"
#include "runq/util/log.hpp"
#include "runq/util/ids.hpp"
#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace runq::jobs {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

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

// How often the retention sweep looks: retention/10, within [100 ms, 60 s].
std::chrono::milliseconds sweep_interval(std::int64_t retention_s) {
  return std::chrono::milliseconds(
      std::clamp<std::int64_t>(retention_s * 100, 100, 60'000));
}

SchedulerOptions scheduler_options(const ServiceOptions& o, std::atomic<std::int64_t>& queued,
                                   DrainRate& drain) {
  SchedulerOptions so;
  so.workers = o.max_concurrent;
  so.retry_base_delay = o.retry_base_delay;
  so.retry_max_delay = o.retry_max_delay;
  so.on_claimed = [&queued, &drain] {
    queued.fetch_sub(1);
    drain.record();
  };
  so.on_requeued = [&queued] { queued.fetch_add(1); };
  so.end_retry_first = o.end_retry_first;
  return so;
}
}  // namespace

struct JobService::State {
  State(jobs::Store& store, jobs::Agent& agent, const ServiceOptions& o)
      : transitions(store),
        live(store, transitions, timers, o.on_job_end),
        scheduler(store, transitions, agent, live, timers, scheduler_options(o, queued, drain)) {}

  // Backpressure bookkeeping (declared before the scheduler, which updates them).
  std::atomic<std::int64_t> queued{0};
  DrainRate drain;

  Transitions transitions;  // every status change of a job goes through it
  TimerQueue timers;
  LiveJobs live;
  Scheduler scheduler;

  std::atomic<std::uint64_t> removals{0};  // see removals()

  // Retention sweep.
  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool sweep_stopping = false;
  std::thread sweeper;

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

JobService::JobService(jobs::Store& store, jobs::Agent& agent, ServiceOptions options)
    : store_(store),
      options_(options),
      state_(std::make_unique<State>(store, agent, options)) {}

JobService::~JobService() { stop(); }

void JobService::start() {
  jobs::RequeueCounts rq = store_.requeue_running(options_.max_attempts);
  if (rq.requeued > 0)
    spdlog::warn("{} job(s) were running when the last process stopped; re-queued",
                 rq.requeued);
  if (rq.failed > 0) {
    for (int i = 0; i < rq.failed; ++i)
      metrics::runq().job_finished(metrics::JobOutcome::failed, -1);
    spdlog::warn("{} job(s) were running when the last process stopped and had been "
                 "interrupted {} time(s) or more; failed them",
                 rq.failed, options_.max_attempts);
  }
  state_->queued.store(
      store_.count_by_status(std::nullopt)[static_cast<int>(JobStatus::queued)]);
  state_->started = true;
  state_->committer = std::thread([this] { commit_loop(); });
  state_->scheduler.start();
  if (options_.retention_s > 0) state_->sweeper = std::thread([this] { sweep_loop(); });
  // Jobs failed just now have webhooks due.
  if (rq.failed > 0 && options_.on_job_end) options_.on_job_end("");
}

void JobService::begin_stop() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return;
    state_->stopping = true;
    // First of all: a worker finishing a job while the joins below wait must not
    // start another. (Inside the lock: whoever sees `stopping` sees no more claims.)
    state_->scheduler.stop_claiming();
  }
  state_->cv.notify_all();
  {
    std::lock_guard lock(state_->sweep_mu);
    state_->sweep_stopping = true;
  }
  state_->sweep_cv.notify_all();
  if (state_->sweeper.joinable()) state_->sweeper.join();
  if (state_->committer.joinable()) state_->committer.join();  // commits what it holds
  state_->live.release_all_waiters();
}

bool JobService::drain(std::chrono::milliseconds timeout) {
  return state_->scheduler.wait_idle(std::chrono::steady_clock::now() + timeout);
}

void JobService::stop() {
  begin_stop();
  state_->scheduler.stop();
  state_->live.release_all_waiters();  // any that came while jobs were draining
  state_->timers.stop();
}

int JobService::running() const { return state_->scheduler.running(); }

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
  std::vector<std::pair<std::string, int>> accepted;  // id, priority: logged after the 202s
  for (;;) {
    batch.clear();
    jobs.clear();
    accepted.clear();
    {
      std::unique_lock lock(state_->mu);
      state_->cv.wait(lock, [&] { return state_->stopping || !state_->pending.empty(); });
      if (state_->pending.empty()) return;  // stopping, and nothing left to commit
      while (!state_->pending.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(state_->pending.front()));
        state_->pending.pop_front();
      }
    }
    // Backpressure: the store inserts new jobs while they fit under max_queued and
    // refuses the rest; replays and conflicts store nothing, so they are answered even
    // when the queue is full. (Checked against the in-memory count: no COUNT(*).)
    const std::int64_t queued_before = state_->queued.load();
    const std::int64_t room = options_.max_queued > 0
                                  ? std::max<std::int64_t>(0, options_.max_queued - queued_before)
                                  : jobs::kUnlimited;
    for (const auto& p : batch) jobs.push_back(p.job);
    std::vector<jobs::InsertResult> results;
    std::string error;
    bool unavailable = false;
    const bool any_key = std::any_of(jobs.begin(), jobs.end(),
                                     [](const Job& j) { return j.idempotency_key.has_value(); });
    try {
      if (room > 0 || any_key) {
        const auto t0 = std::chrono::steady_clock::now();
        results = store_.insert(jobs, room);
        metrics::runq().store_op(metrics::StoreOp::insert_batch, seconds_since(t0));
        metrics::runq().commit_batch(jobs.size());
      } else {  // full, and nothing to look up: no transaction at all
        for (const Job& j : jobs) results.push_back({jobs::InsertResult::Outcome::refused, j});
      }
    } catch (const jobs::StoreUnavailable& e) {
      // Disk full, read-only: refused with 503; the next batch simply tries again.
      error = e.detail();
      unavailable = true;
      spdlog::warn("refused {} submit(s): {}", jobs.size(), e.what());
    } catch (const std::exception& e) {
      error = e.what();
      spdlog::error("storing {} submitted job(s) failed: {}", jobs.size(), error);
    }
    using O = jobs::InsertResult::Outcome;
    int inserted = 0;
    std::size_t refused = 0;
    if (error.empty()) {
      for (const auto& r : results) {
        if (r.outcome == O::inserted) ++inserted;
        if (r.outcome == O::refused) ++refused;
      }
    }
    if (inserted > 0) {
      state_->queued.fetch_add(inserted);
      metrics::runq().job_submitted(static_cast<std::uint64_t>(inserted));
    }
    int full_after = 0;
    const std::int64_t queued_now = std::max(queued_before + inserted, state_->queued.load());
    if (refused > 0) {
      full_after = state_->drain.retry_after_s(queued_now - options_.max_queued + 1);
      spdlog::warn("queue full ({} jobs queued, --max-queued {}): refused {} submit(s)",
                   queued_now, options_.max_queued, refused);
    }
    // Workers first: a client that polls right after its 202 finds the job claimed sooner.
    if (inserted > 0) state_->scheduler.wake(inserted);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      SubmitOutcome out;
      if (unavailable) {
        out.kind = SubmitOutcome::Kind::store_unavailable;
        out.error = error;
      } else if (!error.empty() || i >= results.size()) {
        out.kind = SubmitOutcome::Kind::store_error;
        out.error = error.empty() ? "store returned too few results" : error;
      } else if (results[i].outcome == O::refused) {
        out.kind = SubmitOutcome::Kind::queue_full;
        out.queued_jobs = std::max(queued_now, options_.max_queued);
        out.retry_after_s = full_after;
      } else {
        out.job = std::move(results[i].job);
        out.kind = results[i].outcome == O::inserted   ? SubmitOutcome::Kind::accepted
                   : results[i].outcome == O::replayed ? SubmitOutcome::Kind::replayed
                                                       : SubmitOutcome::Kind::conflict;
        if (out.kind == SubmitOutcome::Kind::accepted)
          accepted.emplace_back(out.job.id, out.job.priority);
      }
      try {
        batch[i].done(std::move(out));
      } catch (const std::exception& e) {
        spdlog::error("submit callback threw: {}", e.what());
      }
    }
    for (const auto& [id, priority] : accepted)
      util::log::event(spdlog::level::info, "job submitted",
                       {{"job_id", id}, {"priority", priority}});
  }
}

std::optional<Job> JobService::status(const std::string& id) {
  if (auto rj = state_->live.find(id)) {
    std::lock_guard lock(rj->mu);
    // Once finalized the store holds the final state (and a delete may follow).
    if (rj->current()) return rj->view;
  }
  return store_.get_status(id);
}

std::optional<Job> JobService::get(const std::string& id) {
  auto job = store_.get(id);
  if (job) {
    if (auto rj = state_->live.find(id)) {
      std::lock_guard lock(rj->mu);
      if (rj->current()) overlay(*job, *rj);
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
      util::log::event(spdlog::level::info, "job cancelled",
                       {{"job_id", id}, {"was", "running"}});
      std::lock_guard lock(rj->mu);
      return {CancelOutcome::Kind::cancelled, rj->view};
    }
    if (state_->live.cancel_queued(id, ending_cancelled(std::nullopt))) {
      state_->queued.fetch_sub(1);
      metrics::runq().job_finished(metrics::JobOutcome::cancelled, -1);
      util::log::event(spdlog::level::info, "job cancelled", {{"job_id", id}, {"was", "queued"}});
      util::log::event(spdlog::level::info, "job finished",
                       {{"job_id", id}, {"status", "cancelled"}, {"attempts", 0}});
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

jobs::RemoveOutcome JobService::remove(const std::string& id) {
  auto out = store_.remove(id);  // the store refuses a job that is not terminal there
  if (out == jobs::RemoveOutcome::removed) state_->removals.fetch_add(1);
  return out;
}

std::uint64_t JobService::removals() const { return state_->removals.load(); }

jobs::ListPage JobService::list(const jobs::ListQuery& q) {
  auto page = store_.list(q);
  for (auto& job : page.jobs) {
    if (job.status != JobStatus::running) continue;
    if (auto rj = state_->live.find(job.id)) {
      std::lock_guard lock(rj->mu);
      if (rj->current()) overlay(job, *rj);
    }
  }
  return page;
}

jobs::StatusCounts JobService::counts(const std::optional<std::string>& owner) {
  return store_.count_by_status(owner);
}

HealthStats JobService::health() {
  HealthStats h;
  h.running_jobs = state_->scheduler.running();
  h.queued_jobs = state_->queued.load();  // kept in memory: /health costs no COUNT(*)
  h.max_concurrent = options_.max_concurrent;
  h.default_timeout = options_.default_timeout_s;
  {
    std::lock_guard lock(state_->mu);
    h.shutdown = state_->stopping;
  }
  h.store_kind = store_.kind();
  h.store_fault = store_.write_fault();
  return h;
}

std::int64_t JobService::queued_count() const { return state_->queued.load(); }

std::int64_t JobService::sweep_expired() {
  if (options_.retention_s <= 0) return 0;
  const std::int64_t cutoff = util::now_us() - options_.retention_s * 1'000'000;
  const int batch = std::max(1, options_.retention_batch);
  std::int64_t total = 0;
  for (;;) {
    int n = store_.delete_finished_before(cutoff, batch);
    if (n > 0) state_->removals.fetch_add(1);
    total += n;
    if (n < batch) break;
    // More to do: let submits and claims have the write lock for a moment.
    std::unique_lock lock(state_->sweep_mu);
    if (state_->sweep_cv.wait_for(lock, options_.retention_pause,
                                  [&] { return state_->sweep_stopping; }))
      break;
  }
  return total;
}

void JobService::sweep_loop() {
  const auto interval = sweep_interval(options_.retention_s);
  for (;;) {
    {
      std::unique_lock lock(state_->sweep_mu);
      if (state_->sweep_cv.wait_for(lock, interval, [&] { return state_->sweep_stopping; }))
        return;
    }
    try {
      if (std::int64_t n = sweep_expired(); n > 0)
        spdlog::info("retention: deleted {} job(s) finished more than {} s ago", n,
                     options_.retention_s);
    } catch (const jobs::StoreUnavailable& e) {
      // Logged by the store when the fault began; the next pass tries again.
      spdlog::debug("retention sweep: {}", e.what());
    } catch (const std::exception& e) {
      spdlog::error("retention sweep failed: {}", e.what());
    }
  }
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
