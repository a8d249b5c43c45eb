#include "runq/jobs/fingerprint.hpp"

#include "runq/util/ids.hpp"
#include "runq/util/json_text.hpp"

namespace runq::jobs {

std::string request_fingerprint(const Job& job, long long requested_timeout_s) {
  using nlohmann::json;
  json canon = json::object();
  auto opt = [](const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); };
  canon["prompt"] = job.prompt;
  canon["agent_file"] = opt(job.agent_file);
  canon["agent_yaml"] = opt(job.agent_yaml);
  canon["recipe_name"] = opt(job.recipe_name);
  canon["recipe_config"] = job.recipe_config;
  canon["config"] = job.config;
  canon["framework"] = opt(job.framework);
  canon["webhook_url"] = opt(job.webhook_url);
  canon["timeout"] = requested_timeout_s;  // 0 = the server default
  canon["session_id"] = opt(job.session_id);
  canon["priority"] = job.priority;
  canon["metadata"] = job.metadata;
  canon["max_retries"] = job.max_retries;
  return util::sha256_hex(util::json_text(canon));
}

std::optional<std::string> scoped_idempotency_key(std::string_view scope,
                                                  const std::optional<std::string>& session_id,
                                                  std::string_view key) {
  if (scope == "none") return std::nullopt;
  if (scope == "session") {
    const std::string session = session_id.value_or("");
    std::string out = "s:";
    out += std::to_string(session.size());
    out += ':';
    out += session;
    out += ':';
    out += key;
    return out;
  }
  std::string out = "g:";
  out += key;
  return out;
}

}  // namespace runq::jobs
