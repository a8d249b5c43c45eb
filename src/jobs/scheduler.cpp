#include "scheduler.hpp"

#include "runq/metrics/runq_metrics.hpp"
#include "runq/jobs/store_error.hpp"
#include "runq/util/log.hpp"
#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace runq::jobs {

namespace {
// Idle workers look at the store this often even without a wake-up, so work queued
// by another process (or a missed wake-up) is never stranded. One look serves them all
// (a claim takes jobs for every idle worker): a worker whose wait times out looks only
// if no claim ended within this time.
constexpr auto kIdlePoll = std::chrono::seconds(1);
// How long a worker backs off after the store failed to hand out work, and how often
// idle workers look whether a store that could not be written can be again.
constexpr auto kStoreErrorBackoff = std::chrono::milliseconds(1000);
// Recording a job's end while the store cannot be written (disk full, read-only): tried
// again after this, doubling up to the max, until it succeeds or the server stops.
// (The first pause is SchedulerOptions::end_retry_first.) Other errors (e.g. SQLITE_BUSY)
// are retried the same way: giving up would leave the job `running` for good.
constexpr auto kEndRetryMax = std::chrono::milliseconds(5000);

// Forwards an agent's progress to the live view and the event log.
class Sink : public jobs::ProgressSink {
 public:
  Sink(LiveJobs& live, RunningJob& rj) : live_(live), rj_(rj) {}
  void progress(double percentage, std::optional<std::string> step, int steps_completed,
                std::optional<int> steps_total) override {
    live_.progress(rj_, percentage, std::move(step), steps_completed, steps_total);
  }
  void output(std::string_view delta) override { live_.output(rj_, delta); }

 private:
  LiveJobs& live_;
  RunningJob& rj_;
};
}  // namespace

Scheduler::Scheduler(jobs::Store& store, Transitions& transitions, jobs::Agent& agent,
                     LiveJobs& live, TimerQueue& timers, SchedulerOptions options)
    : store_(store),
      transitions_(transitions),
      agent_(agent),
      live_(live),
      timers_(timers),
      options_(options),
      rng_(std::random_device{}()) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void Scheduler::stop_claiming() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  pause_cv_.notify_all();
}

bool Scheduler::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_until(lock, deadline,
                             [&] { return running_.load() == 0 && claiming_ == 0; });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    if (cancel_running_ && workers_.empty()) return;
    stopping_ = true;
    cancel_running_ = true;
  }
  work_cv_.notify_all();
  pause_cv_.notify_all();
  for (auto& rj : live_.all()) rj->token.cancel(StopReason::shutdown);
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Scheduler::stop_all_for_lost_lease() {
  {
    // Claimed but not started: not ours any more either.
    std::lock_guard lock(mu_);
    running_.fetch_sub(static_cast<int>(handoff_.size()));
    handoff_.clear();
  }
  idle_cv_.notify_all();
  const auto running = live_.all();
  if (!running.empty())
    spdlog::warn("this node lost its lease: stopping its {} running job(s); other nodes "
                 "run them again",
                 running.size());
  for (auto& rj : running) rj->token.cancel(StopReason::lease_lost);
}

void Scheduler::wake() {
  bool notify = false;
  {
    std::lock_guard lock(mu_);
    ++generation_;
    queue_may_have_jobs_ = true;
    notify = claiming_ == 0 && idle_ > 0;
  }
  // One idle worker claims for all of them; a claim in flight wakes the next claimer.
  if (notify) work_cv_.notify_one();
}

