#pragma once
#include "runq/jobs/store.hpp"

#include <memory>
#include <stdexcept>
#include <string>

namespace runq::store {

// When opening checks the whole file with PRAGMA quick_check (it reads every page:
// about 1.5 s per GB here).
enum class StartupCheck {
  full,         // every time
  after_crash,  // only if the last process using the file did not close it (its -wal
                // file is still there, non-empty); after a clean stop, not at all
  off,          // never
};

// Opens (creating if needed) the SQLite database at `path` in WAL mode with
// synchronous=FULL, so a committed write survives a crash of the process or the machine.
// ":memory:" keeps everything in memory (nothing survives the process).
// Throws std::runtime_error with a readable message if the file cannot be used.
// A file that fails `PRAGMA quick_check` (or that SQLite reports as malformed, or that
// has no SQLite header) throws DamagedDatabase, whose message says what to do about it;
// nothing is written to it.
std::unique_ptr<jobs::Store> open_sqlite_store(const std::string& path,
                                         StartupCheck check = StartupCheck::full);

// The database file is damaged. what(): the whole message for the operator.
class DamagedDatabase : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace runq::store
