// The PostgreSQL store's lease: its keeper thread (renewal, loss) and the rescue of jobs
// whose lease has run out. See lease.hpp.
#include "lease.hpp"

#include "runq/util/time.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>

namespace runq::store::postgres {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string new_lease_id(const std::string& name) {
  std::random_device rd;
  const unsigned long long bits =
      (static_cast<unsigned long long>(rd()) << 32) ^ static_cast<unsigned long long>(rd());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", bits);
  return name + ":" + hex;
}

// The pool's settings, for the keeper's own connection: another application_name (the
// pool's connections are "runq/<name>"), and bounded waits that fit the lease: a renewal
// stuck on a vanished server or on a lock must not outlast it, and a rescue transaction
// of a node frozen halfway (SIGSTOP, a VM pause) must not keep the rescue lock from the
// other nodes. (Set before the user's URI, which may override them.)
ConnSettings keeper_settings(const PostgresOptions& o, milliseconds lease) {
  ConnSettings s = conn_settings(o.uri, o.node_name + "/lease");
  const auto bound = std::to_string(std::max<long long>(lease.count() / 3, 300));
  s.idle_in_transaction_timeout = bound + "ms";
  for (std::size_t i = 0; i < s.keywords.size(); ++i) {
    if (s.keywords[i] == "tcp_user_timeout") s.values[i] = bound;
  }
  const auto uri = std::find(s.keywords.begin(), s.keywords.end(), "dbname");
  const auto at = uri - s.keywords.begin();
  s.keywords.insert(uri, "options");
  s.values.insert(s.values.begin() + at, "-c statement_timeout=" + bound);
  return s;
}

}  // namespace

RequeueCounts rescue_expired(Connection& c, milliseconds lease, int max_attempts) {
  RequeueCounts counts;
  const std::int64_t ms = lease.count();
  Transaction txn(c);
  if (c.run(s_rescue_lock, {}).text_view(0, 0) != "t") return counts;  // another node is
  Result gone = c.run(s_rescue_expire, Params().add(ms));
  for (int i = 0; i < gone.rows(); ++i)
    spdlog::warn("node '{}' did not renew its lease {} within {} ms: the lease has ended",
                 gone.text_view(i, 0), gone.text_view(i, 1), lease.count());
  const std::int64_t now = util::now_us();
  nlohmann::json changed = nlohmann::json::array();
  auto ids = [&changed](const Result& r) {
    for (int i = 0; i < r.rows(); ++i) changed.push_back(r.text(i, 0));
    return r.rows();
  };
  const int cancelled = ids(c.run(s_rescue_cancel, Params().add(now).add(ms)));
  if (max_attempts > 0)
    counts.failed = ids(c.run(s_rescue_fail, Params().add(now).add(max_attempts).add(ms)));
  counts.requeued = ids(c.run(s_rescue_requeue, Params().add(ms)));
  // Streams and waiters on every node learn of these jobs; idle workers wake up.
  if (!changed.empty()) c.run(s_notify_changed, Params().add(changed.dump()));
  if (counts.requeued > 0) c.run(s_notify_queued, Params().add(counts.requeued));
  txn.commit();
  if (cancelled > 0)
    spdlog::warn("cancelled {} jobs of expired nodes (a cancel had been asked for)", cancelled);
  if (counts.requeued > 0)
    spdlog::warn("re-queued {} jobs of expired nodes (their lease ran out)", counts.requeued);
  if (counts.failed > 0)
    spdlog::warn("failed {} jobs of expired nodes: they had started {} times already",
                 counts.failed, max_attempts);
  return counts;
}

LeaseKeeper::LeaseKeeper(const PostgresOptions& o)
    : name_(o.node_name),
      lease_(milliseconds(std::max(o.lease_seconds, 1) * 1000LL)),
      interval_(std::max(lease_ / 10, milliseconds(100))),
      margin_(std::max(lease_ / 10, milliseconds(200))),
      max_attempts_(o.max_attempts),
      settings_(keeper_settings(o, lease_)) {
  conn_ = std::make_unique<Connection>(settings_);
  if (!conn_->ok())
    throw std::runtime_error("cannot connect to PostgreSQL at " + settings_.where + ": " +
                             conn_->error());
  renewed_ = steady_clock::now();
  take_new_lease();
  thread_ = std::thread([this] { run(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::string LeaseKeeper::lease_id() const {
  std::lock_guard lock(lease_mu_);
  return lease_id_;
}

void LeaseKeeper::on_lease_lost(std::function<void()> stop_all) {
  std::lock_guard lock(handler_mu_);
  stop_all_ = std::move(stop_all);
}

void LeaseKeeper::take_new_lease() {
  std::string id = new_lease_id(name_);
  conn_->run(s_node_insert, Params().add(id).add(name_));
  {
    std::lock_guard lock(lease_mu_);
    lease_id_ = std::move(id);
  }
  need_new_lease_ = false;
  holds_.store(true, std::memory_order_release);
}

void LeaseKeeper::lease_lost(const std::string& why) {
  spdlog::error("node '{}': {}; stopping the jobs it runs (another node runs them again)",
                name_, why);
  need_new_lease_ = true;
  holds_.store(false, std::memory_order_release);
  std::lock_guard lock(handler_mu_);
  if (!stop_all_) return;
  try {
    stop_all_();
  } catch (const std::exception& e) {
    spdlog::error("node '{}': stopping the jobs of a lost lease failed: {}", name_, e.what());
  }
}

void LeaseKeeper::tick() {
  const auto began = steady_clock::now();
  try {
    conn_->ensure_open();
    if (need_new_lease_) {
      take_new_lease();
      spdlog::warn("node '{}': took a new lease ({})", name_, lease_id());
    } else if (conn_->run(s_node_renew, Params().add(lease_id()).add(std::int64_t{
                                            lease_.count()}))
                   .affected() != 1) {
      lease_lost("its lease " + lease_id() + " ran out or was ended by another node");
      take_new_lease();
    }
    renewed_ = began;
    if (failing_) spdlog::warn("node '{}': lease renewed again", name_);
    failing_ = false;
  } catch (const std::exception& e) {
    if (!failing_)
      spdlog::warn("node '{}': cannot renew its lease: {}", name_, e.what());
    failing_ = true;
    if (!need_new_lease_ && steady_clock::now() - renewed_ >= lease_ - margin_) {
      lease_lost("could not renew its lease for " +
                 std::to_string(std::chrono::duration_cast<milliseconds>(
                                    steady_clock::now() - renewed_)
                                    .count()) +
                 " ms (" + e.what() + ")");
    }
    return;
  }
  try {
    rescue_expired(*conn_, lease_, max_attempts_);
  } catch (const std::exception& e) {
    spdlog::warn("node '{}': re-queueing the jobs of expired nodes failed: {}", name_,
                 e.what());
  }
}

// The interval, but never past the moment the lease would have to be given up.
steady_clock::duration LeaseKeeper::next_wait() const {
  if (need_new_lease_) return interval_;
  const auto until_give_up = renewed_ + (lease_ - margin_) - steady_clock::now();
  return std::clamp<steady_clock::duration>(until_give_up, milliseconds(10), interval_);
}

// The lease was just taken (and the service rescues at start-up): renewal begins after
// the first interval.
void LeaseKeeper::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, next_wait(), [&] { return stopping_; })) {
    lock.unlock();
    tick();
    lock.lock();
  }
}

}  // namespace runq::store::postgres
