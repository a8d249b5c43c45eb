#include "startup_checks.hpp"

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace runq::store::sqlite {

namespace {
constexpr int kQuickCheckMessages = 5;  // quick_check findings named in the error
}  // namespace

bool left_a_wal(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path + "-wal", ec);
  return !ec && size > 0;
}

bool read_only_path(const std::string& path) {
  auto denied = [](const std::string& p) {
    return ::access(p.c_str(), W_OK) != 0 &&
           (errno == EROFS || errno == EACCES || errno == EPERM);
  };
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  return denied(path) || denied(dir);
}

std::runtime_error read_only_at_start(const std::string& path) {
  return std::runtime_error(
      "cannot open SQLite database '" + path + "': the file (or its -wal/-shm file, its "
      "directory or its file system) is read-only, and runq must write it. Make it "
      "writable (or mount the file system read-write) and start runq again.");
}

DamagedDatabase damaged(const std::string& path, const std::string& finding) {
  return DamagedDatabase(
      "database file " + path + " is damaged (quick_check: " + finding +
      "). Restore it from a backup, or move it aside (with its -wal and -shm files) to "
      "start with an empty queue; `sqlite3 " + path + " .recover` may save its jobs.");
}

DamagedDatabase not_a_database(const std::string& path, const std::string& what) {
  return DamagedDatabase(
      "file " + path + " is not a SQLite database, or its header is damaged (" + what +
      "). If --db names the wrong file, correct it; if this is runq's database, restore "
      "it from a backup, or move it aside (with its -wal and -shm files) to start with "
      "an empty queue.");
}

void quick_check(Db& db, const std::string& path) {
  std::string findings;
  int n = 0;
  {
    sqlite::Stmt st(db.get(), "PRAGMA quick_check");
    Use u(st.get());
    while (u.step()) {
      std::string line = u.text(0);
      if (line == "ok") continue;
      if (n++ < kQuickCheckMessages) findings += (findings.empty() ? "" : "; ") + line;
    }
  }
  if (n > kQuickCheckMessages)
    findings += "; and " + std::to_string(n - kQuickCheckMessages) + " more";
  if (n > 0) throw damaged(path, findings);
}

}  // namespace runq::store::sqlite
