#pragma once
// Private to the SQLite store: what opening a database file checks first, and the
// operator-facing errors when it finds something wrong.
#include "runq/store/sqlite_store.hpp"
#include "sqlite_db.hpp"

#include <stdexcept>
#include <string>

namespace runq::store::sqlite {

// The last connection to close a WAL database checkpoints it and removes its -wal
// file; one left behind with frames in it means a process died with the file open
// (or another process has it open now).
bool left_a_wal(const std::string& path);

// The file, or the directory its -wal and -shm files go to, cannot be written (a
// read-only file system, or no permission).
bool read_only_path(const std::string& path);

// runq does not start on a database it cannot write (it would refuse every submit and
// could never record a job's end): the operator is told what to do instead.
std::runtime_error read_only_at_start(const std::string& path);

DamagedDatabase damaged(const std::string& path, const std::string& finding);
DamagedDatabase not_a_database(const std::string& path, const std::string& what);

// PRAGMA quick_check: reads every page once (O(size of the file)); a damaged file is
// refused (DamagedDatabase) before anything is written to it.
void quick_check(Db& db, const std::string& path);

}  // namespace runq::store::sqlite
