// Storage-fault classification: which SQLite errors make the store "not writable now"
// (503 and a retry later) and which stay ordinary errors.
#include "../../src/store/sqlite/classify_error.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cerrno>

using namespace runq::store::sqlite;
using namespace runq::store;  // the port's names (port_names.hpp)

TEST(StoreError, DiskFull) {
  EXPECT_EQ(classify_sqlite_error(SQLITE_FULL, ENOSPC), FaultReason::disk_full);
  EXPECT_EQ(classify_sqlite_error(SQLITE_FULL, 0), FaultReason::disk_full);
  // An fsync or a write that failed with ENOSPC / EDQUOT comes as an I/O error.
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_FSYNC, ENOSPC), FaultReason::disk_full);
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_WRITE, EDQUOT), FaultReason::disk_full);
}

TEST(StoreError, ReadOnly) {
  EXPECT_EQ(classify_sqlite_error(SQLITE_READONLY, 0), FaultReason::read_only);
  EXPECT_EQ(classify_sqlite_error(SQLITE_READONLY_DBMOVED, 0), FaultReason::read_only);
  EXPECT_EQ(classify_sqlite_error(SQLITE_READONLY_RECOVERY, 0), FaultReason::read_only);
  EXPECT_EQ(classify_sqlite_error(SQLITE_READONLY_CANTINIT, 0), FaultReason::read_only);
  EXPECT_EQ(classify_sqlite_error(SQLITE_READONLY_DIRECTORY, 0), FaultReason::read_only);
  // A file system remounted read-only under a running server: writes fail with EROFS.
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_WRITE, EROFS), FaultReason::read_only);
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_TRUNCATE, EROFS), FaultReason::read_only);
  EXPECT_EQ(classify_sqlite_error(SQLITE_CANTOPEN, EROFS), FaultReason::read_only);
}

TEST(StoreError, IoErrorAndCantOpen) {
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR, 0), FaultReason::io_error);
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_WRITE, EIO), FaultReason::io_error);
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_FSYNC, EIO), FaultReason::io_error);
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_SHMMAP, 0), FaultReason::io_error);
  EXPECT_EQ(classify_sqlite_error(SQLITE_CANTOPEN, ENOENT), FaultReason::cannot_open);
  EXPECT_EQ(classify_sqlite_error(SQLITE_CANTOPEN_ISDIR, EISDIR), FaultReason::cannot_open);
}

TEST(StoreError, OtherErrorsAreNotStorageFaults) {
  EXPECT_EQ(classify_sqlite_error(SQLITE_OK, 0), std::nullopt);
  EXPECT_EQ(classify_sqlite_error(SQLITE_ERROR, 0), std::nullopt);
  EXPECT_EQ(classify_sqlite_error(SQLITE_CONSTRAINT_UNIQUE, 0), std::nullopt);
  EXPECT_EQ(classify_sqlite_error(SQLITE_BUSY, 0), std::nullopt);
  EXPECT_EQ(classify_sqlite_error(SQLITE_MISUSE, 0), std::nullopt);
  EXPECT_EQ(classify_sqlite_error(SQLITE_CORRUPT, 0), std::nullopt);  // refused at start
  EXPECT_EQ(classify_sqlite_error(SQLITE_NOMEM, ENOMEM), std::nullopt);
  EXPECT_EQ(classify_sqlite_error(SQLITE_IOERR_NOMEM, ENOMEM), std::nullopt);
}

TEST(StoreError, DetailForClients) {
  EXPECT_EQ(unavailable_detail(FaultReason::disk_full),
            "Job store is not writable (disk full); retry later");
  EXPECT_EQ(unavailable_detail(FaultReason::read_only),
            "Job store is not writable (read-only database or file system); retry later");
  EXPECT_EQ(unavailable_detail(FaultReason::io_error),
            "Job store is not writable (I/O error); retry later");
  StoreUnavailable e(FaultReason::disk_full, "sqlite: step failed: database or disk is full");
  EXPECT_STREQ(e.what(), "sqlite: step failed: database or disk is full");
  EXPECT_EQ(e.detail(), "Job store is not writable (disk full); retry later");
  EXPECT_EQ(e.reason(), FaultReason::disk_full);
}
