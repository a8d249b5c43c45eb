// Races of the SSE event logs, each forced by a store wrapper that holds a thread at the
// exact call where the bad interleaving happens.
#include "forwarding_store.hpp"
#include "race_helpers.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/store/sqlite_store.hpp"
#include "runq/util/time.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <future>
#include <thread>

using namespace runq;
using namespace std::chrono_literals;
using jobs::JobStatus;
using jobs::SubmitOutcome;
using racetest::ForwardingStore;
using racetest::Gate;
using racetest::ScriptedAgent;
using racetest::eventually;
using racetest::memory_store;
using racetest::submit;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<jobs::Event> events_of(jobs::EventLog& log, bool* closed = nullptr) {
  bool c = false;
  auto ev = log.since(0, &c);
  if (closed) *closed = c;
  return ev;
}

// --- Race 3: a stream's log that nobody closes ----------------------------------------

// Holds the first two store reads of the job (the two reads of log_for_stream) until
// the test lets each go.
class HeldGetStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Gate first_read, go_first, second_read, go_second;
  std::optional<jobs::Job> get(const std::string& id) override {
    auto j = ForwardingStore::get(id);
    const int n = ++reads_;
    if (n == 1) {
      first_read.open();
      go_first.wait();
    } else if (n == 2) {
      second_read.open();
      go_second.wait();
    }
    return j;
  }

 private:
  std::atomic<int> reads_{0};
};

TEST(StreamRace, SecondStreamOfAJobEndingBetweenTheReadsGetsAClosedLog) {
  HeldGetStore store(memory_store());
  jobs::Job j;
  j.id = "run_streamrace01";
  j.prompt = "p";
  j.created_at_us = util::now_us();
  j.timeout_s = 60;
  j.request_hash = "h";
  ASSERT_EQ(store.insert({j}, jobs::kUnlimited).at(0).outcome,
            jobs::InsertResult::Outcome::inserted);
  ScriptedAgent agent;
  jobs::JobService service(store, agent, jobs::ServiceOptions{});  // no workers started
  // Stream 1 reads the job: queued...
  auto first = std::async(std::launch::async, [&] { return service.events(j.id); });
  ASSERT_TRUE(store.first_read.wait());
  // ...it is cancelled before stream 1 creates the live log (so nobody closes that)...
  EXPECT_EQ(service.cancel(j.id).kind, jobs::CancelOutcome::Kind::cancelled);
  store.go_first.open();
  // ...and stream 2 finds that log while stream 1 reads the job again.
  ASSERT_TRUE(store.second_read.wait());
  auto second = service.events(j.id);
  store.go_second.open();
  auto one = first.get();
  ASSERT_TRUE(one && second);
  bool closed1 = false, closed2 = false;
  auto ev1 = events_of(*one, &closed1);
  auto ev2 = events_of(*second, &closed2);
  EXPECT_TRUE(closed1);
  EXPECT_TRUE(closed2) << "stream 2 would wait forever";
  ASSERT_FALSE(ev2.empty());
  EXPECT_EQ(ev2.back().type, "cancelled");
  // A new stream now comes from the store.
  bool closed3 = false;
  events_of(*service.events(j.id), &closed3);
  EXPECT_TRUE(closed3);
}

// --- Race 5: a retried job cancelled while queued keeps its history -------------------

