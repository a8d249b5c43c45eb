#include "classify_error.hpp"

#include <sqlite3.h>

#include <cerrno>

namespace runq::store::sqlite {

std::optional<FaultReason> classify_sqlite_error(int extended_code, int system_errno) {
  auto from_errno = [&](FaultReason otherwise) {
    if (system_errno == EROFS) return FaultReason::read_only;
    if (system_errno == ENOSPC || system_errno == EDQUOT) return FaultReason::disk_full;
    return otherwise;
  };
  switch (extended_code & 0xff) {
    case SQLITE_FULL: return FaultReason::disk_full;
    case SQLITE_READONLY: return FaultReason::read_only;
    case SQLITE_IOERR:
      // SQLITE_IOERR_NOMEM is memory, not storage.
      if (extended_code == SQLITE_IOERR_NOMEM) return std::nullopt;
      return from_errno(FaultReason::io_error);
    case SQLITE_CANTOPEN: return from_errno(FaultReason::cannot_open);
    default: return std::nullopt;
  }
}

}  // namespace runq::store::sqlite
