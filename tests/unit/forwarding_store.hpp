#pragma once
// A jobs::Store that forwards every call to a real store. Race tests derive from it and
// override the one or two calls where they hold a thread to force an interleaving.
#include "runq/jobs/store.hpp"

#include <memory>
#include <utility>

namespace runq::racetest {

class ForwardingStore : public jobs::Store {
 public:
  explicit ForwardingStore(std::unique_ptr<jobs::Store> inner) : in_(std::move(inner)) {}
  jobs::Store& inner() { return *in_; }

  std::string kind() const override { return in_->kind(); }
  std::vector<jobs::InsertResult> insert(const std::vector<jobs::Job>& b,
                                          std::int64_t max_new) override {
    return in_->insert(b, max_new);
  }
  std::optional<jobs::Job> get(const std::string& id) override { return in_->get(id); }
  std::optional<jobs::Job> get_status(const std::string& id) override {
    return in_->get_status(id);
  }
  std::optional<jobs::Job> claim_next(std::int64_t now) override {
    return in_->claim_next(now);
  }
  bool finish(const jobs::Job& j) override { return in_->finish(j); }
  bool cancel_queued(const std::string& id, std::int64_t now,
                     const std::optional<std::string>& reason,
                     const std::string& events_json) override {
    return in_->cancel_queued(id, now, reason, events_json);
  }
  jobs::RemoveOutcome remove(const std::string& id) override { return in_->remove(id); }
  jobs::ListPage list(const jobs::ListQuery& q) override { return in_->list(q); }
  jobs::StatusCounts count_by_status(const std::optional<std::string>& o) override {
    return in_->count_by_status(o);
  }
  jobs::RequeueCounts requeue_running(int max_attempts) override {
    return in_->requeue_running(max_attempts);
  }
  int delete_finished_before(std::int64_t before, int limit) override {
    return in_->delete_finished_before(before, limit);
  }
  bool requeue_for_retry(const jobs::Job& running, std::int64_t not_before) override {
    return in_->requeue_for_retry(running, not_before);
  }
  std::vector<jobs::WebhookDelivery> due_webhooks(std::int64_t now, int limit) override {
    return in_->due_webhooks(now, limit);
  }
  void webhook_attempted(const std::string& id, bool delivered,
                         std::optional<std::int64_t> next_at) override {
    in_->webhook_attempted(id, delivered, next_at);
  }
  std::optional<std::int64_t> next_webhook_at() override { return in_->next_webhook_at(); }
  std::optional<jobs::StoreFault> write_fault() const override { return in_->write_fault(); }
  void probe_write() override { in_->probe_write(); }

 private:
  std::unique_ptr<jobs::Store> in_;
};

}  // namespace runq::racetest
