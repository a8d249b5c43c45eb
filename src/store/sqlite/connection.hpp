#pragma once
// Private to the SQLite store: a connection with its mutex, transactions, and one write
// waiting for its group commit.
#include "../group_commit.hpp"
#include "sql.hpp"
#include "sqlite_db.hpp"

#include <exception>
#include <functional>
#include <mutex>
#include <string>

namespace runq::store::sqlite {

inline constexpr int kBusyTimeoutMs = 5000;  // wait for another process's write lock

// A transaction on one connection: rolled back unless commit() succeeded (also when
// COMMIT itself fails, e.g. disk full), so a failed batch leaves nothing behind.
class Transaction {
 public:
  Transaction(Db& db, bool immediate) : db_(db) {
    Use(immediate ? db.cached(s_begin_immediate, "BEGIN IMMEDIATE")
                  : db.cached(s_begin, "BEGIN"))
        .run();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    Use(db_.cached(s_commit, "COMMIT")).run();
  }
  ~Transaction() {
    if (db_.in_transaction()) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  Db& db_;
};

// Whether a write must be on disk when the call returns (fsync), or may become durable
// with the next write that is.
enum class Sync { now, later };

// One write waiting for its group commit, and how it went.
struct WriteOp : GroupCommitted {
  WriteOp(std::function<void(Db&)> f, Sync s) : fn(std::move(f)), sync(s) {}
  std::function<void(Db&)> fn;
  Sync sync = Sync::now;
  std::exception_ptr error;  // set if it failed: nothing of it is stored
};

// One connection and the mutex that gives one thread at a time the use of it.
struct Conn {
  Conn(const std::string& path, int flags) : db(path, flags) {
    sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  }
  std::mutex mu;
  Db db;
};
}  // namespace runq::store::sqlite
