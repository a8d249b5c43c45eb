#include "transitions.hpp"

#include <spdlog/spdlog.h>

namespace runq::jobs {

bool Transitions::allowed(const std::string& id, JobStatus from, JobStatus to) {
  if (can_transition(from, to)) return true;
  spdlog::error("job {}: illegal transition {} -> {} refused", id, to_string(from),
                to_string(to));
  return false;
}

bool Transitions::to_running(Job& view) {
  // The claim took a queued job; the row says running already, the view not yet.
  if (!allowed(view.id, JobStatus::queued, JobStatus::running)) return false;
  view.status = JobStatus::running;
  return true;
}

Transitions::Finish Transitions::finish(Job& view, const Job& final_job) {
  if (!allowed(view.id, view.status, final_job.status)) return Finish::refused;
  const bool stored = store_.finish(final_job);  // the store refuses a terminal row
  view.status = final_job.status;
  return stored ? Finish::stored : Finish::already_terminal;
}

bool Transitions::requeue(Job& view, std::int64_t not_before_us) {
  if (!allowed(view.id, view.status, JobStatus::queued)) return false;
  if (!store_.requeue_for_retry(view, not_before_us)) return false;
  view.status = JobStatus::queued;
  return true;
}

bool Transitions::cancel_queued(const std::string& id, std::int64_t now_us,
                                const std::optional<std::string>& reason,
                                const std::string& events_json) {
  // Only a queued row is cancelled here (the store checks it in the same write).
  if (!allowed(id, JobStatus::queued, JobStatus::cancelled)) return false;
  return store_.cancel_queued(id, now_us, reason, events_json);
}

}  // namespace runq::jobs
