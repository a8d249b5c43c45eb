#pragma once
#include "runq/jobs/agent.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace runq::agents {

struct CommandOptions {
  std::vector<std::string> argv;               // program and arguments (never a shell)
  std::chrono::milliseconds kill_grace{5000};  // SIGTERM, then SIGKILL after this
  std::size_t max_output_bytes = 16u << 20;    // stdout over this fails the job
};

// Splits a command line into words the way a POSIX shell does (quotes, backslashes),
// without expanding anything. Throws std::invalid_argument on an unclosed quote.
std::vector<std::string> split_command_line(const std::string& line);

// Runs a local program per job, in its own process group: the prompt on stdin, the job's
// other fields in RUNQ_* environment variables, stdout is the result (exit 0), stderr
// lines `::progress <percent> <step>` report progress; other stderr lines are logged.
class CommandAgent : public jobs::Agent {
 public:
  explicit CommandAgent(CommandOptions options);
  std::string id() const override;  // "command"
  jobs::AgentResult run(const jobs::Job& job, jobs::CancelToken& cancel,
                  jobs::ProgressSink& sink) override;

 private:
  CommandOptions options_;
};

}  // namespace runq::agents
