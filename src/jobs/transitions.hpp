#pragma once
// Private to jobs/: the one place a job's status changes. Every change is checked
// against the state machine (can_transition); an illegal one is refused and logged
// instead of silently overwriting what is there. Store writes that change a status
// go through here too, so the store and the live views follow the same rules.
#include "runq/jobs/job.hpp"
#include "runq/jobs/store.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace runq::jobs {

class Transitions {
 public:
  explicit Transitions(jobs::Store& store) : store_(store) {}

  // queued -> running: a worker claimed the job (the store's claim wrote it); `view`
  // shows it from now on.
  bool to_running(Job& view);
  // running -> terminal: writes `final_job` (whose status is the ending) to the store,
  // then `view`'s status. already_terminal: the store had an end first (its end stands;
  // `view` shows ours). refused: illegal, nothing written.
  enum class Finish { stored, already_terminal, refused };
  Finish finish(Job& view, const Job& final_job);
  // running -> queued: a failed attempt to retry not before `not_before_us`, or a job
  // stopped by shutdown. Attempts are kept.
  bool requeue(Job& view, std::int64_t not_before_us);
  // queued -> cancelled in the store, with the job's whole event history (may be "").
  bool cancel_queued(const std::string& id, std::int64_t now_us,
                     const std::optional<std::string>& reason, const std::string& events_json);

  // True if from -> to is allowed; else logs "illegal transition" and returns false.
  static bool allowed(const std::string& id, JobStatus from, JobStatus to);

 private:
  jobs::Store& store_;
};

}  // namespace runq::jobs
