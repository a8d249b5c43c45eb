#pragma once
#include "runq/jobs/agent.hpp"

namespace runq::agents {

// The default agent: the result is the prompt, exactly. Its job config acts out every
// path for tests: `sleep_seconds` (float, interruptible work), `steps` (progress steps
// spread over the sleep), `fail_with` (fail with exactly this error).
class EchoAgent : public jobs::Agent {
 public:
  std::string id() const override { return "echo"; }
  jobs::AgentResult run(const jobs::Job& job, jobs::CancelToken& cancel,
                  jobs::ProgressSink& sink) override;
};

}  // namespace runq::agents
