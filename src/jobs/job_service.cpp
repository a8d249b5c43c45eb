// JobService: start and the stop sequence, reads, cancel, delete, waiters and streams.
// (Submits: submit_commit.cpp; retention: retention.cpp.)
#include "service_state.hpp"

#include "runq/metrics/runq_metrics.hpp"
#include "runq/util/log.hpp"
#include "runq/util/time.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>

namespace runq::jobs {

namespace {
// How long cancel waits for a just-claimed job to show up among the running ones.
constexpr auto kClaimSettle = std::chrono::milliseconds(500);
// Several nodes: how long cancel waits for the node that runs the job to end it.
constexpr auto kRemoteCancelWait = std::chrono::seconds(2);

// The live view wins over the store for what a running job is doing right now.
void overlay(Job& job, const RunningJob& rj) {
  job.status = rj.view.status;
  job.progress = rj.view.progress;
  job.agent_id = rj.view.agent_id;
  job.run_id = rj.view.run_id;
  job.error = rj.view.error;
  job.completed_at_us = rj.view.completed_at_us;
}

// queued_add: moves the backpressure count of queued jobs.
SchedulerOptions scheduler_options(const ServiceOptions& o,
                                   std::function<void(std::int64_t)> queued_add,
                                   DrainRate& drain) {
  SchedulerOptions so;
  so.workers = o.max_concurrent;
  so.retry_base_delay = o.retry_base_delay;
  so.retry_max_delay = o.retry_max_delay;
  so.on_claimed = [queued_add, &drain] {
    queued_add(-1);
    drain.record();
  };
  so.on_requeued = [queued_add] { queued_add(1); };
  so.end_retry_first = o.end_retry_first;
  return so;
}
}  // namespace

JobService::State::State(jobs::Store& store, jobs::Agent& agent, const ServiceOptions& o)
    : transitions(store),
      feed(store.shared() ? std::make_unique<EventFeed>(store) : nullptr),
      live(store, transitions, timers, o.on_job_end, feed.get()),
      scheduler(store, transitions, agent, live, timers, scheduler_options(o, [this](std::int64_t d) { queued_add(d); }, drain)) {}

JobService::JobService(jobs::Store& store, jobs::Agent& agent, ServiceOptions options)
    : store_(store),
      options_(options),
      state_(std::make_unique<State>(store, agent, options)) {
  store_.on_lease_lost([this] { state_->scheduler.stop_all_for_lost_lease(); });
  if (store_.shared()) {
    store_.on_cluster_news(
        {[this](const std::vector<std::string>& ids) { state_->live.cluster_changed(ids); },
         [this](const std::string& id) { cancel_here(id); },
         [this](int) { state_->scheduler.wake(); }});
  }
}

JobService::~JobService() {
  stop();
  store_.on_lease_lost({});
  if (store_.shared()) store_.on_cluster_news({});
}

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
  if (!options_.node_name.empty())
    state_->queue_counter = std::thread([this] { queue_count_loop(); });
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
    std::lock_guard lock(state_->upkeep_mu);
    state_->upkeep_stopping = true;
  }
  state_->upkeep_cv.notify_all();
  if (state_->sweeper.joinable()) state_->sweeper.join();
  if (state_->queue_counter.joinable()) state_->queue_counter.join();
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
  if (state_->feed) state_->feed->stop();  // after the last job's events
  state_->timers.stop();
}

int JobService::running() const { return state_->scheduler.running(); }

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

std::optional<Job> JobService::cancel_here(const std::string& id) {
  auto rj = state_->live.find(id);
  // Record `cancelled` first (so the answer is true at once and survives a crash),
  // then stop the work; the worker frees its slot when the work has stopped.
  if (!rj || !state_->live.finalize(*rj, ending_cancelled(std::nullopt))) return std::nullopt;
  rj->token.cancel(StopReason::cancelled);
  util::log::event(spdlog::level::info, "job cancelled", {{"job_id", id}, {"was", "running"}});
  std::lock_guard lock(rj->mu);
  return rj->view;
}

CancelOutcome JobService::cancel(const std::string& id) {
  auto deadline = std::chrono::steady_clock::now() + kClaimSettle;
  bool asked = false;  // another node was asked to cancel it
  for (;;) {
    // A job that was already finalized here is answered from the store below.
    if (auto view = cancel_here(id)) return {CancelOutcome::Kind::cancelled, *view};
    if (state_->live.cancel_queued(id, ending_cancelled(std::nullopt))) {
      state_->queued_add(-1);
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
    // ours is finishing right now). Several nodes: ask the node that runs it, and wait
    // for the end it records. One that does not answer (frozen, cut off) has its jobs
    // rescued once its lease runs out, and the rescue honours the cancel: the answer is
    // then the job as it stands.
    if (store_.shared() && !asked && job->status == JobStatus::running) {
      asked = store_.request_cancel(id);
      if (asked) deadline = std::chrono::steady_clock::now() + kRemoteCancelWait;
    }
    if (std::chrono::steady_clock::now() > deadline)
      return {asked ? CancelOutcome::Kind::cancelled : CancelOutcome::Kind::not_cancellable,
              *job};
    std::this_thread::sleep_for(std::chrono::milliseconds(asked ? 10 : 2));
  }
}

jobs::RemoveOutcome JobService::remove(const std::string& id) {
  auto out = store_.remove(id);  // the store refuses a job that is not terminal there
  if (out == jobs::RemoveOutcome::removed) {
    state_->removals.fetch_add(1);
    state_->live.touch(id);  // streams of it on other nodes end
  }
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
  // Kept in memory: /health costs no COUNT(*). (Several nodes: this node's claims of
  // other nodes' jobs can take it below 0 until the next count.)
  h.queued_jobs = std::max<std::int64_t>(0, state_->queued.load());
  h.max_concurrent = options_.max_concurrent;
  h.default_timeout = options_.default_timeout_s;
  {
    std::lock_guard lock(state_->mu);
    h.shutdown = state_->stopping;
  }
  h.store_kind = store_.kind();
  h.node_name = options_.node_name;
  h.store_fault = store_.write_fault();
  return h;
}

std::int64_t JobService::queued_count() const { return state_->queued.load(); }

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
