#include "scheduler.hpp"

#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace runq::jobs {

namespace {
// Idle workers look at the store this often even without a wake-up, so work queued
// by another process (or a missed wake-up) is never stranded.
constexpr auto kIdlePoll = std::chrono::seconds(1);
// How long a worker backs off after the store failed to hand out work.
constexpr auto kStoreErrorBackoff = std::chrono::seconds(1);
// How often a worker retries recording a job's end when the store fails.
constexpr int kFinishAttempts = 5;

// Forwards an agent's progress to the live view and the event log.
class Sink : public agents::ProgressSink {
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

Scheduler::Scheduler(store::Store& store, agents::Agent& agent, LiveJobs& live,
                     TimerQueue& timers, SchedulerOptions options)
    : store_(store),
      agent_(agent),
      live_(live),
      timers_(timers),
      options_(options),
      rng_(std::random_device{}()) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& rj : live_.all()) rj->token.cancel(StopReason::shutdown);
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Scheduler::wake(int n) {
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  if (n >= options_.workers)
    cv_.notify_all();
  else
    for (int i = 0; i < n; ++i) cv_.notify_one();
}

void Scheduler::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
      seen = generation_;
    }
    std::optional<Job> job;
    try {
      job = store_.claim_next(util::now_us());
    } catch (const std::exception& e) {
      spdlog::error("claiming a job failed: {}", e.what());
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kStoreErrorBackoff, [&] { return stopping_; });
      continue;
    }
    if (job) {
      if (options_.on_claimed) options_.on_claimed();
      run_job(std::move(*job));
      continue;
    }
    // Nothing queued: sleep until a wake-up newer than our last look (or the poll).
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kIdlePoll, [&] { return stopping_ || generation_ != seen; });
  }
}

void Scheduler::run_job(Job job) {
  running_.fetch_add(1);
  job.agent_id = agent_.id();
  auto rj = live_.add_running(job);
  {
    std::lock_guard lock(rj->mu);
    rj->view.agent_id = job.agent_id;
  }
  spdlog::debug("job {}: running (attempt {})", job.id, job.attempts);

  auto timer = timers_.schedule(std::chrono::seconds(job.timeout_s),
                                [rj] { rj->token.cancel(StopReason::timed_out); });
  {
    std::lock_guard lock(mu_);
    if (stopping_) rj->token.cancel(StopReason::shutdown);  // stop() may have missed it
  }

  Sink sink(live_, *rj);
  agents::AgentResult result;
  try {
    result = agent_.run(job, rj->token, sink);
  } catch (const std::exception& e) {
    result = agents::AgentResult{false, {}, std::string("Agent error: ") + e.what(), {}};
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

  std::optional<Ending> ending;
  switch (rj->token.reason()) {
    case StopReason::cancelled:  // the cancel request has recorded it already
      ending = ending_cancelled(std::nullopt);
      break;
    case StopReason::timed_out:
      ending = ending_failed("Job timed out after " + std::to_string(job.timeout_s) + "s");
      break;
    case StopReason::shutdown:  // left `running`: re-queued on the next start
      spdlog::info("job {}: stopped by shutdown; it runs again after restart", job.id);
      break;
    case StopReason::none:
      ending = result.ok ? ending_succeeded(result.output) : ending_failed(result.error);
      break;
  }
  if (ending && ending->status == JobStatus::failed && job.attempts <= job.max_retries &&
      retry_later(*rj, job, *ending->error)) {
    ending.reset();
  }
  for (int i = 0; ending && i < kFinishAttempts; ++i) {
    try {
      live_.finalize(*rj, *ending);
      spdlog::debug("job {}: {}", job.id, to_string(ending->status));
      break;
    } catch (const std::exception& e) {
      spdlog::error("job {}: recording its end failed (try {}): {}", job.id, i + 1,
                    e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << i));
    }
  }
  live_.remove(job.id, rj.get());
  running_.fetch_sub(1);
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
      if (!store_.requeue_for_retry(job.id, not_before)) return false;
    } catch (const std::exception& e) {
      spdlog::error("job {}: could not re-queue it for a retry: {}", job.id, e.what());
      return false;
    }
    if (options_.on_requeued) options_.on_requeued();
    rj.requeued = true;  // a cancel from now on finds the job in the queue
    live_.retrying(rj, error, delay);
  }
  spdlog::info("job {}: attempt {} of {} failed ({}); retrying in {} ms", job.id,
               job.attempts, job.max_retries + 1, error, delay.count());
  timers_.schedule(delay, [this] { wake(1); });
  return true;
}

}  // namespace runq::jobs
