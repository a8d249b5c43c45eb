#pragma once
// Private to the SQLite store: the schema, versioned with PRAGMA user_version.
#include "sqlite_db.hpp"

namespace runq::store::sqlite {

inline constexpr int kSchemaVersion = 3;  // PRAGMA user_version of this code's schema

// Creates or upgrades the schema to kSchemaVersion (one transaction). Throws if the
// file's schema is newer than this code's.
void migrate(Db& db);

}  // namespace runq::store::sqlite