void Scheduler::worker_loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (!handoff_.empty()) {  // claimed for this worker by another
        Job job = std::move(handoff_.front());
        handoff_.pop_front();
        lock.unlock();
        run_job(std::move(job));
        continue;
      }
      if (stopping_) return;
    }
    if (store_.write_fault()) {
      // The store cannot be written (disk full, read-only): start nothing new, whose end
      // could not be recorded either. Look again shortly; the probe write is how the
      // server notices, by itself, that the fault has cleared.
      if (!pause(kStoreErrorBackoff)) continue;
      try {
        store_.probe_write();
      } catch (const std::exception& e) {
        spdlog::debug("store probe failed: {}", e.what());
        continue;
      }
    }
    std::vector<Job> jobs;
    ClaimEnd claim_end{*this, jobs};
    if (!begin_claim(claim_end)) {
      // Another worker's claim is in flight (it takes a job for this one too, or the
      // next claim does), the last claim found nothing queued, or every slot is taken:
      // idle until that changes. The poll looks at the store even without a wake-up.
      std::unique_lock lock(mu_);
      ++idle_;
      const bool woken = work_cv_.wait_for(lock, kIdlePoll, [&] {
        return stopping_ || !handoff_.empty() || may_claim();
      });
      --idle_;
      if (!woken && std::chrono::steady_clock::now() - last_claim_ >= kIdlePoll)
        queue_may_have_jobs_ = true;
      continue;
    }
    try {
      const auto t0 = std::chrono::steady_clock::now();
      jobs = store_.claim_many(util::now_us(), claim_end.wanted);
      claim_end.ok = true;
      // Claims that hand out work: the latency a queued job sees (idle polls are not it).
      if (!jobs.empty())
        metrics::runq().store_op(
            metrics::StoreOp::claim,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } catch (const jobs::StoreUnavailable& e) {
      end_claim(claim_end);
      spdlog::debug("claiming a job failed: {}", e.what());  // the store logged the fault
      pause(kStoreErrorBackoff);
      continue;
    } catch (const std::exception& e) {
      end_claim(claim_end);
      spdlog::error("claiming a job failed: {}", e.what());
      pause(kStoreErrorBackoff);
      continue;
    }
    end_claim(claim_end);  // hands the other jobs to idle workers
    if (!jobs.empty()) run_job(std::move(jobs.front()));
  }
}

// Under mu_: a claim may start (none in flight, the queue may have jobs, a slot is free).
bool Scheduler::may_claim() const {
  return claiming_ == 0 && queue_may_have_jobs_ &&
         options_.workers - running_.load() - reserved_ > 0;
}

// One claim at a time, for this worker and every idle one: with SQLite one statement,
// with several nodes one round trip, for as many jobs as there are idle workers and free
// slots (never more jobs claimed than workers). A worker that finds a claim in flight
// waits for it as idle: it gets a job from it, or makes the next claim.
// A claim in flight counts for wait_idle from before it starts, and its jobs run: a job
// the store shows running is never handed back unrun. Checked and counted under one lock,
// so once stop_claiming() has returned no new claim starts and every claim that did is
// waited for by a drain. False: no claim (stopping, or see may_claim).
bool Scheduler::begin_claim(ClaimEnd& claim) {
  std::lock_guard lock(mu_);
  if (stopping_ || !may_claim()) return false;
  claim.wanted = std::min(1 + idle_, options_.workers - running_.load() - reserved_);
  claim.generation = generation_;
  ++claiming_;
  reserved_ += claim.wanted;
  return true;
}

// Counts the claimed jobs as running, keeps the first for the claiming worker and hands
// the others to idle workers; wakes one more worker to claim if some stay idle. Once per
// begun claim (also when it threw: then nothing was claimed).
void Scheduler::end_claim(ClaimEnd& claim) {
  if (claim.wanted == 0) return;
  std::vector<Job>& jobs = claim.jobs;
  if (options_.on_claimed)
    for (std::size_t i = 0; i < jobs.size(); ++i) options_.on_claimed();
  const std::size_t handed = jobs.empty() ? 0 : jobs.size() - 1;
  bool next_claim = false;
  {
    std::lock_guard lock(mu_);
    --claiming_;
    reserved_ -= claim.wanted;
    last_claim_ = std::chrono::steady_clock::now();
    running_.fetch_add(static_cast<int>(jobs.size()));
    // Fewer than asked: the queue is empty, unless a wake-up came during the claim.
    if (claim.ok && static_cast<int>(jobs.size()) < claim.wanted &&
        generation_ == claim.generation)
      queue_may_have_jobs_ = false;
    for (std::size_t i = 1; i < jobs.size(); ++i) handoff_.push_back(std::move(jobs[i]));
    next_claim = idle_ > static_cast<int>(handed) && may_claim();
  }
  if (!jobs.empty()) jobs.erase(jobs.begin() + 1, jobs.end());
  claim.wanted = 0;
  for (std::size_t i = 0; i < handed; ++i) work_cv_.notify_one();
  if (next_claim) work_cv_.notify_one();
  if (jobs.empty()) idle_cv_.notify_all();  // wait_idle may be done
}

