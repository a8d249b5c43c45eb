#pragma once
// Private to the SQLite store: which SQLite errors are storage faults.
#include "../port_names.hpp"

#include <optional>

namespace runq::store::sqlite {

// Classifies an SQLite (extended) result code, with the OS errno SQLite saw
// (sqlite3_system_errno), into a fault reason; nullopt for every other error
// (constraint, busy, misuse, corrupt, ...). SQLITE_FULL → disk_full; SQLITE_READONLY*
// → read_only; SQLITE_IOERR* → read_only if errno is EROFS, disk_full if ENOSPC or
// EDQUOT, else io_error; SQLITE_CANTOPEN* → cannot_open (read_only for EROFS).
std::optional<FaultReason> classify_sqlite_error(int extended_code, int system_errno);

}  // namespace runq::store::sqlite
