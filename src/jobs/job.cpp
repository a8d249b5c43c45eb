#include "runq/jobs/job.hpp"

namespace runq::jobs {

std::string_view to_string(JobStatus s) {
  switch (s) {
    case JobStatus::queued: return "queued";
    case JobStatus::running: return "running";
    case JobStatus::succeeded: return "succeeded";
    case JobStatus::failed: return "failed";
    case JobStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<JobStatus> parse_status(std::string_view s) {
  if (s == "queued") return JobStatus::queued;
  if (s == "running") return JobStatus::running;
  if (s == "succeeded") return JobStatus::succeeded;
  if (s == "failed") return JobStatus::failed;
  if (s == "cancelled") return JobStatus::cancelled;
  return std::nullopt;
}

bool is_terminal(JobStatus s) {
  return s == JobStatus::succeeded || s == JobStatus::failed || s == JobStatus::cancelled;
}

bool can_transition(JobStatus from, JobStatus to) {
  switch (from) {
    case JobStatus::queued: return to == JobStatus::running || to == JobStatus::cancelled;
    // running -> queued: a failed attempt retried, or a job stopped by shutdown.
    case JobStatus::running: return is_terminal(to) || to == JobStatus::queued;
    default: return false;
  }
}

}  // namespace runq::jobs
