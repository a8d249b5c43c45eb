#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace runq::jobs {

// queued -> running -> succeeded | failed | cancelled;  queued -> cancelled;
// running -> queued (a retry, or back to the queue at shutdown).
enum class JobStatus { queued, running, succeeded, failed, cancelled };

std::string_view to_string(JobStatus s);
std::optional<JobStatus> parse_status(std::string_view s);
bool is_terminal(JobStatus s);
// May a job move from `from` to `to`? (Terminal states never change.)
bool can_transition(JobStatus from, JobStatus to);

struct Progress {
  double percentage = 0.0;
  std::optional<std::string> current_step;
  int steps_completed = 0;
  std::optional<int> steps_total;
};

// One job: what the client asked for, and what has happened to it since.
struct Job {
  // identity and state
  std::string id;
  JobStatus status = JobStatus::queued;
  Progress progress;
  std::int64_t created_at_us = 0;
  std::optional<std::int64_t> started_at_us;
  std::optional<std::int64_t> completed_at_us;
  std::optional<std::string> agent_id;
  std::optional<std::string> run_id;
  std::optional<std::string> session_id;
  std::optional<std::string> error;
  std::optional<std::string> result;  // set only when succeeded
  nlohmann::json metrics;             // agent's metrics (e.g. token usage); null if none
  int attempts = 0;                   // how many times it has started running
  // Several nodes (PostgreSQL): the name of the node that runs or last ran it.
  std::optional<std::string> node;

  // the request
  std::string prompt;
  std::optional<std::string> agent_file;
  std::optional<std::string> agent_yaml;
  std::optional<std::string> recipe_name;
  nlohmann::json recipe_config = nlohmann::json::object();
  nlohmann::json config = nlohmann::json::object();
  std::optional<std::string> framework = std::string("praisonai");
  std::optional<std::string> webhook_url;
  int timeout_s = 0;  // effective running-time limit in seconds (always > 0 once accepted)
  int priority = 0;
  nlohmann::json metadata = nlohmann::json::object();  // string -> string
  int max_retries = 0;

  // bookkeeping
  std::string owner;  // API key hash that created it ("" when auth is off)
  std::optional<std::string> idempotency_key;  // scoped key as stored, if any
  std::string request_hash;                    // sha256 of the canonical request
  std::int64_t seq = 0;                        // insertion order (FIFO within a priority)
  // SSE events of a finished job, as a JSON array of {"id","event","data"}; "" if none.
  std::string events_json;
};

}  // namespace runq::jobs
