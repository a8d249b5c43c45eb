// The PostgreSQL store's webhook bookkeeping: which finished jobs have a webhook due, and
// each delivery attempt.
#include "rows.hpp"
#include "store_impl.hpp"

#include <algorithm>
#include <utility>

namespace runq::store::postgres {

// Claims what it returns (see s_due_webhooks): several nodes never deliver the same one.
std::vector<WebhookDelivery> PostgresStore::due_webhooks(std::int64_t now_us, int limit) {
  if (limit <= 0) return {};
  return write([&](Connection& c) {
    Result r = c.run(s_due_webhooks, Params().add(now_us).add(limit));
    std::vector<std::pair<std::int64_t, WebhookDelivery>> due;
    due.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i)
      due.push_back({r.i64(i, c_count + 1), {read_job(r, i, true), r.i32(i, c_count)}});
    // RETURNING has no order: earliest due first, as claimed.
    std::stable_sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second.job.seq < b.second.job.seq;
    });
    std::vector<WebhookDelivery> out;
    out.reserve(due.size());
    for (auto& d : due) out.push_back(std::move(d.second));
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
