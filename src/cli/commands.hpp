#pragma once
// The client commands. Each talks to the server, prints what it got and returns the
// exit status; bad usage throws UsageError, an unreachable server http::ConnectionError.
#include "common.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace runq::cli {

// Whether the user gave this flag on the command line (rather than leaving its default).
using Given = std::function<bool(std::string_view flag)>;

struct SubmitArgs {
  std::string prompt;
  std::string agent_file, agent_yaml, recipe, recipe_config, config, framework;
  int timeout = 0;
  std::string session_id, idempotency_key, idempotency_scope, webhook_url;
  int priority = 0;
  int max_retries = 0;
  std::vector<std::string> metadata;
  bool wait = false;
};

struct ListArgs {
  std::string status, session_id;
  int page = 1, page_size = 20;
};

int cmd_submit(const Common& common, const SubmitArgs& args, const Given& given);
int cmd_status(const Common& common, const std::string& id);
int cmd_result(const Common& common, const std::string& id);
int cmd_cancel(const Common& common, const std::string& id);
int cmd_delete(const Common& common, const std::string& id);
int cmd_list(const Common& common, const ListArgs& args, const Given& given);
int cmd_stream(const Common& common, const std::string& id);
// Waits until the job is terminal or `timeout_s` (0 = forever) passes.
int cmd_wait(const Common& common, const std::string& id, double timeout_s);

}  // namespace runq::cli
