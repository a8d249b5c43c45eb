// Opening a PostgreSQL store: the pool's connections and the schema.
#include "schema.hpp"
#include "store_impl.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace runq::store {

namespace postgres {

PostgresStore::PostgresStore(const PostgresOptions& options)
    : settings_(conn_settings(options.uri, options.node_name)), node_name_(options.node_name) {
  const int size = std::max(options.pool_size, 1);
  for (int i = 0; i < size; ++i) {
    std::unique_ptr<Connection> c;
    try {
      c = std::make_unique<Connection>(settings_);
    } catch (const std::exception& e) {  // connected, but its session could not be set up
      throw std::runtime_error("cannot use PostgreSQL at " + settings_.where + ": " +
                               e.what());
    }
    if (!c->ok())
      throw std::runtime_error("cannot connect to PostgreSQL at " + settings_.where + ": " +
                               c->error());
    if (i == 0) {
      try {
        migrate(*c);
      } catch (const std::exception& e) {
        throw std::runtime_error("cannot use PostgreSQL database at " + settings_.where +
                                 ": " + e.what());
      }
    }
    pool_.add(std::move(c));
  }
  try {
    keeper_ = std::make_unique<LeaseKeeper>(options);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot use PostgreSQL database at " + settings_.where +
                             ": cannot take a lease: " + e.what());
  }
  listener_ = std::make_unique<Listener>(conn_settings(options.uri, options.node_name + "/listen"),
                                         [this] { return keeper_->lease_id(); });
  spdlog::info("postgresql store at {}: {} connections, node '{}', lease {} ({} s)",
               settings_.where, size, node_name_, keeper_->lease_id(),
               keeper_->lease().count() / 1000);
}

PostgresStore::~PostgresStore() = default;

void PostgresStore::on_lease_lost(std::function<void()> stop_all) {
  keeper_->on_lease_lost(std::move(stop_all));
}

}  // namespace postgres

std::unique_ptr<jobs::Store> open_postgres_store(const PostgresOptions& options) {
  return std::make_unique<postgres::PostgresStore>(options);
}

}  // namespace runq::store
