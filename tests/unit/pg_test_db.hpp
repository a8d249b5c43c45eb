#pragma once
// PostgreSQL unit tests' helpers: the test server (RUNQ_TEST_PG_URI names it, or
// RUNQ_TEST_PG_URI_FILE a file holding it: what ctest's throwaway server writes), a fresh
// database per test, raw queries, and waiting for a condition.
#include "runq/store/postgres_store.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

namespace pg_test {

using runq::jobs::Store;
using runq::store::open_postgres_store;
using runq::store::PostgresOptions;

inline const char* server_uri() {
  static const std::string uri = [] {
    if (const char* u = std::getenv("RUNQ_TEST_PG_URI")) return std::string(u);
    std::string from_file;
    if (const char* f = std::getenv("RUNQ_TEST_PG_URI_FILE")) {
      std::ifstream in(f);
      std::getline(in, from_file);
    }
    return from_file;
  }();
  return uri.empty() ? nullptr : uri.c_str();
}
inline constexpr const char* kNoServer =
    "RUNQ_TEST_PG_URI is not set: these tests need a PostgreSQL server, e.g. "
    "RUNQ_TEST_PG_URI=postgresql://postgres@127.0.0.1:55432/postgres";

// `uri` with its database replaced by `db`.
inline std::string with_database(const std::string& uri, const std::string& db) {
  const auto authority = uri.find("://") + 3;
  const auto query = uri.find('?', authority);
  const auto path = uri.find('/', authority);
  const std::string tail = query == std::string::npos ? "" : uri.substr(query);
  const auto end_of_authority = std::min(path, query);
  return uri.substr(0, end_of_authority) + "/" + db + tail;
}

// Runs `sql` on a connection of its own; the first column of every row, joined by '\n'.
inline std::string raw_query(const std::string& uri, const std::string& sql) {
  PGconn* c = PQconnectdb(uri.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("test connection failed: " + msg);
  }
  PGresult* r = PQexec(c, sql.c_str());
  const auto status = PQresultStatus(r);
  std::string out;
  if (status == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); ++i) {
      if (i) out += '\n';
      out += PQgetisnull(r, i, 0) ? "NULL" : PQgetvalue(r, i, 0);
    }
  }
  std::string err = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    throw std::runtime_error("test query failed: " + sql + ": " + err);
  return out;
}

// A fresh database on the test server, dropped (with whatever is still connected) at the end.
struct FreshDatabase {
  std::string admin, name, uri;
  // `options`: what CREATE DATABASE takes after the name, e.g. ENCODING 'SQL_ASCII' ...
  explicit FreshDatabase(const std::string& options = "") {
    if (!server_uri()) throw std::runtime_error(kNoServer);
    admin = server_uri();
    std::random_device rd;
    name = "runq_t_" + std::to_string(rd()) + std::to_string(rd() % 1000);
    raw_query(admin, "CREATE DATABASE " + name + (options.empty() ? "" : " " + options));
    uri = with_database(admin, name);
  }
  ~FreshDatabase() {
    try {
      raw_query(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
  std::string query(const std::string& sql) const { return raw_query(uri, sql); }
  std::unique_ptr<Store> open(const std::string& node = "node-a", int pool = 4) const {
    return open_postgres_store(PostgresOptions{uri, pool, node});
  }
  // A node with its own lease length (seconds) and max_attempts.
  std::unique_ptr<Store> open_node(const std::string& node, int lease_s,
                                   int max_attempts = 3) const {
    return open_postgres_store(PostgresOptions{uri, 2, node, lease_s, max_attempts});
  }
  // A node that died: its lease ran out long ago (as if it had not been renewed).
  void expire_node(const std::string& node) const {
    query("UPDATE runq_nodes SET last_seen = now() - interval '2 hours' WHERE name = '" +
          node + "'");
  }
};

// Polls `done` until it is true or `limit` has passed; whether it became true.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace pg_test
