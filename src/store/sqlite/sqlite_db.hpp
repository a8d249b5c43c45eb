#pragma once
// A thin RAII layer over the SQLite C API, private to src/store/.
//
//   Db    owns a sqlite3* and a cache of prepared statements (one connection, used by
//         one thread at a time: the caller holds that connection's mutex).
//   Stmt  owns a sqlite3_stmt*.
//   Use   one execution of a (cached) statement: bind, step, read columns; resets the
//         statement and clears its bindings when it goes out of scope, so a read never
//         keeps a snapshot open and a cached statement is always ready for reuse.
//
// Every SQLite error becomes a std::runtime_error carrying sqlite3_errmsg() — a storage
// fault (disk full, read-only, I/O error, cannot open) a jobs::StoreUnavailable.
#include "classify_error.hpp"

#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runq::store::sqlite {

// SQLite reads errno late (sqlite3_system_errno is often 0, or another call's errno, after
// a failed write), so for an I/O error ask the file system what is wrong with the
// database file: EROFS if it is on a read-only file system, ENOSPC if that has no free
// block left; else 0.
inline int file_system_errno(sqlite3* db) {
  const char* file = sqlite3_db_filename(db, "main");
  if (!file || !*file) return 0;  // ":memory:"
  if (::access(file, W_OK) != 0 && errno == EROFS) return EROFS;
  struct statvfs st {};
  if (::statvfs(file, &st) == 0 && st.f_blocks > 0 && st.f_bfree == 0) return ENOSPC;
  return 0;
}

// Throws the error `db` has just reported: StoreUnavailable for a storage fault,
// std::runtime_error for the rest. `message` is the whole text for the log.
[[noreturn]] inline void throw_message(sqlite3* db, std::string message) {
  if (db) {
    const int code = sqlite3_extended_errcode(db);
    int sys = sqlite3_system_errno(db);
    const int primary = code & 0xff;
    if (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN) {
      if (int fs = file_system_errno(db)) sys = fs;  // more telling than a stale errno
    }
    if (auto reason = classify_sqlite_error(code, sys)) {
      message += " (SQLite code " + std::to_string(code);
      if (sys != 0) message += ", errno " + std::to_string(sys);
      message += ")";
      throw StoreUnavailable(*reason, message);
    }
  }
  throw std::runtime_error(message);
}

[[noreturn]] inline void throw_error(sqlite3* db, std::string_view what) {
  std::string msg = "sqlite: ";
  msg += what;
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : "out of memory";
  throw_message(db, std::move(msg));
}

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, std::string_view sql) {
    // PERSISTENT: the statement is kept for the life of the connection.
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      throw_error(db, "prepare failed");
    }
  }
  Stmt(Stmt&& o) noexcept : stmt_(std::exchange(o.stmt_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(stmt_, o.stmt_);
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  sqlite3_stmt* get() const { return stmt_; }
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// One execution of a prepared statement. Parameters are 1-based, columns 0-based.
// Text is bound SQLITE_STATIC: the bound string must outlive the Use.
class Use {
 public:
  explicit Use(sqlite3_stmt* s) : s_(s) {}
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  Use& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
  Use& bind(int i, int v) { return check(sqlite3_bind_int(s_, i, v)); }
  Use& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }
  Use& bind(int i, std::string_view v) {
    // A null data() would bind SQL NULL; an empty string must stay ''.
    return check(sqlite3_bind_text(s_, i, v.data() ? v.data() : "", static_cast<int>(v.size()),
                                   SQLITE_STATIC));
  }
  Use& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Use& bind(int i, const char*) = delete;  // say what you mean: string_view or std::string
  Use& bind_null(int i) { return check(sqlite3_bind_null(s_, i)); }
  template <class T>
  Use& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // True when a row is ready, false when the statement is done; throws on error.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_error(sqlite3_db_handle(s_), "step failed");
  }
  // Runs a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }

  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  int i32(int c) const { return sqlite3_column_int(s_, c); }
  double real(int c) const { return sqlite3_column_double(s_, c); }
  std::string_view text_view(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string_view();
  }
  std::string text(int c) const { return std::string(text_view(c)); }
  std::optional<std::string> opt_text(int c) const {
    if (is_null(c)) return std::nullopt;
    return text(c);
  }
  std::optional<std::int64_t> opt_i64(int c) const {
    if (is_null(c)) return std::nullopt;
    return i64(c);
  }
  std::optional<int> opt_i32(int c) const {
    if (is_null(c)) return std::nullopt;
    return i32(c);
  }

 private:
  Use& check(int rc) {
    if (rc != SQLITE_OK) throw_error(sqlite3_db_handle(s_), "bind failed");
    return *this;
  }
  sqlite3_stmt* s_;
};

class Db {
 public:
  // Opens `path` with `flags` (SQLITE_OPEN_*). Throws naming the path.
  Db(const std::string& path, int flags) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = "cannot open SQLite database '" + path + "': " +
                        (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
      sqlite3_close_v2(db_);
      throw std::runtime_error(msg);
    }
    sqlite3_extended_result_codes(db_, 1);
  }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db() {
    cache_.clear();  // finalize statements before closing
    sqlite3_close_v2(db_);
  }

  sqlite3* get() const { return db_; }

  // Runs one or more SQL statements without results (pragmas, DDL, BEGIN/COMMIT).
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = std::string("sqlite: ") + (err ? err : sqlite3_errmsg(db_));
      sqlite3_free(err);
      throw_message(db_, std::move(msg));
    }
  }

  // The prepared statement number `key`, prepared from `sql` on first use and reused
  // after that. A given key must always come with the same SQL.
  sqlite3_stmt* cached(std::size_t key, std::string_view sql) {
    if (key >= cache_.size()) cache_.resize(key + 1);
    if (!cache_[key]) cache_[key] = Stmt(db_, sql);
    return cache_[key].get();
  }

  std::int64_t changes() const { return sqlite3_changes64(db_); }
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  sqlite3* db_ = nullptr;
  std::vector<Stmt> cache_;
};

}  // namespace runq::store::sqlite
