#include "live_jobs.hpp"
#include "runq/metrics/runq_metrics.hpp"
#include "runq/util/json_text.hpp"
#include "runq/util/log.hpp"

#include "runq/util/time.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>

namespace runq::jobs {

using nlohmann::json;

namespace {
std::string status_event(const std::string& id, JobStatus s) {
  return util::json_text(json{{"status", to_string(s)}, {"job_id", id}});
}
std::string progress_event(double percentage, const std::optional<std::string>& step) {
  return util::json_text(json{{"percentage", percentage}, {"step", step ? json(*step) : json(nullptr)}});
}
// Metrics and the lifecycle log line of a job whose terminal state was just stored.
void observe_end(const Job& job) {
  const double ran_s =
      job.started_at_us && job.completed_at_us
          ? static_cast<double>(*job.completed_at_us - *job.started_at_us) / 1e6
          : -1.0;
  const auto outcome = job.status == JobStatus::succeeded ? metrics::JobOutcome::succeeded
                       : job.status == JobStatus::failed  ? metrics::JobOutcome::failed
                                                          : metrics::JobOutcome::cancelled;
  metrics::runq().job_finished(outcome, ran_s);
  util::log::event(spdlog::level::info, "job finished",
                   {{"job_id", job.id},
                    {"status", to_string(job.status)},
                    {"attempts", job.attempts},
                    {"duration_s", ran_s}});
}
}  // namespace

Ending ending_succeeded(const std::string& result) {
  return {JobStatus::succeeded, result, std::nullopt, "result",
          util::json_text(json{{"result", result}})};
}
Ending ending_failed(const std::string& error) {
  return {JobStatus::failed, std::nullopt, error, "error", util::json_text(json{{"error", error}})};
}
Ending ending_cancelled(const std::optional<std::string>& reason) {
  return {JobStatus::cancelled, std::nullopt, reason, "cancelled",
          util::json_text(json{{"message", "Job was cancelled"}})};
}

std::shared_ptr<EventLog> synthesize_events(const Job& job) {
  auto log = std::make_shared<EventLog>();
  log->append("status", status_event(job.id, JobStatus::queued));
  if (job.started_at_us) log->append("status", status_event(job.id, JobStatus::running));
  Ending e = job.status == JobStatus::succeeded ? ending_succeeded(job.result.value_or(""))
             : job.status == JobStatus::failed  ? ending_failed(job.error.value_or(""))
                                                : ending_cancelled(job.error);
  if (job.status == JobStatus::succeeded)
    log->append("progress", progress_event(100.0, std::string("Completed")));
  log->close_with(e.event_type, e.event_data);
  return log;
}

struct LiveJobs::Waiter {
  std::atomic<bool> fired{false};
  std::function<void()> done;
  // Set by wait_terminal after the waiter is already visible to notify_waiters (another
  // thread): atomic, and 0 until then.
  std::atomic<std::uint64_t> timer{0};
  void fire() {
    if (!fired.exchange(true)) done();
  }
};

LiveJobs::LiveJobs(jobs::Store& store, Transitions& transitions, TimerQueue& timers,
                   std::function<void(const std::string& id)> on_end, EventFeed* feed)
    : store_(store),
      transitions_(transitions),
      timers_(timers),
      on_end_(std::move(on_end)),
      feed_(feed) {}

std::shared_ptr<EventLog> LiveJobs::log_locked(const std::string& id) {
  auto& log = logs_[id];
  if (!log) {
    log = std::make_shared<EventLog>();
    log->append("status", status_event(id, JobStatus::queued));
  }
  return log;
}

void LiveJobs::drop_log(const std::string& id, const EventLog* log) {
  std::lock_guard lock(mu_);
  auto it = logs_.find(id);
  if (it != logs_.end() && it->second.get() == log) logs_.erase(it);
}

std::shared_ptr<RunningJob> LiveJobs::add_running(const Job& job) {
  auto rj = std::make_shared<RunningJob>();
  rj->view = job;
  rj->view.prompt.clear();  // the view is copied on every status read: keep it small
  rj->view.agent_yaml.reset();
  transitions_.to_running(rj->view);
  // Several nodes: a job that ran before (on another node, maybe) goes on with the events
  // stored so far, and their ids.
  std::vector<Event> earlier;
  if (feed_ && job.attempts > 1) {
    try {
      earlier = store_.events_after(job.id, 0).events;
    } catch (const std::exception& e) {
      spdlog::warn("job {}: cannot read its earlier events: {}", job.id, e.what());
    }
  }
  // A retry claimed at once (--retry-delay 0): its previous attempt may still be in
  // retry_later, between re-queueing it in the store and appending the "queued" retry
  // event, under its mu. Wait for that so the events stay in order.
  std::shared_ptr<RunningJob> prev = find(job.id);
  std::unique_lock<std::mutex> prev_lock;
  if (prev) prev_lock = std::unique_lock(prev->mu);
  std::lock_guard lock(mu_);
  rj->log = log_locked(job.id);
  for (const Event& e : earlier) rj->log->append_copy(e);
  if (feed_) feed_->follow(job.id, job.attempts, rj->log);
  rj->log->append("status", status_event(job.id, JobStatus::running));
  running_[job.id] = rj;
  return rj;
}

std::shared_ptr<RunningJob> LiveJobs::find(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = running_.find(id);
  return it == running_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<RunningJob>> LiveJobs::all() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<RunningJob>> out;
  for (auto& [id, rj] : running_) out.push_back(rj);
  return out;
}

void LiveJobs::remove(const std::string& id, const RunningJob* rj) {
  std::lock_guard lock(mu_);
  auto it = running_.find(id);
  if (it != running_.end() && it->second.get() == rj) {
    running_.erase(it);
    if (feed_) feed_->unfollow(id);
  }
}

void LiveJobs::progress(RunningJob& rj, double percentage, std::optional<std::string> step,
                        int steps_completed, std::optional<int> steps_total) {
  std::lock_guard lock(rj.mu);
  if (rj.finalized) return;
  rj.view.progress = Progress{percentage, step, steps_completed, steps_total};
  rj.log->append("progress", progress_event(percentage, step));
}

void LiveJobs::output(RunningJob& rj, std::string_view delta) {
  std::lock_guard lock(rj.mu);
  if (rj.finalized) return;
  rj.log->append("output", util::json_text(json{{"delta", delta}}));
}

void LiveJobs::retrying(RunningJob& rj, const std::string& error,
                        std::chrono::milliseconds delay) {
  rj.log->append("status", util::json_text(json{{"status", "queued"},
                                 {"job_id", rj.view.id},
                                 {"error", error},
                                 {"retry_in", static_cast<double>(delay.count()) / 1000.0}}));
}

bool LiveJobs::finalize(RunningJob& rj, const Ending& ending) {
  {
    std::lock_guard lock(rj.mu);
    if (!rj.current()) return false;
    Job final_job = rj.view;
    final_job.status = ending.status;
    final_job.result = ending.result;
    final_job.error = ending.error;
    final_job.completed_at_us = ending.completed_at_us.value_or(util::now_us());
    if (ending.status == JobStatus::succeeded &&
        (final_job.progress.percentage < 100.0 || rj.completed_event)) {
      final_job.progress.percentage = 100.0;
      // Once only, also when an earlier try could not store the end.
      if (!rj.completed_event)
        rj.log->append("progress", progress_event(100.0, std::string("Completed")));
      rj.completed_event = true;
    }
    final_job.metrics = rj.view.metrics;
    final_job.events_json = rj.log->to_json_closed_with(ending.event_type, ending.event_data);
    // Store first: once a client can see the terminal event, /result must agree.
    const auto t0 = std::chrono::steady_clock::now();
    const auto outcome = transitions_.finish(rj.view, final_job);
    if (outcome == Transitions::Finish::refused) return false;  // logged there
    const bool stored = outcome == Transitions::Finish::stored;
    metrics::runq().store_op(
        metrics::StoreOp::finish,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!stored)
      spdlog::warn("job {}: already terminal in the store; keeping the stored state",
                   final_job.id);
    rj.finalized = true;
    if (stored) observe_end(final_job);
    final_job.result.reset();  // the view carries no payload
    final_job.metrics = nullptr;
    final_job.events_json.clear();
    rj.view = std::move(final_job);
    rj.log->close_with(ending.event_type, ending.event_data);
  }
  drop_log(rj.view.id, rj.log.get());
  notify_waiters(rj.view.id);
  // Only an ending with a webhook has anything for on_end (its delivery is due now):
  // waking the webhook dispatcher for every job cost two reads and a thread switch each.
  if (on_end_ && rj.view.webhook_url) on_end_(rj.view.id);
  return true;
}

bool LiveJobs::cancel_queued(const std::string& id, const Ending& ending) {
  std::shared_ptr<EventLog> log;
  {
    std::lock_guard lock(mu_);
    auto it = logs_.find(id);
    if (it != logs_.end()) log = it->second;
  }
  // The whole history is stored (a retried job's attempts too): a stream resumed later
  // replays it from the store with the same ids. No live log: readers synthesize it.
  const std::string events =
      log ? log->to_json_closed_with(ending.event_type, ending.event_data) : std::string();
  if (!transitions_.cancel_queued(id, util::now_us(), ending.error, events)) return false;
  {
    std::lock_guard lock(mu_);
    auto it = logs_.find(id);  // maybe one a stream created meanwhile
    if (it != logs_.end()) {
      log = it->second;
      logs_.erase(it);
    }
  }
  if (log) log->close_with(ending.event_type, ending.event_data);
  if (feed_) feed_->touch(id);
  notify_waiters(id);
  if (on_end_) on_end_(id);
  return true;
}

std::shared_ptr<EventLog> LiveJobs::log_for_stream(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    auto it = logs_.find(id);
    if (it != logs_.end()) return it->second;
  }
  auto job = store_.get(id);
  if (!job) return nullptr;
  auto from_store = [](const Job& j) {
    return j.events_json.empty() ? synthesize_events(j)
                                 : EventLog::closed_from_json(j.events_json);
  };
  if (is_terminal(job->status)) return from_store(*job);

