// GroupCommit: operations queued while a batch runs go together into the next batch,
// each exactly once, and every caller returns only after its own operation ran.
#include "../../src/store/group_commit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

using runq::store::GroupCommit;

namespace {
struct Op : runq::store::GroupCommitted {
  explicit Op(int v = 0) : value(v) {}
  int value = 0;
  bool ran = false;
  std::size_t batch_size = 0;
};
}  // namespace

TEST(GroupCommit, LoneCallerRunsAtOnceInABatchOfOne) {
  GroupCommit<Op> gc;
  Op op{7};
  int batches = 0;
  gc.run(op, [&](std::vector<Op*>& b) {
    ++batches;
    for (Op* o : b) o->ran = true, o->batch_size = b.size();
  });
  EXPECT_TRUE(op.ran);
  EXPECT_EQ(op.batch_size, 1u);
  EXPECT_EQ(batches, 1);
}

TEST(GroupCommit, CallersArrivingDuringABatchShareTheNextOne) {
  GroupCommit<Op> gc;
  std::promise<void> first_running, release_first;
  auto release = release_first.get_future().share();
  std::mutex mu;
  std::vector<std::size_t> sizes;
  auto run_batch = [&](std::vector<Op*>& b) {
    {
      std::lock_guard lock(mu);
      sizes.push_back(b.size());
    }
    if (b.size() == 1 && b[0]->value == 0) {  // the first batch: hold it open
      first_running.set_value();
      release.wait();
    }
    for (Op* o : b) o->ran = true, o->batch_size = b.size();
  };
  Op first{0};
  std::thread leader([&] { gc.run(first, run_batch); });
  first_running.get_future().wait();

  constexpr int kWaiting = 5;
  std::vector<Op> ops(kWaiting);  // (not moved: each holds a semaphore)
  std::atomic<int> returned{0};
  std::vector<std::thread> waiting;
  for (int i = 0; i < kWaiting; ++i) {
    ops[i].value = i + 1;
    waiting.emplace_back([&, i] {
      gc.run(ops[i], run_batch);
      EXPECT_TRUE(ops[i].ran);  // never returns before its op ran
      ++returned;
    });
  }
  while (gc.waiting() < kWaiting) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(returned.load(), 0);  // none runs while the first batch is open
  release_first.set_value();
  leader.join();
  for (auto& t : waiting) t.join();

  EXPECT_TRUE(first.ran);
  int in_batches = 0;
  for (std::size_t s : sizes) in_batches += static_cast<int>(s);
  EXPECT_EQ(in_batches, kWaiting + 1);  // each op exactly once
  ASSERT_GE(sizes.size(), 2u);
  EXPECT_EQ(sizes[1], static_cast<std::size_t>(kWaiting));  // all five queued: one batch
}

TEST(GroupCommit, ManyThreadsEveryOpRunsOnce) {
  GroupCommit<Op> gc;
  std::atomic<int> total{0};
  constexpr int kThreads = 8, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        Op op{1};
        gc.run(op, [&](std::vector<Op*>& b) {
          for (Op* o : b) {
            EXPECT_FALSE(o->ran);
            o->ran = true;
            total += o->value;
          }
        });
        EXPECT_TRUE(op.ran);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total.load(), kThreads * kEach);
}
