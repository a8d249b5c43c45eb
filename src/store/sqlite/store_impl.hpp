#pragma once
// Private to the SQLite store: the Store implementation. Its methods are defined by
// theme: open.cpp (opening, start-up checks), job_queries.cpp (jobs), webhook_queries.cpp
// (webhooks), write_path.cpp (group commit, storage faults, reader pool).
//
// Connections: one write connection does every write (SQLite allows one writer at a
// time anyway); writes that arrive together share one transaction and one fsync (group
// commit, group_commit.hpp). For a database file, reads go to a small pool of reader
// connections, each with its own mutex: WAL lets them read the last committed state
// while a write batch is in progress, so a status GET never waits behind a group
// commit. ":memory:" is private to its connection, so there the single connection does
// everything.
//
// Every connection keeps its prepared statements (Db::cached), so the hot paths
// (get_status, claim_next, finish) only bind and step.
#include "connection.hpp"
#include "runq/store/sqlite_store.hpp"

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace runq::store::sqlite {

inline constexpr std::size_t kReaderConnections = 4;  // reader pool size (file databases)

class SqliteStore final : public Store {
 public:
  SqliteStore(const std::string& path, StartupCheck check);

  std::string kind() const override { return "sqlite"; }
  std::vector<InsertResult> insert(const std::vector<Job>& batch,
                                   std::int64_t max_new) override;
  std::optional<Job> get(const std::string& id) override;
  std::optional<Job> get_status(const std::string& id) override;
  std::optional<Job> claim_next(std::int64_t now_us) override;
  std::vector<Job> claim_many(std::int64_t now_us, int max) override;
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

 private:
  // Runs the write `f(Db&)` on the writer connection, in a batch with the writes of
  // other threads (group commit), and returns when its batch has committed.
  template <class F>
  std::invoke_result_t<F&, Db&> write(F&& f) {
    return write(Sync::now, std::forward<F>(f));
  }
  template <class F>
  std::invoke_result_t<F&, Db&> write(Sync sync, F&& f) {
    using R = std::invoke_result_t<F&, Db&>;
    if constexpr (std::is_void_v<R>) {
      WriteOp op{[&](Db& db) { f(db); }, sync};
      run_write(op);
    } else {
      std::optional<R> result;
      WriteOp op{[&](Db& db) { result.emplace(f(db)); }, sync};
      run_write(op);
      return std::move(*result);
    }
  }

  void run_write(WriteOp& op);
  void commit_batch(std::vector<WriteOp*>& batch);
  void note_fault(const StoreUnavailable& e);
  void clear_fault();

  // Runs `f(Db&)` on a reader connection (the writer for ":memory:"): a free one if
  // there is one, else waits for one picked round-robin.
  template <class F>
  std::invoke_result_t<F&, Db&> read(F&& f) {
    if (readers_.empty()) {
      std::lock_guard lock(writer_->mu);
      return f(writer_->db);
    }
    const std::size_t n = readers_.size();
    const std::size_t start = next_reader_.fetch_add(1, std::memory_order_relaxed) % n;
    for (std::size_t i = 0; i < n; ++i) {
      Conn& c = *readers_[(start + i) % n];
      std::unique_lock lock(c.mu, std::try_to_lock);
      if (lock.owns_lock()) return f(c.db);
    }
    Conn& c = *readers_[start];
    std::lock_guard lock(c.mu);
    return f(c.db);
  }

  // Declared first, destroyed last: the writer closes after the readers, so it is the
  // one that checkpoints the WAL on close.
  std::unique_ptr<Conn> writer_;
  bool writer_syncs_ = true;  // PRAGMA synchronous of the writer: FULL, or NORMAL
  GroupCommit<WriteOp> batches_;
  std::vector<std::unique_ptr<Conn>> readers_;
  std::atomic<std::size_t> next_reader_{0};
  mutable std::mutex fault_mu_;
  std::optional<StoreFault> fault_;  // guarded by fault_mu_
};

}  // namespace runq::store::sqlite
