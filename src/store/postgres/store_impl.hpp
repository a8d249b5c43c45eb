#pragma once
// Private to the PostgreSQL store: the Store implementation. Its methods are defined by
// theme: open.cpp (connecting, the schema), job_queries.cpp (jobs), webhook_queries.cpp
// (webhooks), write_path.cpp (faults, the probe), lease.cpp (the node's lease, the
// rescue of expired nodes' jobs), cluster_queries.cpp (news between nodes: events,
// cancels; listener.cpp hears them).
//
// Connections: a pool of PostgresOptions::pool_size connections; each call takes a free
// one (waiting if there is none) for its whole duration, so a transaction stays on one
// connection. The lease keeper has a connection of its own. Statements run in autocommit unless a method needs several in one
// transaction (insert, requeue_running). Every connection keeps its prepared
// statements, so the hot paths (get_status, claim_next, finish, insert) only bind and
// execute.
#include "conninfo.hpp"
#include "lease.hpp"
#include "listener.hpp"
#include "pool.hpp"
#include "../group_commit.hpp"
#include "../port_names.hpp"
#include "runq/store/postgres_store.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace runq::store::postgres {

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(const PostgresOptions& options);
  // Stops the lease keeper; leaves the lease and the jobs as they are (see LeaseKeeper).
  ~PostgresStore() override;

  std::string kind() const override { return "postgresql"; }
  std::vector<InsertResult> insert(const std::vector<Job>& batch,
                                   std::int64_t max_new) override;
  std::optional<Job> get(const std::string& id) override;
  std::optional<Job> get_status(const std::string& id) override;
  std::optional<Job> claim_next(std::int64_t now_us) override;
  bool finish(const Job& job) override;
  bool cancel_queued(const std::string& id, std::int64_t now_us,
                     const std::optional<std::string>& reason,
                     const std::string& events_json) override;
  RemoveOutcome remove(const std::string& id) override;
  ListPage list(const ListQuery& q) override;
  StatusCounts count_by_status(const std::optional<std::string>& owner) override;
  RequeueCounts requeue_running(int max_attempts) override;
  int delete_finished_before(std::int64_t completed_before_us, int limit) override;
  bool requeue_for_retry(const Job& running, std::int64_t not_before_us) override;
  std::vector<WebhookDelivery> due_webhooks(std::int64_t now_us, int limit) override;
  void webhook_attempted(const std::string& id, bool delivered,
                         std::optional<std::int64_t> next_at_us) override;
  std::optional<std::int64_t> next_webhook_at() override;
  std::optional<StoreFault> write_fault() const override;
  void probe_write() override;
  void on_lease_lost(std::function<void()> stop_all) override;
  bool shared() const override { return true; }
  void publish(const std::vector<PublishedEvent>& events,
               const std::vector<std::string>& changed) override;
  EventsAfter events_after(const std::string& id, std::int64_t after_id) override;
  bool request_cancel(const std::string& id) override;
  void on_cluster_news(ClusterNews news) override;

  std::vector<Job> claim_many(std::int64_t now_us, int n) override;
  const std::string& node_name() const { return node_name_; }
  // Endings waiting for the one being stored (tests: to know a batch has formed).
  std::size_t endings_waiting() { return endings_.waiting(); }

 private:
  // Runs `f(Connection&)` on a pooled connection. A fault (the server unreachable, or
  // unable to write) is recorded as write_fault and rethrown; a write that succeeds
  // clears it (it reached the server and committed).
  template <class F>
  std::invoke_result_t<F&, Connection&> write(F&& f) {
    return call(/*is_write=*/true, f);
  }
  template <class F>
  std::invoke_result_t<F&, Connection&> read(F&& f) {
    return call(/*is_write=*/false, f);
  }
  template <class F>
  std::invoke_result_t<F&, Connection&> call(bool is_write, F& f) {
    Pool::Lease c = pool_.take();
    try {
      c->ensure_open();
      if constexpr (std::is_void_v<std::invoke_result_t<F&, Connection&>>) {
        f(*c);
        if (is_write) clear_fault();
      } else {
        auto result = f(*c);
        if (is_write) clear_fault();
        return result;
      }
    } catch (const StoreUnavailable& e) {
      note_fault(e);
      throw;
    }
  }

  void note_fault(const StoreUnavailable& e);
  void clear_fault();

  // A job's end waiting to be stored (endings.cpp), and what became of it.
  struct EndingOp : GroupCommitted {
    const Job* job = nullptr;
    std::int64_t completed_at_us = 0;
    bool ended = false;  // stored (false: the job was not this node's to end)
    std::exception_ptr error;
  };
  void store_endings(std::vector<EndingOp*>& batch);
  bool store_alone(const EndingOp& op);
  void store_together(std::vector<EndingOp*>& batch);

  ConnSettings settings_;  // before pool_: the connections refer to it
  std::string node_name_;
  Pool pool_;
  mutable std::mutex fault_mu_;
  std::optional<StoreFault> fault_;  // guarded by fault_mu_
  std::atomic<bool> faulted_{false};  // fault_ is set: a successful write need not lock
  GroupCommit<EndingOp> endings_;
  std::unique_ptr<LeaseKeeper> keeper_;
  std::unique_ptr<Listener> listener_;  // last: stopped first (it asks keeper_ the lease)
};

}  // namespace runq::store::postgres
