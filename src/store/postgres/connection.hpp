#pragma once
// Private to the PostgreSQL store: one libpq connection (reconnected when it breaks), its
// prepared statements, and the results it returns.
#include "conninfo.hpp"
#include "params.hpp"
#include "sql.hpp"

#include <libpq-fe.h>

#include <bitset>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <string_view>
#include <utility>

namespace runq::store::postgres {

// An SQL error that is no storage fault (a constraint, a deadlock, a bug): the caller's
// 500. `sqlstate` says which (e.g. "23505" unique violation, "40P01" deadlock).
class SqlError : public std::runtime_error {
 public:
  SqlError(const std::string& message, std::string sqlstate)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }
  // A deadlock or serialization failure: the transaction was rolled back and may simply
  // be run again.
  bool retryable() const { return sqlstate_ == "40P01" || sqlstate_ == "40001"; }

 private:
  std::string sqlstate_;
};

// A result read as text (text-format results), by row and column.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  PGresult* get() const { return r_.get(); }
  int rows() const { return PQntuples(r_.get()); }
  // Rows changed by an INSERT, UPDATE or DELETE.
  std::int64_t affected() const;

  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) == 1; }
  std::string_view text_view(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col),
            static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
  }
  std::string text(int row, int col) const { return std::string(text_view(row, col)); }
  // A bytea column's bytes (its text form, "\\x..." hex, decoded).
  std::string bytes(int row, int col) const;
  std::optional<std::string> opt_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return text(row, col);
  }
  std::int64_t i64(int row, int col) const;
  int i32(int row, int col) const { return static_cast<int>(i64(row, col)); }
  double real(int row, int col) const;
  std::optional<std::int64_t> opt_i64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return i64(row, col);
  }
  std::optional<int> opt_i32(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return i32(row, col);
  }

 private:
  struct Free {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Free> r_;
};

// One connection; one thread at a time (the pool sees to that). Every call throws
// StoreUnavailable when the server cannot be reached (the connection is then rebuilt on
// its next use) or reports a storage fault, and std::runtime_error for any other error.
class Connection {
 public:
  // Connects; a failure leaves it broken (ok() false, error() says why).
  explicit Connection(const ConnSettings& settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool ok() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const;  // libpq's last message, one line
  const std::string& where() const { return settings_.where; }

  // Before each use: reconnects a connection that broke (or that the server closed
  // while it sat idle in the pool), at most every kReconnectInterval. Throws
  // StoreUnavailable if the server cannot be reached.
  void ensure_open();

  // A statement without parameters (several, separated by ';', are allowed).
  Result exec(const char* sql);
  // A prepared statement (prepared on this connection at its first use).
  Result run(Sql s, const Params& params);
  // The prepared statement `s` once for each of `each`, all in one round trip and one
  // transaction (libpq's pipeline mode: the statements before a sync are one implicit
  // transaction). All or nothing: if one fails, none of them is kept and its error is
  // thrown. Outside a transaction only.
  std::vector<Result> run_together(Sql s, const std::vector<Params>& each);
  // Rolls back a transaction left open by a failed call; never throws.
  void rollback_if_open() noexcept;

  // LISTEN: the socket to wait on, and the notifications that have arrived (it reads what
  // the socket holds). Throws StoreUnavailable if the connection broke.
  struct Notification {
    std::string channel, payload;
  };
  int socket() const { return PQsocket(conn_); }
  std::vector<Notification> notifications();

 private:
  static void on_notice(void* self, const PGresult* notice);
  void configure();
  const Statement& prepare(Sql s);
  Result check(PGresult* r, std::string_view what);

  const ConnSettings& settings_;
  PGconn* conn_ = nullptr;
  std::bitset<s_statement_count> prepared_;
  std::chrono::steady_clock::time_point next_reconnect_{};
  bool closed_by_server_ = false;  // it said FATAL while idle: re-make before next use
};

// A transaction on one connection: rolled back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Connection& c, const char* begin = "BEGIN") : c_(c) { c_.exec(begin); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    done_ = true;  // a failed COMMIT has ended the transaction too
    c_.exec("COMMIT");
  }
  ~Transaction() {
    if (!done_) c_.rollback_if_open();
  }

 private:
  Connection& c_;
  bool done_ = false;
};

}  // namespace runq::store::postgres
