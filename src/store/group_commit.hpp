#pragma once
// Group commit without a thread of its own: concurrent callers share one transaction.
//
// A caller queues its operation. If no batch is in progress it becomes the leader: it
// takes every queued operation, runs them all with run_batch (one transaction, one
// fsync), wakes each of their callers, and hands the lead to the oldest caller still
// waiting, if any. A lone caller runs at once; under load, a batch is whatever queued
// while the previous one committed. Each waiting caller is woken exactly once, not all
// of them after every batch.
#include <cstddef>
#include <mutex>
#include <condition_variable>
#include <vector>

namespace runq::store {

// What GroupCommit needs of an operation; Op derives from it. (A mutex and condition
// variable rather than std::binary_semaphore, whose acquire spins with sched_yield: on
// a busy core that is a context switch per spin.)
struct GroupCommitted {
  void wake(bool ran) {
    // Notified under the lock: once it is released the caller may return and destroy us.
    std::lock_guard lock(mu_);
    done = ran;
    woken_ = true;
    cv_.notify_one();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return woken_; });
    woken_ = false;
  }
  bool done = false;  // as woken: ran (false: lead the next batch)

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

template <class Op>
class GroupCommit {
 public:
  // Returns when `op` has been run as part of some batch. run_batch(std::vector<Op*>&)
  // runs each op and records its outcome in the op itself; it must not throw.
  template <class RunBatch>
  void run(Op& op, RunBatch&& run_batch) {
    bool lead_now = false;
    {
      std::lock_guard lock(mu_);
      queue_.push_back(&op);
      if (!leading_) leading_ = lead_now = true;
    }
    if (!lead_now) {
      op.wait();
      if (op.done) return;  // else it was handed the lead
    }
    lead(op, run_batch);
  }

  // Operations waiting for the next batch.
  std::size_t waiting() {
    std::lock_guard lock(mu_);
    return queue_.size();
  }

 private:
  template <class RunBatch>
  void lead(Op& op, RunBatch& run_batch) {
    std::vector<Op*> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(queue_);
    }
    run_batch(batch);
    for (Op* o : batch)
      if (o != &op) o->wake(/*ran=*/true);
    std::lock_guard lock(mu_);
    if (queue_.empty())
      leading_ = false;
    else
      queue_.front()->wake(/*ran=*/false);  // it leads the next batch
  }

  std::mutex mu_;
  std::vector<Op*> queue_;  // guarded by mu_
  bool leading_ = false;    // a batch is being run, or its leader is being woken
};

}  // namespace runq::store
