// Tests of the webhook dispatcher against a real SQLite store, with the timing of one
// race forced by a store wrapper.
#include "runq/store/sqlite_store.hpp"
#include "runq/webhooks/dispatcher.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

using namespace runq;
using namespace std::chrono_literals;

namespace {

// A loopback port nothing listens on: every POST to it fails at once.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Forwards to a real store, forcing one interleaving: the first delivery attempt is
// recorded only while a second read of the due deliveries (made while that delivery is
// in flight) holds what it read, and that read returns only after the record and after
// the dispatcher has let go of the delivery. That read's answer is stale: it still
// shows the delivery due, the race that used to send the same webhook twice.
class RacingStore : public store::Store {
 public:
  explicit RacingStore(std::unique_ptr<store::Store> inner) : in_(std::move(inner)) {}

  int attempts_recorded() {
    std::lock_guard l(mu_);
    return recorded_;
  }
  // The first attempt is waiting to be recorded (its POST is done).
  bool wait_attempting(std::chrono::milliseconds within) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, within, [&] { return attempting_; });
  }

  std::vector<store::WebhookDelivery> due_webhooks(std::int64_t now, int limit) override {
    auto snapshot = in_->due_webhooks(now, limit);
    std::unique_lock l(mu_);
    if (!snapshot.empty() && ++reads_seeing_it_ == 2) {
      holding_ = true;
      cv_.notify_all();
      cv_.wait_for(l, 5s, [&] { return recorded_ >= 1; });
      l.unlock();
      std::this_thread::sleep_for(200ms);  // the worker lets go of the delivery
    }
    return snapshot;
  }
  void webhook_attempted(const std::string& id, bool delivered,
                         std::optional<std::int64_t> next_at) override {
    {
      std::unique_lock l(mu_);
      if (recorded_ == 0) {
        attempting_ = true;
        cv_.notify_all();
        cv_.wait_for(l, 5s, [&] { return holding_; });
      }
    }
    in_->webhook_attempted(id, delivered, next_at);
    std::lock_guard l(mu_);
    ++recorded_;
    cv_.notify_all();
  }

  std::string kind() const override { return in_->kind(); }
  std::vector<store::InsertResult> insert(const std::vector<store::Job>& b,
                                          std::int64_t max_new) override {
    return in_->insert(b, max_new);
  }
  std::optional<store::Job> get(const std::string& id) override { return in_->get(id); }
  std::optional<store::Job> get_status(const std::string& id) override {
    return in_->get_status(id);
  }
  std::optional<store::Job> claim_next(std::int64_t now) override {
    return in_->claim_next(now);
  }
  bool finish(const store::Job& j) override { return in_->finish(j); }
  bool cancel_queued(const std::string& id, std::int64_t now,
                     const std::optional<std::string>& reason,
                     const std::string& events_json) override {
    return in_->cancel_queued(id, now, reason, events_json);
  }
  store::RemoveOutcome remove(const std::string& id) override { return in_->remove(id); }
  store::ListPage list(const store::ListQuery& q) override { return in_->list(q); }
  store::StatusCounts count_by_status(const std::optional<std::string>& o) override {
    return in_->count_by_status(o);
  }
  store::RequeueCounts requeue_running(int max_attempts) override {
    return in_->requeue_running(max_attempts);
  }
  int delete_finished_before(std::int64_t before, int limit) override {
    return in_->delete_finished_before(before, limit);
  }
  bool requeue_for_retry(const std::string& id, std::int64_t not_before) override {
    return in_->requeue_for_retry(id, not_before);
  }
  std::optional<std::int64_t> next_webhook_at() override { return in_->next_webhook_at(); }

 private:
  std::unique_ptr<store::Store> in_;
  std::mutex mu_;
  std::condition_variable cv_;
  int reads_seeing_it_ = 0;
  bool attempting_ = false;
  bool holding_ = false;
  int recorded_ = 0;
};

// A finished job whose webhook (to `url`) is due now.
void add_finished_job(store::Store& s, const std::string& id, const std::string& url) {
  store::Job j;
  j.id = id;
  j.prompt = "p";
  j.created_at_us = 1000;
  j.timeout_s = 60;
  j.request_hash = "h";
  j.webhook_url = url;
  ASSERT_EQ(s.insert({j}).at(0).outcome, store::InsertResult::Outcome::inserted);
  j.status = jobs::JobStatus::failed;
  j.error = "boom";
  ASSERT_TRUE(s.finish(j));
}

TEST(WebhookDispatcher, ADeliveryRecordedDuringAReadIsNotSentAgain) {
  RacingStore s(store::open_sqlite_store(":memory:"));
  add_finished_job(s, "run_1", "http://127.0.0.1:" + std::to_string(closed_port()) + "/h");

  webhooks::DispatcherOptions o;
  o.allow_private = true;
  o.base_delay = 3'600'000ms;  // a failed attempt is not due again during the test
  o.threads = 2;
  webhooks::Dispatcher d(s, o);
  d.start();
  ASSERT_TRUE(s.wait_attempting(5s));
  d.notify();  // a read while the delivery is in flight (the poll would make one too)
  std::this_thread::sleep_for(2500ms);  // the held read, then more than one poll
  d.stop();
  EXPECT_EQ(s.attempts_recorded(), 1);
}

}  // namespace
