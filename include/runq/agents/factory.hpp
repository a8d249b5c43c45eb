#pragma once
#include "runq/jobs/agent.hpp"
#include "runq/config/config.hpp"

#include <memory>

namespace runq::agents {

// The agent `runq serve` was configured with (--agent echo|command|openai).
// Throws std::invalid_argument with a readable message on a bad configuration.
std::unique_ptr<jobs::Agent> make_agent(const config::ServeConfig& cfg);

}  // namespace runq::agents