  // Not finished: follow it live. The job may finish between the read above and
  // creating its log here; finishing writes the store before dropping the log, so a
  // second read after creating the log tells which side of that we are on.
  std::shared_ptr<EventLog> log;
  {
    std::lock_guard lock(mu_);
    log = log_locked(id);
  }
  auto again = store_.get(id);
  if (!again || (is_terminal(again->status) && !log->closed())) {
    // Ended (or gone) before the log existed, so nobody closes it: close it here, with
    // the stored end, since another stream may have found it in logs_ meanwhile.
    auto stored = again ? from_store(*again) : nullptr;
    bool closed = false;
    std::vector<Event> last = stored ? stored->since(0, &closed) : std::vector<Event>{};
    if (!last.empty())
      log->close_with(last.back().type, last.back().data);
    else
      log->close_with("error", util::json_text(json{{"error", "Job not found"}}));
    drop_log(id, log.get());
    return stored;
  }
  // Several nodes: what another node running it has done so far.
  if (feed_) refresh_from_store(id);
  return log;
}

void LiveJobs::wait_terminal(const std::string& id, std::chrono::milliseconds max_wait,
                             std::function<void()> done) {
  auto w = std::make_shared<Waiter>();
  w->done = std::move(done);
  bool registered = false;
  {
    std::lock_guard lock(mu_);
    // After the release at shutdown nobody would release a new waiter early: it is
    // answered now. (Registration and release are ordered by mu_.)
    if (!released_) {
      waiters_[id].push_back(w);
      registered = true;
    }
  }
  if (!registered) return w->fire();
  // Registered first, checked second: a job ending in between still wakes us.
  auto rj = find(id);
  bool running_here = false;
  if (rj) {
    std::lock_guard lock(rj->mu);
    running_here = rj->current();
  }
  if (!running_here) {
    auto job = store_.get_status(id);
    if (!job || is_terminal(job->status)) {
      notify_waiters(id);
      return;
    }
  }
  std::weak_ptr<Waiter> weak = w;
  const std::uint64_t timer = timers_.schedule(max_wait, [this, id, weak] {
    auto w = weak.lock();
    if (!w) return;
    {
      std::lock_guard lock(mu_);
      auto it = waiters_.find(id);
      if (it != waiters_.end()) {
        std::erase(it->second, w);
        if (it->second.empty()) waiters_.erase(it);
      }
    }
    w->fire();
  });
  w->timer = timer;
  // The job may have ended meanwhile: notify_waiters then found no timer to cancel.
  if (w->fired) timers_.cancel(timer);
}

