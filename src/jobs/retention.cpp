// JobService's retention: finished jobs are deleted --retention after they completed, in
// short batches with a pause between, by a sweep thread.
#include "service_state.hpp"

#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace runq::jobs {

namespace {
// How often the retention sweep looks: retention/10, within [100 ms, 60 s].
std::chrono::milliseconds sweep_interval(std::int64_t retention_s) {
  return std::chrono::milliseconds(
      std::clamp<std::int64_t>(retention_s * 100, 100, 60'000));
}
}  // namespace

std::int64_t JobService::sweep_expired() {
  if (options_.retention_s <= 0) return 0;
  const std::int64_t cutoff = util::now_us() - options_.retention_s * 1'000'000;
  const int batch = std::max(1, options_.retention_batch);
  std::int64_t total = 0;
  for (;;) {
    int n = store_.delete_finished_before(cutoff, batch);
    if (n > 0) state_->removals.fetch_add(1);
    total += n;
    if (n < batch) break;
    // More to do: let submits and claims have the write lock for a moment.
    std::unique_lock lock(state_->upkeep_mu);
    if (state_->upkeep_cv.wait_for(lock, options_.retention_pause,
                                  [&] { return state_->upkeep_stopping; }))
      break;
  }
  return total;
}

void JobService::sweep_loop() {
  const auto interval = sweep_interval(options_.retention_s);
  for (;;) {
    {
      std::unique_lock lock(state_->upkeep_mu);
      if (state_->upkeep_cv.wait_for(lock, interval, [&] { return state_->upkeep_stopping; }))
        return;
    }
    try {
      if (std::int64_t n = sweep_expired(); n > 0)
        spdlog::info("retention: deleted {} job(s) finished more than {} s ago", n,
                     options_.retention_s);
    } catch (const jobs::StoreUnavailable& e) {
      // Logged by the store when the fault began; the next pass tries again.
      spdlog::debug("retention sweep: {}", e.what());
    } catch (const std::exception& e) {
      spdlog::error("retention sweep failed: {}", e.what());
    }
  }
}

void JobService::queue_count_loop() {
  for (;;) {
    {
      std::unique_lock lock(state_->upkeep_mu);
      if (state_->upkeep_cv.wait_for(lock, std::chrono::seconds(1),
                                     [&] { return state_->upkeep_stopping; }))
        return;
    }
    // A count that raced with a move of this node's (a claim, a submit) may be off by it
    // either way: counted again, a few times at most (a busy node's own moves are what
    // change the queue most, and they are counted exactly anyway).
    try {
      for (int tries = 1;; ++tries) {
        const auto moves = state_->queued_moves.load();
        const auto counted =
            store_.count_by_status(std::nullopt)[static_cast<int>(JobStatus::queued)];
        if (state_->queued_moves.load() == moves || tries == 5) {
          state_->queued.store(counted);
          break;
        }
      }
    } catch (const std::exception& e) {
      spdlog::debug("counting the queue: {}", e.what());
    }
  }
}

}  // namespace runq::jobs
