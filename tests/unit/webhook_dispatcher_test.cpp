// Tests of the webhook dispatcher against a real SQLite store, with the timing of one
// race forced by a store wrapper.
#include "forwarding_store.hpp"
#include "runq/store/sqlite_store.hpp"
#include "runq/webhooks/dispatcher.hpp"
#include "runq/webhooks/url_policy.hpp"

#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
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
class RacingStore : public racetest::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  int attempts_recorded() {
    std::lock_guard l(mu_);
    return recorded_;
  }
  // The first attempt is waiting to be recorded (its POST is done).
  bool wait_attempting(std::chrono::milliseconds within) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, within, [&] { return attempting_; });
  }

  std::vector<jobs::WebhookDelivery> due_webhooks(std::int64_t now, int limit) override {
    auto snapshot = inner().due_webhooks(now, limit);
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
    inner().webhook_attempted(id, delivered, next_at);
    std::lock_guard l(mu_);
    ++recorded_;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int reads_seeing_it_ = 0;
  bool attempting_ = false;
  bool holding_ = false;
  int recorded_ = 0;
};

// A finished job whose webhook (to `url`) is due now.
void add_finished_job(jobs::Store& s, const std::string& id, const std::string& url) {
  jobs::Job j;
  j.id = id;
  j.prompt = "p";
  j.created_at_us = 1000;
  j.timeout_s = 60;
  j.request_hash = "h";
  j.webhook_url = url;
  ASSERT_EQ(s.insert({j}).at(0).outcome, jobs::InsertResult::Outcome::inserted);
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

namespace {

// Records the first delivery attempt and lets a test wait for it.
class RecordingStore : public racetest::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  struct Attempt {
    bool delivered = false;
    std::optional<std::int64_t> next_at;
  };
  std::optional<Attempt> wait_attempt(std::chrono::milliseconds within) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, within, [&] { return first_.has_value(); });
    return first_;
  }
  void webhook_attempted(const std::string& id, bool delivered,
                         std::optional<std::int64_t> next_at) override {
    inner().webhook_attempted(id, delivered, next_at);
    std::lock_guard l(mu_);
    if (!first_) first_ = Attempt{delivered, next_at};
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Attempt> first_;
};

}  // namespace

// A host NAME passes the submit check (no DNS on the I/O thread); at delivery every
// address it resolves to is checked before connecting. This machine's own name resolves
// to a loopback or private address (127.0.1.1, a container's 172.17.x.x): refused, not
// retried, and nothing connects to the receiver listening on every local address.
TEST(WebhookDispatcher, ANameResolvingToAPrivateAddressIsRefusedAtDelivery) {
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(name, nullptr, &hints, &res) != 0) GTEST_SKIP() << name << " unresolved";
  bool all_private = true;
  for (addrinfo* p = res; p; p = p->ai_next)
    if (!webhooks::refuse_address(*p->ai_addr)) all_private = false;
  ::freeaddrinfo(res);
  if (!all_private) GTEST_SKIP() << name << " resolves to a public address";
  const std::string url_host = name;
  ASSERT_EQ(webhooks::refuse_url("http://" + url_host + ":1/h", false), std::nullopt)
      << "the name must pass the submit check for this test to mean anything";

  // The receiver: listening on every IPv4 address, never accepting.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  ASSERT_EQ(::listen(listener, 8), 0);
  const std::string url = "http://" + url_host + ":" + std::to_string(ntohs(a.sin_port)) + "/h";

  RecordingStore s(store::open_sqlite_store(":memory:"));
  add_finished_job(s, "run_1", url);
  webhooks::DispatcherOptions o;
  o.request_timeout = 1000ms;
  webhooks::Dispatcher d(s, o);
  d.start();
  const auto attempt = s.wait_attempt(10s);
  d.stop();
  ASSERT_TRUE(attempt) << "no attempt recorded";
  EXPECT_FALSE(attempt->delivered);
  EXPECT_EQ(attempt->next_at, std::nullopt) << "a refused delivery is not retried";
  // No connection was made (a connect would sit in the accept queue).
  const int accepted = ::accept(listener, nullptr, nullptr);
  const int err = errno;
  EXPECT_LT(accepted, 0);
  EXPECT_TRUE(err == EAGAIN || err == EWOULDBLOCK) << err;
  if (accepted >= 0) ::close(accepted);
  ::close(listener);
}
