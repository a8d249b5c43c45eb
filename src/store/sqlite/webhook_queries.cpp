// The SQLite store's webhook bookkeeping: which finished jobs have a webhook due, and
// each delivery attempt.
#include "rows.hpp"
#include "store_impl.hpp"

namespace runq::store::sqlite {

std::vector<WebhookDelivery> SqliteStore::due_webhooks(std::int64_t now_us, int limit) {
  return read([&](Db& db) {
    std::vector<WebhookDelivery> out;
    Use u(db.cached(s_due_webhooks,
                    "SELECT " RUNQ_ROW_WHOLE ", webhook_attempts FROM jobs "
                    "INDEXED BY jobs_webhooks WHERE webhook_state = 1 AND "
                    "webhook_next_at <= ?1 ORDER BY webhook_next_at LIMIT ?2"));
    u.bind(1, now_us).bind(2, std::int64_t{limit});
    while (u.step()) out.push_back({read_job(u, true), u.i32(c_count)});
    return out;
  });
}

void SqliteStore::webhook_attempted(const std::string& id, bool delivered,
                                    std::optional<std::int64_t> next_at_us) {
  const int state = delivered ? 2 : next_at_us ? 1 : 3;
  write([&](Db& db) {
    Use(db.cached(s_webhook_attempted,
                  "UPDATE jobs SET webhook_state = ?2, webhook_attempts = "
                  "webhook_attempts + 1, webhook_next_at = ?3 WHERE id = ?1"))
        .bind(1, id)
        .bind(2, state)
        .bind(3, delivered ? std::nullopt : next_at_us)
        .run();
  });
}

std::optional<std::int64_t> SqliteStore::next_webhook_at() {
  return read([&](Db& db) -> std::optional<std::int64_t> {
    Use u(db.cached(s_next_webhook,
                    "SELECT MIN(webhook_next_at) FROM jobs INDEXED BY jobs_webhooks "
                    "WHERE webhook_state = 1"));
    if (!u.step()) return std::nullopt;
    return u.opt_i64(0);
  });
}

}  // namespace runq::store::sqlite
