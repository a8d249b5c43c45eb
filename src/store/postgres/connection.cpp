#include "connection.hpp"

#include "../port_names.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <vector>

namespace runq::store::postgres {

namespace {

// How often a broken connection tries to reconnect: while the server is down, calls
// fail fast in between instead of each waiting for a connect attempt.
constexpr auto kReconnectInterval = std::chrono::milliseconds(500);

std::string one_line(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\t') c = ' ';
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

// The SQLSTATEs that mean the database cannot be used right now, whatever the statement:
// the connection is gone (class 08, the server shutting down or restarting: 57P01-03,
// the database dropped: 57P04, too many connections: 53300), or the server cannot write
// (disk full, a read-only server such as a standby, an I/O error).
std::optional<FaultReason> fault_of(std::string_view state) {
  if (state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03" ||
      state == "57P04" || state == "53300")
    return FaultReason::unreachable;
  if (state == "53100") return FaultReason::disk_full;
  if (state == "25006") return FaultReason::read_only;
  if (state == "58030") return FaultReason::io_error;
  return std::nullopt;
}

}  // namespace

std::int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
}

std::string Result::bytes(int row, int col) const {
  std::size_t n = 0;
  unsigned char* raw = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col)), &n);
  if (!raw) throw std::runtime_error("postgresql: cannot decode a bytea value");
  std::string out(reinterpret_cast<const char*>(raw), n);
  PQfreemem(raw);
  return out;
}

std::int64_t Result::i64(int row, int col) const {
  const std::string_view v = text_view(row, col);
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size())
    throw std::runtime_error("postgresql: not an integer: '" + std::string(v) + "'");
  return out;
}

double Result::real(int row, int col) const {
  return std::strtod(PQgetvalue(r_.get(), row, col), nullptr);  // also NaN, Infinity
}

