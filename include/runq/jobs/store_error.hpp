#pragma once
// Storage faults: the store cannot be written right now (disk full, a read-only file or
// file system, an I/O error, a database file it cannot open). Reads may still work, and
// the same write may succeed later, once the fault is cleared; nothing needs a restart.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace runq::jobs {

// unreachable: a database server (PostgreSQL) cannot be reached.
enum class FaultReason { disk_full, read_only, io_error, cannot_open, unreachable };

// "disk full", "read-only database or file system", "I/O error", "cannot open the
// database file" — the words in the client's `detail`. (Inline: jobs/ and api/ use them
// without linking the SQLite store.)
inline std::string_view describe(FaultReason reason) {
  switch (reason) {
    case FaultReason::disk_full: return "disk full";
    case FaultReason::read_only: return "read-only database or file system";
    case FaultReason::io_error: return "I/O error";
    case FaultReason::cannot_open: return "cannot open the database file";
    case FaultReason::unreachable: return "database unreachable";
  }
  return "storage fault";
}

// What a client is told: "Job store is not writable (disk full); retry later".
// For an unreachable database server: "Store unavailable" (the contract's words).
inline std::string unavailable_detail(FaultReason reason) {
  if (reason == FaultReason::unreachable) return "Store unavailable";
  std::string d = "Job store is not writable (";
  d += describe(reason);
  d += "); retry later";
  return d;
}

// Thrown by a Store whose write (or read) failed for a storage reason. what() is the
// whole text for the log (with the store's own message); detail() is for clients.
class StoreUnavailable : public std::runtime_error {
 public:
  StoreUnavailable(FaultReason reason, const std::string& message)
      : std::runtime_error(message), reason_(reason) {}
  FaultReason reason() const { return reason_; }
  std::string detail() const { return unavailable_detail(reason_); }

 private:
  FaultReason reason_;
};

// The store's last write failed for a storage reason (and none has succeeded since).
struct StoreFault {
  FaultReason reason = FaultReason::io_error;
  std::string message;       // the store's own words, e.g. "database or disk is full"
  std::int64_t since_us = 0; // when the first failing write of this fault happened
};

}  // namespace runq::jobs
