#pragma once
// Group commit without a thread of its own: concurrent callers share one transaction.
//
// A caller queues its operation and waits. Whoever finds no batch in progress becomes
// the leader: it takes every queued operation, runs them all with run_batch (one
// transaction, one fsync), marks them done and wakes the others. A lone caller runs at
// once; under load, a batch is whatever queued while the previous one committed.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace runq::store {

template <class Op>
class GroupCommit {
 public:
  // Returns when `op` has been run as part of some batch. run_batch(std::vector<Op*>&)
  // runs each op and records its outcome in the op itself; it must not throw.
  template <class RunBatch>
  void run(Op& op, RunBatch&& run_batch) {
    std::unique_lock lock(mu_);
    queue_.push_back(&op);
    const std::uint64_t mine = ++queued_;
    while (done_ < mine) {
      if (leading_) {
        cv_.wait(lock);
        continue;
      }
      leading_ = true;
      std::vector<Op*> batch;
      batch.swap(queue_);
      const std::uint64_t last = queued_;
      lock.unlock();
      run_batch(batch);
      lock.lock();
      leading_ = false;
      done_ = last;
      cv_.notify_all();
    }
  }

  // Operations waiting for the next batch.
  std::size_t waiting() {
    std::lock_guard lock(mu_);
    return queue_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Op*> queue_;
  std::uint64_t queued_ = 0;  // operations queued so far; each caller's number
  std::uint64_t done_ = 0;    // every operation up to this number has run
  bool leading_ = false;
};

}  // namespace runq::store
