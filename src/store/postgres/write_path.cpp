// The PostgreSQL store's faults: recording them, clearing them, and the probe write that
// learns when the database is usable again.
#include "store_impl.hpp"

#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

namespace runq::store::postgres {

void PostgresStore::note_fault(const StoreUnavailable& e) {
  std::lock_guard lock(fault_mu_);
  if (fault_ && fault_->reason == e.reason()) {
    fault_->message = e.what();
    return;
  }
  spdlog::error("job store is not usable ({}): {}; submits get 503 until it is, "
                "connections are re-made by themselves",
                describe(e.reason()), e.what());
  fault_ = StoreFault{e.reason(), e.what(), fault_ ? fault_->since_us : util::now_us()};
  faulted_.store(true, std::memory_order_relaxed);
}

void PostgresStore::clear_fault() {
  if (!faulted_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(fault_mu_);
  if (!fault_) return;
  spdlog::warn("job store is usable again (it was not for {:.1f} s: {})",
               static_cast<double>(util::now_us() - fault_->since_us) / 1e6,
               describe(fault_->reason));
  fault_.reset();
  faulted_.store(false, std::memory_order_relaxed);
}

std::optional<StoreFault> PostgresStore::write_fault() const {
  std::lock_guard lock(fault_mu_);
  return fault_;
}

void PostgresStore::probe_write() {
  write([&](Connection& c) { c.run(s_probe, Params().add(util::now_us())); });
}

}  // namespace runq::store::postgres
