#include "rows.hpp"

#include "runq/util/json_text.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace runq::store::postgres {

namespace {
nlohmann::json parse_json(std::string_view text) {
  if (text == "{}") return nlohmann::json::object();  // the usual case, without the parser
  return nlohmann::json::parse(text.begin(), text.end());
}

std::optional<std::string> metrics_text(const nlohmann::json& metrics) {
  if (metrics.is_null()) return std::nullopt;
  return util::json_text(metrics);
}
}  // namespace

Job read_job(const Result& r, int row, bool whole) {
  Job j;
  j.seq = r.i64(row, c_seq);
  j.id = r.text(row, c_id);
  auto status = jobs::parse_status(r.text_view(row, c_status));
  if (!status) throw std::runtime_error("postgresql: job " + j.id + " has an unknown status");
  j.status = *status;
  j.progress.percentage = r.real(row, c_progress_pct);
  j.progress.current_step = r.opt_text(row, c_progress_step);
  j.progress.steps_completed = r.i32(row, c_steps_completed);
  j.progress.steps_total = r.opt_i32(row, c_steps_total);
  j.created_at_us = r.i64(row, c_created_at);
  j.started_at_us = r.opt_i64(row, c_started_at);
  j.completed_at_us = r.opt_i64(row, c_completed_at);
  j.agent_id = r.opt_text(row, c_agent_id);
  j.run_id = r.opt_text(row, c_run_id);
  j.session_id = r.opt_text(row, c_session_id);
  j.error = r.opt_text(row, c_error);
  j.attempts = r.i32(row, c_attempts);
  j.agent_file = r.opt_text(row, c_agent_file);
  j.recipe_name = r.opt_text(row, c_recipe_name);
  j.recipe_config = parse_json(r.text_view(row, c_recipe_config));
  j.config = parse_json(r.text_view(row, c_config));
  j.framework = r.opt_text(row, c_framework);
  j.webhook_url = r.opt_text(row, c_webhook_url);
  j.timeout_s = r.i32(row, c_timeout_s);
  j.priority = r.i32(row, c_priority);
  j.metadata = parse_json(r.text_view(row, c_metadata));
  j.max_retries = r.i32(row, c_max_retries);
  j.owner = r.text(row, c_owner);
  j.idempotency_key = r.opt_text(row, c_idempotency_key);
  j.request_hash = r.text(row, c_request_hash);
  j.node = r.opt_text(row, c_node);
  if (whole) {
    j.prompt = r.text(row, c_prompt);
    j.agent_yaml = r.opt_text(row, c_agent_yaml);
    j.result = r.opt_text(row, c_result);
    j.events_json = r.text(row, c_events_json);
    if (!r.is_null(row, c_metrics)) j.metrics = nlohmann::json::parse(r.text_view(row, c_metrics));
  }
  return j;
}

// In the order of RUNQ_PG_COLS_STATUS, RUNQ_PG_COLS_HEAVY ($1 is c_id).
Params insert_params(const Job& j) {
  Params p;
  p.add(j.id)
      .add(jobs::to_string(j.status))
      .add(j.progress.percentage)
      .add(j.progress.current_step)
      .add(j.progress.steps_completed)
      .add(j.progress.steps_total)
      .add(j.created_at_us)
      .add(j.started_at_us)
      .add(j.completed_at_us)
      .add(j.agent_id)
      .add(j.run_id)
      .add(j.session_id)
      .add(j.error)
      .add(j.attempts)
      .add(j.agent_file)
      .add(j.recipe_name)
      .add(util::json_text(j.recipe_config))
      .add(util::json_text(j.config))
      .add(j.framework)
      .add(j.webhook_url)
      .add(j.timeout_s)
      .add(j.priority)
      .add(util::json_text(j.metadata))
      .add(j.max_retries)
      .add(j.owner)
      .add(j.idempotency_key)
      .add(j.request_hash)
      .add(j.node)
      .add(j.prompt)
      .add(j.agent_yaml)
      .add(j.result)
      .add(j.events_json)
      .add(metrics_text(j.metrics));
  return p;
}

}  // namespace runq::store::postgres