// Runs a job that end_claim counted as running.
void Scheduler::run_job(Job job) {
  job.agent_id = agent_.id();
  auto rj = live_.add_running(job);
  {
    std::lock_guard lock(rj->mu);
    rj->view.agent_id = job.agent_id;
  }
  const double waited_s =
      static_cast<double>(job.started_at_us.value_or(job.created_at_us) - job.created_at_us) / 1e6;
  metrics::runq().job_started(job.attempts == 1, waited_s);
  util::log::event(spdlog::level::info, "job started",
                   {{"job_id", job.id}, {"attempt", job.attempts}, {"queue_wait_s", waited_s}});

  auto timer = timers_.schedule(std::chrono::seconds(job.timeout_s),
                                [rj] { rj->token.cancel(StopReason::timed_out); });
  {
    std::lock_guard lock(mu_);
    if (cancel_running_) rj->token.cancel(StopReason::shutdown);  // stop() may have missed it
  }

  Sink sink(live_, *rj);
  jobs::AgentResult result;
  try {
    result = agent_.run(job, rj->token, sink);
  } catch (const std::exception& e) {
    result = jobs::AgentResult{false, {}, std::string("Agent error: ") + e.what(), {}};
  }
  timers_.cancel(timer);
  if (result.run_id) {
    std::lock_guard lock(rj->mu);
    rj->view.run_id = result.run_id;
  }

  if (result.ok) {
    std::lock_guard lock(rj->mu);
    rj->view.metrics = result.metrics;
  }

  // The work is done: an ok result wins over a timeout or a shutdown that came too late
  // to stop it. Only a user's cancel wins over it (recorded by the cancel request).
  std::optional<Ending> ending;
  const StopReason why = rj->token.reason();
  if (why == StopReason::cancelled)
    ending = ending_cancelled(std::nullopt);
  else if (why == StopReason::lease_lost)  // not ours any more: nothing can be recorded
    spdlog::warn("job {}: stopped, this node lost its lease (attempt {} is given up here)",
                 job.id, job.attempts);
  else if (result.ok)
    ending = ending_succeeded(result.output);
  else if (why == StopReason::timed_out)
    ending = ending_failed("Job timed out after " + std::to_string(job.timeout_s) + "s");
  else if (why == StopReason::shutdown)
    requeue_stopped(*rj, job);
  else
    ending = ending_failed(result.error);
  if (ending) {
    ending->completed_at_us = util::now_us();
    const bool want_retry =
        ending->status == JobStatus::failed && job.attempts <= job.max_retries;
    record_end(*rj, job, std::move(*ending), want_retry);
  }
  live_.remove(job.id, rj.get());
  {
    std::lock_guard lock(mu_);
    running_.fetch_sub(1);
  }
  idle_cv_.notify_all();
}

// A job stopped by shutdown goes back to the queue now, so the next start runs it as
// a queued job (not as one a crash interrupted, which --max-attempts counts). If the
// store cannot be written it stays `running`, and the next start re-queues it.
void Scheduler::requeue_stopped(RunningJob& rj, const Job& job) {
  std::lock_guard lock(rj.mu);
  if (!rj.current()) return;  // cancelled meanwhile
  try {
    if (transitions_.requeue(rj.view, util::now_us())) {
      if (options_.on_requeued) options_.on_requeued();
      rj.requeued = true;
      spdlog::info("job {}: stopped by shutdown; re-queued, it runs again after restart",
                   job.id);
      return;
    }
  } catch (const std::exception& e) {
    spdlog::error("job {}: could not re-queue it at shutdown: {}", job.id, e.what());
  }
  spdlog::info("job {}: stopped by shutdown; it runs again after restart", job.id);
}