TEST(CancelRace, RetriedJobCancelledWhileQueuedStoresItsWholeHistory) {
  auto store = memory_store();
  ScriptedAgent agent;
  jobs::ServiceOptions o;
  o.max_concurrent = 1;
  o.retry_base_delay = 60s;  // it waits in the queue for its retry
  jobs::JobService service(*store, agent, o);
  service.start();
  auto out = submit(service, {{"fail_first", true}}, 1);
  const auto id = out.job.id;
  auto live = service.events(id);
  ASSERT_TRUE(eventually([&] { return events_of(*live).size() >= 3; }));  // queued, running, retry
  ASSERT_EQ(service.cancel(id).kind, jobs::CancelOutcome::Kind::cancelled);
  bool closed = false;
  auto all = events_of(*live, &closed);
  ASSERT_TRUE(closed);
  ASSERT_EQ(all.size(), 4u);
  // A stream resumed with Last-Event-ID: 3 (from the store now) gets the end.
  auto resumed = service.events(id);
  ASSERT_TRUE(resumed);
  auto rest = resumed->since(3, &closed);
  EXPECT_TRUE(closed);
  ASSERT_EQ(rest.size(), 1u) << "the final event is lost";
  EXPECT_EQ(rest[0].id, 4);
  EXPECT_EQ(rest[0].type, "cancelled");
  EXPECT_EQ(events_of(*resumed).size(), 4u);
  service.stop();
}

// --- Race 6: with no retry delay, the retry event before the next "running" ----------

// Holds the worker right after the store re-queued a failed attempt (before it announces
// the retry) until the retry was claimed by the other worker and that one announced
// `running` (or, when the fix keeps it from doing so, a moment later).
class HeldRequeueStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Gate requeued, reclaimed;
  std::shared_ptr<jobs::EventLog> log;  // set before the job runs
  bool requeue_for_retry(const jobs::Job& running, std::int64_t not_before) override {
    const bool ok = ForwardingStore::requeue_for_retry(running, not_before);
    requeued.open();
    if (reclaimed.wait()) {
      // Without the fix the other worker appends `running` now; give it the chance
      // (not a sync: with the fix it cannot, being held until we return).
      const auto until = Clock::now() + 300ms;
      while (Clock::now() < until && count_running() < 2) std::this_thread::sleep_for(1ms);
    }
    return ok;
  }
  std::optional<jobs::Job> claim_next(std::int64_t now) override {
    auto j = ForwardingStore::claim_next(now);
    if (j && j->attempts == 2) reclaimed.open();
    return j;
  }

 private:
  int count_running() {
    int n = 0;
    for (auto& e : events_of(*log))
      if (e.type == "status" && nlohmann::json::parse(e.data)["status"] == "running") ++n;
    return n;
  }
};

TEST(RetryRace, RetryEventComesBeforeTheNextAttemptsRunning) {
  HeldRequeueStore store(memory_store());
  ScriptedAgent agent;
  jobs::ServiceOptions o;
  o.max_concurrent = 2;
  o.retry_base_delay = 0ms;  // --retry-delay 0
  jobs::JobService service(store, agent, o);
  // The log is created (and the job queued) before a worker can take it.
  jobs::Job j;
  j.id = "run_retryrace001";
  j.prompt = "p";
  j.created_at_us = util::now_us();
  j.timeout_s = 60;
  j.request_hash = "h";
  j.max_retries = 1;
  j.config = {{"fail_first", true}};
  ASSERT_EQ(store.insert({j}, jobs::kUnlimited).at(0).outcome,
            jobs::InsertResult::Outcome::inserted);
  store.log = service.events(j.id);
  service.start();
  // A submit wakes the idle worker, which claims the retry (older, so first) at once.
  ASSERT_TRUE(store.requeued.wait());
  submit(service, nlohmann::json::object());
  bool closed = false;
  ASSERT_TRUE(eventually([&] {
    events_of(*store.log, &closed);
    return closed;
  }));
  std::vector<std::string> order;
  for (auto& e : events_of(*store.log)) {
    auto d = nlohmann::json::parse(e.data);
    order.push_back(e.type == "status" ? std::string(d["status"]) +
                                             (d.contains("retry_in") ? "(retry)" : "")
                                       : e.type);
  }
  const std::vector<std::string> want = {"queued", "running", "queued(retry)", "running",
                                         "progress", "result"};
  EXPECT_EQ(order, want);
  service.stop();
}

}  // namespace
