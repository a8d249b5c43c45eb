#pragma once
#include "runq/jobs/cancel_token.hpp"
#include "runq/jobs/job.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace runq::jobs {

// Where an agent reports what it is doing while it runs.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void progress(double percentage, std::optional<std::string> step,
                        int steps_completed, std::optional<int> steps_total) = 0;
  // Partial output, for agents that stream (SSE `output` events).
  virtual void output(std::string_view delta) = 0;
};

struct AgentResult {
  bool ok = false;
  std::string output;                 // the result when ok
  std::string error;                  // why it failed when !ok
  std::optional<std::string> run_id;  // the agent's own id for this run, if any
  nlohmann::json metrics;             // e.g. {"usage": {...tokens}}; null if none
};

// What a job runs. run() is called on a worker thread and must return promptly once
// `cancel` is stopped (the worker then records cancelled / timed out, not the result).
class Agent {
 public:
  virtual ~Agent() = default;
  virtual std::string id() const = 0;  // shown as the job's agent_id
  virtual AgentResult run(const Job& job, CancelToken& cancel,
                          ProgressSink& sink) = 0;
};

}  // namespace runq::jobs
