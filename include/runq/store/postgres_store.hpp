#pragma once
#include "runq/jobs/store.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace runq::store {

// Connections a node keeps open to PostgreSQL (--db-pool): enough for the default
// 10 workers and the I/O threads' reads without queueing behind each other.
inline constexpr int kDefaultDbPool = 8;

struct PostgresOptions {
  std::string uri;                 // libpq URI: postgresql://user:pass@host:port/db?...
  int pool_size = kDefaultDbPool;  // connections in this node's pool (>= 1)
  std::string node_name;           // this node's name, recorded on the jobs it claims
};

// "postgresql://..." or "postgres://...": a PostgreSQL store; anything else is a SQLite
// file path.
inline bool is_postgres_uri(std::string_view db) {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

// Connects to PostgreSQL and creates or migrates the schema (under an advisory lock, so
// several nodes may start together). Throws std::runtime_error with a readable message
// if the database cannot be reached or used. Once open, a lost connection makes calls
// throw jobs::StoreUnavailable(FaultReason::unreachable) until it is back; the store
// reconnects by itself.
std::unique_ptr<jobs::Store> open_postgres_store(const PostgresOptions& options);

}  // namespace runq::store
