#include "runq/agents/factory.hpp"

#include "runq/agents/command_agent.hpp"
#include "runq/agents/echo_agent.hpp"
#include "runq/agents/openai_agent.hpp"

#include <chrono>
#include <stdexcept>

namespace runq::agents {

std::unique_ptr<jobs::Agent> make_agent(const config::ServeConfig& cfg) {
  if (cfg.agent == "echo") return std::make_unique<EchoAgent>();
  if (cfg.agent == "command") {
    CommandOptions o;
    o.argv = split_command_line(cfg.agent_command);
    if (o.argv.empty()) throw std::invalid_argument("--agent-command is empty");
    o.kill_grace = std::chrono::milliseconds(static_cast<long long>(cfg.kill_grace * 1000));
    o.max_output_bytes = cfg.max_output;
    return std::make_unique<CommandAgent>(std::move(o));
  }
  if (cfg.agent == "openai") {
    OpenAIOptions o;
    o.base_url = cfg.openai_base_url;
    while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
    o.api_key = cfg.openai_api_key;
    o.model = cfg.model;
    o.ca_file = cfg.ca_file;
    return std::make_unique<OpenAIAgent>(std::move(o));
  }
  throw std::invalid_argument("unknown agent: " + cfg.agent);
}

}  // namespace runq::agents
