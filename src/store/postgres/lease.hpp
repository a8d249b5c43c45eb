#pragma once
// Private to the PostgreSQL store: this node's lease on the jobs it runs, and the rescue
// of the jobs whose lease has run out.
//
// A lease is a row of runq_nodes, keyed by a lease id that is new at every start of the
// store ("name:16 random hex digits"): a restarted node never inherits the lease of its
// earlier life. A claim writes the lease id on the job (lease_node), and every later write
// of that attempt (finish, requeue_for_retry) names it: a job taken away from this node
// cannot be written by it any more (0 rows).
//
// The keeper, a thread of the store with its own connection (a busy pool never delays
// it), every max(lease / 10, 100 ms):
//   - renews the lease (last_seen = now(), by the database's clock) unless it has
//     already run out: an expired lease is never renewed;
//   - finding it gone (expired, or ended by another node's rescue), calls stop_all and
//     takes a new lease;
//   - unable to renew (the database unreachable) until lease - margin has passed since
//     the last renewal began, calls stop_all once (another node will soon run the jobs
//     again) and takes a new lease once it reaches the database again;
//   - runs the rescue (one node at a time, under an advisory lock): the jobs whose lease
//     has run out go back to queued, or fail when interrupted too often.
#include "connection.hpp"
#include "../port_names.hpp"
#include "runq/store/postgres_store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace runq::store::postgres {

// Re-queues (or fails, from max_attempts starts on, when max_attempts > 0) the running
// jobs whose lease is older than `lease` or gone, and ends those leases: one transaction
// on `c`, under a transaction advisory lock; {0, 0} if another node holds it right now
// (it is rescuing). Throws as Connection does.
RequeueCounts rescue_expired(Connection& c, std::chrono::milliseconds lease, int max_attempts);

class LeaseKeeper {
 public:
  // Connects its own connection and takes the first lease (after the schema exists);
  // throws std::runtime_error if it cannot. Then starts the thread.
  explicit LeaseKeeper(const PostgresOptions& options);
  // Stops and joins the thread. The lease is left as it is: a node that stops without
  // finishing its jobs is a dead node, and its jobs run again elsewhere once it expires.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // The current lease id: claims write it, the writes of a running attempt check it.
  std::string lease_id() const;
  // False from the moment the lease is known lost (stop_all) until a new one is taken:
  // the node claims nothing meanwhile.
  bool holds_lease() const { return holds_.load(std::memory_order_acquire); }
  std::chrono::milliseconds lease() const { return lease_; }

  // Sets the handler called (from the keeper's thread) when the lease is lost. It is
  // called with a mutex held that this setter takes too: once the setter returns, no
  // call of the old handler is running or will start. The handler must not call
  // on_lease_lost itself.
  void on_lease_lost(std::function<void()> stop_all);

 private:
  void run();
  void tick();
  void take_new_lease();
  void lease_lost(const std::string& why);
  std::chrono::steady_clock::duration next_wait() const;

  const std::string name_;
  const std::chrono::milliseconds lease_;
  const std::chrono::milliseconds interval_;  // between renewals
  const std::chrono::milliseconds margin_;    // stop this long before the lease runs out
  const int max_attempts_;
  ConnSettings settings_;  // before conn_: the connection refers to it
  std::unique_ptr<Connection> conn_;  // the keeper thread's only (after construction)

  mutable std::mutex lease_mu_;
  std::string lease_id_;  // guarded by lease_mu_
  std::atomic<bool> holds_{false};

  std::mutex handler_mu_;  // held during a call of stop_all_
  std::function<void()> stop_all_;

  // The keeper thread's own state.
  std::chrono::steady_clock::time_point renewed_;  // when the last good renewal began
  bool need_new_lease_ = false;  // the lease is lost (stop_all called): take a new one
  bool failing_ = false;         // the last renewal failed (logged once)

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;     // last: started when everything else is ready
};

}  // namespace runq::store::postgres
