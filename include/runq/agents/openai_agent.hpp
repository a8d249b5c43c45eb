#pragma once
#include "runq/jobs/agent.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace runq::agents {

struct OpenAIOptions {
  std::string base_url = "https://api.openai.com/v1";  // --openai-base-url, OPENAI_BASE_URL
  std::string api_key;                                 // OPENAI_API_KEY ("" = none sent)
  std::string model = "gpt-4o-mini";                   // --model, OPENAI_MODEL_NAME
  int max_attempts = 5;          // tries per job for 429/5xx/connection errors
  std::chrono::milliseconds base_backoff{500};  // exponential, with jitter
  std::chrono::milliseconds max_backoff{30'000};
  std::optional<std::string> ca_file;  // extra CA bundle (self-hosted endpoints)
};

// Sends the prompt to POST {base_url}/chat/completions of an OpenAI-compatible server,
// streaming: partial output becomes SSE `output` events. Per-job config.model,
// config.system, config.temperature, config.max_tokens override.
class OpenAIAgent : public jobs::Agent {
 public:
  explicit OpenAIAgent(OpenAIOptions options);
  std::string id() const override;  // "openai:<model>"
  jobs::AgentResult run(const jobs::Job& job, jobs::CancelToken& cancel,
                  jobs::ProgressSink& sink) override;

 private:
  OpenAIOptions options_;
};

}  // namespace runq::agents