Connection::Connection(const ConnSettings& settings) : settings_(settings) {
  std::vector<const char*> keywords, values;
  for (std::size_t i = 0; i < settings_.keywords.size(); ++i) {
    keywords.push_back(settings_.keywords[i].c_str());
    values.push_back(settings_.values[i].c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  if (conn_) PQsetNoticeReceiver(conn_, &Connection::on_notice, this);
  if (ok()) configure();
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

std::string Connection::error() const {
  return conn_ ? one_line(PQerrorMessage(conn_)) : "out of memory";
}

// Notices are not errors (e.g. "relation ... already exists, skipping"); libpq would
// print them on stderr. Except one: a FATAL that arrives while the connection is idle
// is the server closing it (shutdown, an administrator).
void Connection::on_notice(void* self, const PGresult* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  const std::string_view s = severity ? severity : "";
  if (s == "FATAL" || s == "PANIC") {
    static_cast<Connection*>(self)->closed_by_server_ = true;
    spdlog::warn("PostgreSQL closed a connection: {}",
                 one_line(PQresultErrorMessage(notice)));
  } else {
    spdlog::debug("PostgreSQL: {}", one_line(PQresultErrorMessage(notice)));
  }
}

void Connection::configure() {
  prepared_.reset();  // a new session has none
  exec(("SET idle_in_transaction_session_timeout = '" +
        settings_.idle_in_transaction_timeout + "'")
           .c_str());
}

void Connection::ensure_open() {
  if (ok()) {
    // An idle connection has nothing to read unless the server said something on its own,
    // typically that it is shutting down or has closed the connection: learn it now, not
    // from a failed write.
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) {
      // Reads what arrived (at EOF the connection turns bad) and parses it (a FATAL
      // message reaches on_notice).
      if (PQconsumeInput(conn_) == 1) PQisBusy(conn_);
    }
    if (ok() && !closed_by_server_) return;
  }
  closed_by_server_ = false;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_reconnect_) {
    throw StoreUnavailable(FaultReason::unreachable,
                           "cannot connect to PostgreSQL at " + where() + ": " + error());
  }
  if (conn_) PQreset(conn_);
  if (!ok()) {
    next_reconnect_ = now + kReconnectInterval;
    throw StoreUnavailable(FaultReason::unreachable,
                           "cannot connect to PostgreSQL at " + where() + ": " + error());
  }
  configure();
}

Result Connection::exec(const char* sql) { return check(PQexec(conn_, sql), sql); }

const Statement& Connection::prepare(Sql s) {
  const Statement& st = statement(s);
  if (!prepared_.test(s)) {
    check(PQprepare(conn_, st.name, st.sql, st.param_count,
                    reinterpret_cast<const Oid*>(st.param_types)),
          st.name);
    prepared_.set(s);
  }
  return st;
}

Result Connection::run(Sql s, const Params& params) {
  const Statement& st = prepare(s);
  return check(PQexecPrepared(conn_, st.name, params.size(), params.pointers(), nullptr,
                              nullptr, /*resultFormat=text*/ 0),
               st.name);
}

std::vector<Result> Connection::run_together(Sql s, const std::vector<Params>& each) {
  const Statement& st = prepare(s);
  // Anything irregular below leaves the connection in a state not worth untangling: it
  // is re-made before its next use.
  auto broken = [&](const char* what) {
    closed_by_server_ = true;
    return StoreUnavailable(FaultReason::unreachable,
                            "PostgreSQL at " + where() + ": " + what + ": " + error());
  };
  if (PQenterPipelineMode(conn_) != 1) throw broken("cannot enter pipeline mode");
  for (const Params& p : each)
    if (PQsendQueryPrepared(conn_, st.name, p.size(), p.pointers(), nullptr, nullptr, 0) != 1)
      throw broken("cannot send");
  if (PQpipelineSync(conn_) != 1) throw broken("cannot send");

  // Each statement's result (then a null), then the sync's. After a failed statement the
  // rest are PGRES_PIPELINE_ABORTED; the first error is the one to throw.
  std::vector<Result> out;
  std::exception_ptr error;
  for (std::size_t i = 0; i < each.size(); ++i) {
    PGresult* raw = PQgetResult(conn_);
    if (!raw) throw broken("a result is missing");
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_PIPELINE_ABORTED) {
      PQclear(raw);
    } else {
      try {
        out.push_back(check(raw, st.name));
      } catch (const StoreUnavailable&) {
        closed_by_server_ = true;
        throw;
      } catch (...) {
        if (!error) error = std::current_exception();
      }
    }
    if (PGresult* extra = PQgetResult(conn_)) {
      PQclear(extra);
      throw broken("an unexpected result");
    }
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced || PQexitPipelineMode(conn_) != 1) throw broken("the pipeline did not end");
  if (error) std::rethrow_exception(error);
  return out;
}

void Connection::rollback_if_open() noexcept {
  if (!ok() || PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
  PQclear(PQexec(conn_, "ROLLBACK"));
}

std::vector<Connection::Notification> Connection::notifications() {
  if (PQconsumeInput(conn_) != 1 || !ok() || closed_by_server_)
    throw StoreUnavailable(FaultReason::unreachable, "PostgreSQL at " + where() + ": " + error());
  std::vector<Notification> out;
  while (PGnotify* n = PQnotifies(conn_)) {
    out.push_back({n->relname, n->extra});
    PQfreemem(n);
  }
  return out;
}

Result Connection::check(PGresult* raw, std::string_view what) {
  Result r(raw);
  const ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = one_line(raw ? PQresultErrorMessage(raw) : nullptr);
  if (msg.empty()) msg = error();
  std::optional<FaultReason> fault = state ? fault_of(state) : std::nullopt;
  // libpq's own errors (no SQLSTATE) on a broken connection: it could not send or
  // receive; the server may be gone.
  if (!ok()) fault = FaultReason::unreachable;
  if (fault)
    throw StoreUnavailable(*fault, "PostgreSQL at " + where() + ": " + msg);
  throw SqlError("postgresql: " + msg + " (" + std::string(what.substr(0, 60)) + ")",
                 state ? state : "");
}

}  // namespace runq::store::postgres
