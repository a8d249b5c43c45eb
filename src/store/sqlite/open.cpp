// Opening a SQLite store: the file's checks, WAL mode, the schema, the reader pool.
#include "schema.hpp"
#include "startup_checks.hpp"
#include "store_impl.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

namespace runq::store {

namespace sqlite {

SqliteStore::SqliteStore(const std::string& path, StartupCheck check) {
  const bool memory = path.empty() || path == ":memory:";
  // Looked at before opening: our own open may create the -wal file.
  const bool unclean = !memory && left_a_wal(path);
  try {
    writer_ = std::make_unique<Conn>(
        path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
    Db& db = writer_->db;
    // The first statement reads the file: a file that is not a database fails here.
    if (!memory) {
      std::string mode;
      {
        sqlite::Stmt st(db.get(), "PRAGMA journal_mode = WAL");
        Use u(st.get());
        if (u.step()) mode = u.text(0);
      }
      if (mode != "wal") {
        spdlog::warn("sqlite store {}: journal_mode is '{}', not 'wal'", path, mode);
      }
      if (check == StartupCheck::full || (check == StartupCheck::after_crash && unclean)) {
        const auto t0 = std::chrono::steady_clock::now();
        quick_check(db, path);
        spdlog::info("sqlite store {}: quick_check ok in {:.2f} s", path,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                         .count());
      } else if (check == StartupCheck::after_crash && std::filesystem::file_size(path) > 0) {
        spdlog::info("sqlite store {}: closed cleanly last time; quick_check skipped "
                     "(--check-db after-crash)",
                     path);
      }
    }
    if (sqlite3_db_readonly(db.get(), "main") == 1) throw read_only_at_start(path);
    db.exec("PRAGMA synchronous = FULL");
    // Checkpoint every ~40 MB of WAL instead of SQLite's 4 MB: a checkpoint writes each
    // page once however often it changed, and the hot pages (queue and status indexes)
    // change with every job. Measured: about 7 % more jobs per second end to end.
    db.exec("PRAGMA wal_autocheckpoint = 10000");
    migrate(db);
    if (!memory) {
      for (std::size_t i = 0; i < kReaderConnections; ++i) {
        auto c = std::make_unique<Conn>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
        c->db.exec("PRAGMA query_only = 1");
        readers_.push_back(std::move(c));
      }
    }
  } catch (const DamagedDatabase&) {
    throw;
  } catch (const StoreUnavailable& e) {
    if (e.reason() == FaultReason::read_only || (!memory && read_only_path(path)))
      throw read_only_at_start(path);
    throw std::runtime_error("cannot open SQLite database '" + path + "': " +
                             std::string(describe(e.reason())) + " (" + e.what() + ")");
  } catch (const std::exception& e) {
    std::string what = e.what();
    const int code = writer_ ? sqlite3_extended_errcode(writer_->db.get()) & 0xff : SQLITE_OK;
    // SQLite found a malformed page on its own (e.g. while reading the schema).
    if (code == SQLITE_CORRUPT) throw damaged(path, what);
    // No SQLite header: the wrong file, or runq's file with its first page destroyed.
    if (code == SQLITE_NOTADB) throw not_a_database(path, what);
    if (!memory && read_only_path(path)) throw read_only_at_start(path);
    if (what.rfind("cannot open SQLite database", 0) == 0) throw;  // already names the path
    throw std::runtime_error("cannot open SQLite database '" + path + "': " + what);
  }
}

}  // namespace sqlite

std::unique_ptr<jobs::Store> open_sqlite_store(const std::string& path, StartupCheck check) {
  return std::make_unique<sqlite::SqliteStore>(path, check);
}

}  // namespace runq::store
