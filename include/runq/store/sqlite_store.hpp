#pragma once
#include "runq/store/store.hpp"

#include <memory>
#include <string>

namespace runq::store {

// Opens (creating if needed) the SQLite database at `path` in WAL mode with
// synchronous=FULL, so a committed write survives a crash of the process or the machine.
// ":memory:" keeps everything in memory (nothing survives the process).
// Throws std::runtime_error with a readable message if the file cannot be used.
std::unique_ptr<Store> open_sqlite_store(const std::string& path);

}  // namespace runq::store
