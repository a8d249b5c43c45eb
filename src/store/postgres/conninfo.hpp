#pragma once
// Private to the PostgreSQL store: how its connections are made — the user's URI with
// runq's own settings around it.
#include <string>
#include <vector>

namespace runq::store::postgres {

struct ConnSettings {
  // For PQconnectdbParams(..., expand_dbname = 1). Before the URI: defaults it may
  // override (timeouts, keepalives); after it: what runq needs (application_name).
  std::vector<std::string> keywords, values;
  // "host:port/dbname", without user or password: for messages and logs.
  std::string where;
  // Ends a transaction left open by a stuck client (a frozen node), so it cannot hold
  // its locks for long. Set on every session (a PostgreSQL interval).
  std::string idle_in_transaction_timeout = "60s";
};

inline constexpr int kConnectTimeoutS = 3;

// Throws std::runtime_error if `uri` is not a valid libpq connection string.
ConnSettings conn_settings(const std::string& uri, const std::string& node_name);

}  // namespace runq::store::postgres
