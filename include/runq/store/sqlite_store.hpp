#pragma once
#include "runq/store/store.hpp"

#include <memory>
#include <stdexcept>
#include <string>

namespace runq::store {

// Opens (creating if needed) the SQLite database at `path` in WAL mode with
// synchronous=FULL, so a committed write survives a crash of the process or the machine.
// ":memory:" keeps everything in memory (nothing survives the process).
// Throws std::runtime_error with a readable message if the file cannot be used.
// A file that fails `PRAGMA quick_check` (or that SQLite reports as malformed, or that
// has no SQLite header) throws DamagedDatabase, whose message says what to do about it;
// nothing is written to it.
std::unique_ptr<Store> open_sqlite_store(const std::string& path);

// The database file is damaged. what(): the whole message for the operator.
class DamagedDatabase : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace runq::store
