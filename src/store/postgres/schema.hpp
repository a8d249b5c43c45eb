#pragma once
// Private to the PostgreSQL store: creating and migrating its schema.
#include "connection.hpp"

namespace runq::store::postgres {

inline constexpr int kSchemaVersion = 3;

// Creates or migrates the schema to kSchemaVersion, under a session advisory lock so that
// nodes starting together migrate one after the other (the later ones find it done).
// Throws std::runtime_error if the database's schema is newer than this runq knows.
void migrate(Connection& c);

}  // namespace runq::store::postgres
