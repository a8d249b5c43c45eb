// The PostgreSQL store's news between nodes: events of running jobs, cancels asked of
// the node that runs a job, and the listener that hears both (listener.hpp).
#include "store_impl.hpp"

#include <nlohmann/json.hpp>

namespace runq::store::postgres {

using nlohmann::json;

void PostgresStore::publish(const std::vector<PublishedEvent>& events,
                            const std::vector<std::string>& changed) {
  if (events.empty() && changed.empty()) return;
  json rows = json::array();
  for (const auto& e : events)
    rows.push_back({{"j", e.job_id}, {"a", e.attempt}, {"i", e.event.id},
                    {"t", e.event.type}, {"d", e.event.data}});
  json ids = json::array();
  for (const auto& id : changed) ids.push_back(id);
  // Invalid UTF-8 (from an agent's raw output) becomes U+FFFD, as everywhere in runq.
  const auto text = [](const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  write([&](Connection& c) {
    c.run(s_publish, Params().add(text(rows)).add(keeper_->lease_id()).add(text(ids)));
  });
}

PostgresStore::EventsAfter PostgresStore::events_after(const std::string& id,
                                                       std::int64_t after_id) {
  return read([&](Connection& c) {
    Result r = c.run(s_events_after, Params().add(id).add(after_id));
    EventsAfter out;
    if (r.rows() == 0) return out;
    out.found = true;
    const auto status = jobs::parse_status(r.text_view(0, 0));
    out.terminal = !status || jobs::is_terminal(*status);
    for (int i = 0; i < r.rows(); ++i) {
      if (r.is_null(i, 1)) continue;
      out.events.push_back({r.i64(i, 1), r.text(i, 2), r.text(i, 3)});
    }
    return out;
  });
}

bool PostgresStore::request_cancel(const std::string& id) {
  return write([&](Connection& c) { return c.run(s_request_cancel, Params().add(id)).rows() == 1; });
}

void PostgresStore::on_cluster_news(ClusterNews news) { listener_->on_news(std::move(news)); }

}  // namespace runq::store::postgres