void LiveJobs::notify_waiters(const std::string& id) {
  std::vector<std::shared_ptr<Waiter>> ws;
  {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    ws.swap(it->second);
    waiters_.erase(it);
  }
  for (auto& w : ws) {
    if (w->timer) timers_.cancel(w->timer);
    w->fire();
  }
}

void LiveJobs::release_all_waiters() {
  std::unordered_map<std::string, std::vector<std::shared_ptr<Waiter>>> all;
  {
    std::lock_guard lock(mu_);
    released_ = true;
    all.swap(waiters_);
  }
  for (auto& [id, ws] : all)
    for (auto& w : ws) {
      if (w->timer) timers_.cancel(w->timer);
      w->fire();
    }
}

void LiveJobs::touch(const std::string& id) {
  if (feed_) feed_->touch(id);
}

void LiveJobs::cluster_changed(const std::vector<std::string>& ids) {
  std::vector<std::string> todo;
  {
    std::lock_guard lock(mu_);
    if (ids.empty()) {
      for (const auto& [id, log] : logs_) todo.push_back(id);
      for (const auto& [id, ws] : waiters_)
        if (!logs_.contains(id)) todo.push_back(id);
    } else {
      for (const auto& id : ids)
        if (logs_.contains(id) || waiters_.contains(id)) todo.push_back(id);
    }
  }
  for (const auto& id : todo) refresh_from_store(id);
}