bool Scheduler::pause(std::chrono::milliseconds d, bool until_cancel) {
  std::unique_lock lock(mu_);
  return !pause_cv_.wait_for(lock, d, [&] { return until_cancel ? cancel_running_ : stopping_; });
}

// Records how a job ended: back to the queue for a retry (want_retry), else its terminal
// state. While the store cannot be written (disk full, read-only file system) nothing is
// lost: the ending is kept here, readers still see the job running (live view), and the
// write is tried again with a growing pause until it succeeds. Only if the server stops
// first is it given up — then the job is still `running` in the store and runs again
// after the restart, like any job interrupted by a stop.
void Scheduler::record_end(RunningJob& rj, const Job& job, Ending ending, bool want_retry) {
  auto backoff = options_.end_retry_first;
  for (int attempt = 1;; ++attempt) {
    try {
      if (want_retry) {
        if (retry_later(rj, job, *ending.error)) return;
        want_retry = false;  // cancelled meanwhile, or not running in the store: it ends
      }
      if (live_.finalize(rj, ending)) {  // false: a cancel recorded the end first
        if (attempt > 1)
          spdlog::info("job {}: its end ({}) is stored now, after {} tries", job.id,
                       to_string(ending.status), attempt);
      }
      return;
    } catch (const jobs::StoreUnavailable& e) {
      if (attempt == 1)
        spdlog::warn("job {}: cannot store its end ({}) now: {}; keeping it and trying "
                     "again until the store can be written",
                     job.id, to_string(ending.status), e.what());
    } catch (const std::exception& e) {
      spdlog::error("job {}: recording its end failed (try {}): {}; trying again", job.id,
                    attempt, e.what());
    }
    if (!pause(backoff, /*until_cancel=*/true)) {  // a drain keeps trying; stop() ends it
      spdlog::warn("job {}: the server stops before its end could be stored; it is left "
                   "running in the store and runs again after the restart",
                   job.id);
      return;
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kEndRetryMax);
  }
}

// A failed attempt of a job with retries left goes back to the queue after an
// exponential backoff with jitter. False if it could not (then the failure stands).
bool Scheduler::retry_later(RunningJob& rj, const Job& job, const std::string& error) {
  auto base = options_.retry_base_delay;
  auto delay = base * (std::int64_t{1} << std::min(job.attempts - 1, 20));
  delay = std::min<std::chrono::milliseconds>(delay, options_.retry_max_delay);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  {
    std::lock_guard lock(mu_);
    delay = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(delay.count()) * jitter(rng_)));
  }
  std::int64_t not_before = util::now_us() + delay.count() * 1000;
  {
    std::lock_guard lock(rj.mu);
    if (rj.finalized) return false;  // cancelled meanwhile
    try {
      if (!transitions_.requeue(rj.view, not_before)) return false;
    } catch (const jobs::StoreUnavailable&) {
      throw;  // the caller keeps the job and tries again
    } catch (const std::exception& e) {
      spdlog::error("job {}: could not re-queue it for a retry: {}", job.id, e.what());
      return false;
    }
    if (options_.on_requeued) options_.on_requeued();
    rj.requeued = true;  // a cancel from now on finds the job in the queue
    live_.retrying(rj, error, delay);
  }
  metrics::runq().job_retried();
  util::log::event(spdlog::level::info, "job retrying",
                   {{"job_id", job.id},
                    {"attempt", job.attempts},
                    {"max_attempts", job.max_retries + 1},
                    {"delay_ms", static_cast<std::int64_t>(delay.count())},
                    {"error", error}});
  timers_.schedule(delay, [this] { wake(); });
  return true;
}

}  // namespace runq::jobs
