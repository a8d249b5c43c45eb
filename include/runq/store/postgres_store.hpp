#pragma once
#include "runq/jobs/defaults.hpp"
#include "runq/jobs/store.hpp"

#include <algorithm>
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
  // Several nodes: this node's lease on the jobs it runs lasts this long unless renewed
  // (>= 1); the jobs of a node whose lease ran out run again elsewhere, or fail once they
  // have started max_attempts times (> 0; 0: never).
  int lease_seconds = 30;
  int max_attempts = jobs::defaults::kMaxAttempts;
};

// "postgresql://..." or "postgres://...": a PostgreSQL store; anything else is a SQLite
// file path.
inline bool is_postgres_uri(std::string_view db) {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

// The URI with its password (user:PASSWORD@ or ?password=/&password=) replaced by
// "***": what a log line may show.
inline std::string redact_password(std::string_view uri) {
  std::string out(uri);
  const std::size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const std::size_t start = scheme + 3;
    const std::size_t end = std::min(out.find_first_of("/?", start), out.size());
    const std::size_t at = out.rfind('@', end - 1);
    if (at != std::string::npos && at >= start) {
      const std::size_t colon = out.find(':', start);
      if (colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (std::size_t p = out.find("password="); p != std::string::npos;
       p = out.find("password=", p + 1)) {
    if (p == 0 || (out[p - 1] != '?' && out[p - 1] != '&')) continue;
    const std::size_t value = p + 9;
    const std::size_t stop = std::min(out.find('&', value), out.size());
    out.replace(value, stop - value, "***");
  }
  return out;
}

// Connects to PostgreSQL and creates or migrates the schema (under an advisory lock, so
// several nodes may start together). Throws std::runtime_error with a readable message
// if the database cannot be reached or used. Once open, a lost connection makes calls
// throw jobs::StoreUnavailable(FaultReason::unreachable) until it is back; the store
// reconnects by itself.
std::unique_ptr<jobs::Store> open_postgres_store(const PostgresOptions& options);

}  // namespace runq::store