void LiveJobs::refresh_from_store(const std::string& id) {
  if (auto rj = find(id)) {
    std::lock_guard lock(rj->mu);
    if (rj->current()) return;  // runs here: its log here is the truth
  }
  std::shared_ptr<EventLog> log;
  {
    std::lock_guard lock(mu_);
    auto it = logs_.find(id);
    if (it != logs_.end()) log = it->second;
  }
  // Several threads may do this at once for one job: append_copy takes each event once.
  Store::EventsAfter news;
  std::optional<Job> ended;
  try {
    news = store_.events_after(id, log ? log->last_id() : 0);
    if (news.terminal) ended = store_.get(id);
  } catch (const std::exception& e) {
    spdlog::debug("job {}: cannot read its news from the store: {}", id, e.what());
    return;  // the next news, or the listener's catch-up after an outage, tries again
  }
  if (news.found && !news.terminal) {
    if (log)
      for (const Event& e : news.events) log->append_copy(e);
    return;
  }
  // Ended or gone: the stream ends as the stored history does.
  if (log) {
    if (ended) {
      auto stored = ended->events_json.empty() ? synthesize_events(*ended)
                                               : EventLog::closed_from_json(ended->events_json);
      bool closed = false;
      std::vector<Event> rest = stored->since(log->last_id(), &closed);
      if (rest.empty()) rest = stored->since(0, &closed);  // the ids differ: its end only
      for (std::size_t i = 0; i + 1 < rest.size(); ++i) log->append_copy(rest[i]);
      if (!rest.empty()) log->close_with(rest.back().type, rest.back().data);
    }
    if (!log->closed())
      log->close_with("error", util::json_text(json{{"error", "Job not found"}}));
    drop_log(id, log.get());
  }
  notify_waiters(id);
}

}  // namespace runq::jobs
