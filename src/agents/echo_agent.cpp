#include "runq/agents/echo_agent.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

namespace runq::agents {

namespace {
double number_or(const nlohmann::json& config, const char* key, double fallback) {
  auto it = config.find(key);
  return it != config.end() && it->is_number() ? it->get<double>() : fallback;
}
}  // namespace

jobs::AgentResult EchoAgent::run(const jobs::Job& job, jobs::CancelToken& cancel,
                           jobs::ProgressSink& sink) {
  const auto& config = job.config.is_object() ? job.config : nlohmann::json::object();
  double sleep_s = std::max(0.0, number_or(config, "sleep_seconds", 0.0));
  int steps = static_cast<int>(std::clamp(number_or(config, "steps", 0.0), 0.0, 10000.0));

  // Spread the sleep over the steps; every wait returns at once on cancel/timeout.
  auto total = std::chrono::microseconds(static_cast<std::int64_t>(
      std::min(sleep_s, 1e9) * 1e6));
  int slices = std::max(steps, 1);
  for (int i = 0; i < slices; ++i) {
    if (!cancel.sleep_for(total / slices)) return jobs::AgentResult{false, {}, "stopped", {}};
    if (steps > 0) {
      int done = i + 1;
      sink.progress(100.0 * done / steps, "Step " + std::to_string(done) + "/" +
                    std::to_string(steps), done, steps);
    }
  }

  auto fail = config.find("fail_with");
  if (fail != config.end() && fail->is_string())
    return jobs::AgentResult{false, {}, fail->get<std::string>(), {}};
  return jobs::AgentResult{true, job.prompt, {}, {}};
}

}  // namespace runq::agents
