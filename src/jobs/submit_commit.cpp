// JobService's submits: each waits for the committer, which stores every submit waiting
// in one transaction (group commit) and then answers them.
#include "service_state.hpp"

#include "runq/metrics/runq_metrics.hpp"
#include "runq/util/ids.hpp"
#include "runq/util/log.hpp"
#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace runq::jobs {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

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
      state_->queued_add(inserted);
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
    if (inserted > 0) state_->scheduler.wake();
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

}  // namespace runq::jobs
