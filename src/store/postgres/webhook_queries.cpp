// The PostgreSQL store's webhook bookkeeping: which finished jobs have a webhook due, and
// each delivery attempt.
#include "rows.hpp"
#include "store_impl.hpp"

namespace runq::store::postgres {

std::vector<WebhookDelivery> PostgresStore::due_webhooks(std::int64_t now_us, int limit) {
  return read([&](Connection& c) {
    Result r = c.run(s_due_webhooks, Params().add(now_us).add(limit));
    std::vector<WebhookDelivery> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back({read_job(r, i, true), r.i32(i, c_count)});
    return out;
  });
}

void PostgresStore::webhook_attempted(const std::string& id, bool delivered,
                                      std::optional<std::int64_t> next_at_us) {
  const int state = delivered ? 2 : next_at_us ? 1 : 3;
  write([&](Connection& c) {
    c.run(s_webhook_attempted,
          Params().add(id).add(state).add(delivered ? std::nullopt : next_at_us));
  });
}

std::optional<std::int64_t> PostgresStore::next_webhook_at() {
  return read([&](Connection& c) -> std::optional<std::int64_t> {
    Result r = c.run(s_next_webhook, {});
    if (r.rows() == 0) return std::nullopt;
    return r.opt_i64(0, 0);
  });
}

}  // namespace runq::store::postgres
