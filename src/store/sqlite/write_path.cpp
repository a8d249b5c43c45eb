// The SQLite store's write path (group commit, storage faults) and its reader pool.
#include "store_impl.hpp"

#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace runq::store::sqlite {

void SqliteStore::run_write(WriteOp& op) {
  batches_.run(op, [this](std::vector<WriteOp*>& batch) { commit_batch(batch); });
  if (op.error) std::rethrow_exception(op.error);
}

// Runs a batch of writes in one transaction: one fsync for all (none if no write in it
// needs one). With several writes, each runs under a savepoint, so one that fails for
// its own reasons (a constraint, a bug) is undone alone and only its caller gets the
// error. A storage fault (disk full, read-only, I/O error) or a failed COMMIT undoes
// the whole batch and every caller gets it: nothing of the batch is stored.
// write_fault() is kept here: a fault is recorded; a batch that changed a row clears
// it. (One that changed nothing, e.g. a claim with nothing queued, may not have
// touched the disk, so it proves nothing.)
void SqliteStore::commit_batch(std::vector<WriteOp*>& batch) {
  std::lock_guard lock(writer_->mu);
  Db& db = writer_->db;
  const bool several = batch.size() > 1;
  const bool sync = std::any_of(batch.begin(), batch.end(),
                                [](const WriteOp* op) { return op->sync == Sync::now; });
  const std::int64_t before = sqlite3_total_changes64(db.get());
  try {
    if (sync != writer_syncs_) {
      Use(sync ? db.cached(s_sync_full, "PRAGMA synchronous = FULL")
               : db.cached(s_sync_normal, "PRAGMA synchronous = NORMAL"))
          .run();
      writer_syncs_ = sync;
    }
    Transaction txn(db, /*immediate=*/true);
    for (WriteOp* op : batch) {
      if (several) Use(db.cached(s_savepoint, "SAVEPOINT w")).run();
      try {
        op->fn(db);
      } catch (const StoreUnavailable&) {
        throw;
      } catch (...) {
        op->error = std::current_exception();
        // Alone, or SQLite rolled the whole transaction back: nothing to keep.
        if (!several || !db.in_transaction()) throw;
        Use(db.cached(s_rollback_to, "ROLLBACK TO w")).run();
      }
      if (several) Use(db.cached(s_release, "RELEASE w")).run();
    }
    txn.commit();
    if (sqlite3_total_changes64(db.get()) != before) clear_fault();
  } catch (const StoreUnavailable& e) {
    note_fault(e);
    for (WriteOp* op : batch) op->error = std::current_exception();
  } catch (...) {
    for (WriteOp* op : batch)
      if (!op->error) op->error = std::current_exception();
  }
}

void SqliteStore::note_fault(const StoreUnavailable& e) {
  std::lock_guard lock(fault_mu_);
  if (fault_ && fault_->reason == e.reason()) {
    fault_->message = e.what();
    return;
  }
  spdlog::error("job store is not writable ({}): {}; submits get 503 until it is, "
                "reads go on, writes are retried",
                describe(e.reason()), e.what());
  fault_ = StoreFault{e.reason(), e.what(), fault_ ? fault_->since_us : util::now_us()};
}

void SqliteStore::clear_fault() {
  std::lock_guard lock(fault_mu_);
  if (!fault_) return;
  spdlog::warn("job store is writable again (it was not for {:.1f} s: {})",
               static_cast<double>(util::now_us() - fault_->since_us) / 1e6,
               describe(fault_->reason));
  fault_.reset();
}

std::optional<StoreFault> SqliteStore::write_fault() const {
  std::lock_guard lock(fault_mu_);
  return fault_;
}

void SqliteStore::probe_write() {
  write([&](Db& db) {
    Use(db.cached(s_probe,
                  "INSERT INTO store_probe (id, at) VALUES (1, ?1) "
                  "ON CONFLICT (id) DO UPDATE SET at = excluded.at"))
        .bind(1, util::now_us())
        .run();
  });
}


}  // namespace runq::store::sqlite
