#include "rows.hpp"

#include "sql.hpp"
#include "runq/util/json_text.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace runq::store::sqlite {

namespace {
nlohmann::json parse_json(std::string_view text) {
  if (text == "{}") return nlohmann::json::object();  // the usual case, without the parser
  return nlohmann::json::parse(text.begin(), text.end());
}
}  // namespace

// Reads a row laid out as RUNQ_ROW_STATUS (whole = false) or RUNQ_ROW_WHOLE.
Job read_job(const Use& u, bool whole) {
  Job j;
  j.seq = u.i64(c_seq);
  j.id = u.text(c_id);
  auto status = jobs::parse_status(u.text_view(c_status));
  if (!status) throw std::runtime_error("sqlite: job " + j.id + " has an unknown status");
  j.status = *status;
  j.progress.percentage = u.real(c_progress_pct);
  j.progress.current_step = u.opt_text(c_progress_step);
  j.progress.steps_completed = u.i32(c_steps_completed);
  j.progress.steps_total = u.opt_i32(c_steps_total);
  j.created_at_us = u.i64(c_created_at);
  j.started_at_us = u.opt_i64(c_started_at);
  j.completed_at_us = u.opt_i64(c_completed_at);
  j.agent_id = u.opt_text(c_agent_id);
  j.run_id = u.opt_text(c_run_id);
  j.session_id = u.opt_text(c_session_id);
  j.error = u.opt_text(c_error);
  j.attempts = u.i32(c_attempts);
  j.agent_file = u.opt_text(c_agent_file);
  j.recipe_name = u.opt_text(c_recipe_name);
  j.recipe_config = parse_json(u.text_view(c_recipe_config));
  j.config = parse_json(u.text_view(c_config));
  j.framework = u.opt_text(c_framework);
  j.webhook_url = u.opt_text(c_webhook_url);
  j.timeout_s = u.i32(c_timeout_s);
  j.priority = u.i32(c_priority);
  j.metadata = parse_json(u.text_view(c_metadata));
  j.max_retries = u.i32(c_max_retries);
  j.owner = u.text(c_owner);
  j.idempotency_key = u.opt_text(c_idempotency_key);
  j.request_hash = u.text(c_request_hash);
  if (whole) {
    j.prompt = u.text(c_prompt);
    j.agent_yaml = u.opt_text(c_agent_yaml);
    j.result = u.opt_text(c_result);
    j.events_json = u.text(c_events_json);
    if (auto m = u.opt_text(c_metrics)) j.metrics = nlohmann::json::parse(*m);
  }
  return j;
}
void insert_row(Db& db, const Job& j) {
  const std::string recipe_config = util::json_text(j.recipe_config);
  const std::string config = util::json_text(j.config);
  const std::string metadata = util::json_text(j.metadata);
  Use(db.cached(s_insert_job, kInsertJob))
      .bind(c_id, j.id)
      .bind(c_status, jobs::to_string(j.status))
      .bind(c_progress_pct, j.progress.percentage)
      .bind(c_progress_step, j.progress.current_step)
      .bind(c_steps_completed, j.progress.steps_completed)
      .bind(c_steps_total, j.progress.steps_total)
      .bind(c_created_at, j.created_at_us)
      .bind(c_started_at, j.started_at_us)
      .bind(c_completed_at, j.completed_at_us)
      .bind(c_agent_id, j.agent_id)
      .bind(c_run_id, j.run_id)
      .bind(c_session_id, j.session_id)
      .bind(c_error, j.error)
      .bind(c_attempts, j.attempts)
      .bind(c_agent_file, j.agent_file)
      .bind(c_recipe_name, j.recipe_name)
      .bind(c_recipe_config, recipe_config)
      .bind(c_config, config)
      .bind(c_framework, j.framework)
      .bind(c_webhook_url, j.webhook_url)
      .bind(c_timeout_s, j.timeout_s)
      .bind(c_priority, j.priority)
      .bind(c_metadata, metadata)
      .bind(c_max_retries, j.max_retries)
      .bind(c_owner, j.owner)
      .bind(c_idempotency_key, j.idempotency_key)
      .bind(c_request_hash, j.request_hash)
      .bind(c_prompt, j.prompt)
      .bind(c_agent_yaml, j.agent_yaml)
      .bind(c_result, j.result)
      .bind(c_events_json, j.events_json)
      .bind(c_metrics, j.metrics.is_null() ? std::optional<std::string>()
                                           : std::optional<std::string>(util::json_text(j.metrics)))
      .run();
}

}  // namespace runq::store::sqlite
