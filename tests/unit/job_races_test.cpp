// Races of the worker pool and the stop sequence, each forced by a store wrapper (or
// agent) that holds a thread at the exact call where the bad interleaving happens.
#include "forwarding_store.hpp"
#include "race_helpers.hpp"
#include "runq/agents/command_agent.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/store/sqlite_store.hpp"
#include "runq/util/time.hpp"
#include "../../src/jobs/live_jobs.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
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

std::optional<JobStatus> stored_status(jobs::Store& s, const std::string& id) {
  auto j = s.get_status(id);
  return j ? std::optional(j->status) : std::nullopt;
}

jobs::ServiceOptions options(int workers) {
  jobs::ServiceOptions o;
  o.max_concurrent = workers;
  o.retention_s = 0;
  return o;
}

// --- Race 1: claims after the stop began ------------------------------------------

// Holds the first claim that hands out a job, after the store has marked it running.
class HeldClaimStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Gate claimed, release;
  std::optional<jobs::Job> claim_next(std::int64_t now) override {
    auto j = ForwardingStore::claim_next(now);
    if (j && !claimed.is_open()) {
      claimed.open();
      release.wait();
    }
    return j;
  }
};

TEST(StopRace, JobClaimedAsTheStopBeginsRunsAndTheDrainWaitsForIt) {
  HeldClaimStore store(memory_store());
  ScriptedAgent agent;
  jobs::JobService service(store, agent, options(1));
  service.start();
  auto job = submit(service, nlohmann::json::object());
  ASSERT_TRUE(store.claimed.wait());  // the store shows the job running; its claim is in flight
  service.begin_stop();               // SIGTERM now
  // The claim counts as running: without that, the drain ends at once and stop()
  // sends back a job that never got to run.
  EXPECT_FALSE(service.drain(50ms)) << "the drain did not wait for the claim in flight";
  store.release.open();
  EXPECT_TRUE(service.drain(5s));
  service.stop();
  EXPECT_EQ(agent.runs.load(), 1);
  auto stored = store.get(job.job.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, JobStatus::succeeded);
  EXPECT_EQ(stored->attempts, 1);
}

// Holds the committer inside insert (so begin_stop waits for it) once armed, and tells
// when a claim is tried.
class HeldInsertStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> hold_inserts{false};
  std::atomic<bool> watch_claims{false};
  Gate inserting, release_insert, claim_tried;
  std::vector<jobs::InsertResult> insert(const std::vector<jobs::Job>& b,
                                          std::int64_t max_new) override {
    if (hold_inserts.load()) {
      inserting.open();
      release_insert.wait();
    }
    return ForwardingStore::insert(b, max_new);
  }
  std::optional<jobs::Job> claim_next(std::int64_t now) override {
    if (watch_claims.load()) claim_tried.open();
    return ForwardingStore::claim_next(now);
  }
};

TEST(StopRace, WorkerEndingAJobWhileTheCommitterDrainsClaimsNoOther) {
  HeldInsertStore store(memory_store());
  ScriptedAgent agent;
  jobs::JobService service(store, agent, options(1));
  service.start();
  auto a = submit(service, {{"block", true}});
  ASSERT_TRUE(agent.started.wait());
  auto b = submit(service, nlohmann::json::object());  // queued behind `a`
  store.hold_inserts = true;
  service.submit(jobs::Job{}, [](SubmitOutcome) {});  // the committer holds this batch
  ASSERT_TRUE(store.inserting.wait());
  std::thread stopper([&] { service.begin_stop(); });  // waits for the committer
  ASSERT_TRUE(eventually([&] { return service.health().shutdown; }));
  store.watch_claims = true;
  agent.release.open();  // `a` ends; its worker is free while begin_stop still waits
  ASSERT_TRUE(eventually([&] { return service.running() == 0; }));
  // Without the fix the worker claims `b` at once; give it the chance (not a sync).
  store.claim_tried.wait(300ms);
  store.release_insert.open();
  stopper.join();
  service.stop();
  EXPECT_EQ(agent.runs.load(), 1) << "only `a` ran";
  EXPECT_EQ(stored_status(store, b.job.id), JobStatus::queued);
}

// --- Race 2: an ok result that comes with a late stop --------------------------------

class EndRace : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = std::make_unique<jobs::JobService>(*store_, agent_, options(1));
    service_->start();
  }
  jobs::Job wait_terminal(const std::string& id) {
    std::optional<jobs::Job> j;
    eventually([&] {
      j = service_->get(id);
      return j && jobs::is_terminal(j->status);
    });
    return j.value_or(jobs::Job{});
  }
  std::unique_ptr<jobs::Store> store_ = memory_store();
  ScriptedAgent agent_;
  std::unique_ptr<jobs::JobService> service_;
};

TEST_F(EndRace, OkResultWinsOverATimeoutThatFiredAsItEnded) {
  auto out = submit(*service_, {{"stop_with", "timed_out"}});
  auto j = wait_terminal(out.job.id);
  EXPECT_EQ(j.status, JobStatus::succeeded) << j.error.value_or("");
  EXPECT_EQ(j.result, "done");
}

TEST_F(EndRace, OkResultWinsOverAStopThatCameAsItEnded) {
  auto out = submit(*service_, {{"stop_with", "shutdown"}});
  auto j = wait_terminal(out.job.id);
  EXPECT_EQ(j.status, JobStatus::succeeded) << "not re-queued to run a second time";
  EXPECT_EQ(j.result, "done");
}

TEST_F(EndRace, UserCancelStillWinsOverAnOkResult) {
  auto out = submit(*service_, {{"wait_cancel", true}});
  ASSERT_TRUE(agent_.started.wait());
  EXPECT_EQ(service_->cancel(out.job.id).kind, jobs::CancelOutcome::Kind::cancelled);
  ASSERT_TRUE(eventually([&] { return service_->running() == 0; }));
  EXPECT_EQ(wait_terminal(out.job.id).status, JobStatus::cancelled);
}

TEST(CommandAgentEndRace, ExitZeroAfterTheTimeoutStoppedTheTokenIsTheResult) {
  // The child exits 0 on SIGTERM: it finished just as the timeout fired.
  const auto marker = std::filesystem::temp_directory_path() /
                      ("runq-race-" + std::to_string(::getpid()));
  std::filesystem::remove(marker);
  agents::CommandOptions o;
  o.argv = {"/bin/sh", "-c",
            "trap 'echo finished; exit 0' TERM; : > \"$1\"; while :; do sleep 0.01; done",
            "sh", marker.string()};
  agents::CommandAgent agent(o);
  jobs::Job job;
  job.id = "run_0123456789ab";
  job.prompt = "x";
  job.timeout_s = 60;
  job.attempts = 1;
  jobs::CancelToken token;
  struct : jobs::ProgressSink {
    void progress(double, std::optional<std::string>, int, std::optional<int>) override {}
    void output(std::string_view) override {}
  } sink;
  auto fut = std::async(std::launch::async, [&] { return agent.run(job, token, sink); });
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(marker); }));
  token.cancel(jobs::StopReason::timed_out);
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto r = fut.get();
  std::filesystem::remove(marker);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, "finished\n");
}

// --- Race 4: recording an end keeps trying whatever the error -------------------------

// finish() fails with a non-storage error (as SQLITE_BUSY would) `failures` times.
class BusyFinishStore : public ForwardingStore {
 public:
  BusyFinishStore(std::unique_ptr<jobs::Store> in, int failures)
      : ForwardingStore(std::move(in)), left_(failures) {}
  std::atomic<int> calls{0};
  bool finish(const jobs::Job& j) override {
    calls.fetch_add(1);
    if (left_.fetch_sub(1) > 0) throw std::runtime_error("database is locked");
    return ForwardingStore::finish(j);
  }

 private:
  std::atomic<int> left_;
};

TEST(EndRecordRace, EndIsStoredEvenAfterManyBusyErrors) {
  BusyFinishStore store(memory_store(), 8);
  ScriptedAgent agent;
  auto o = options(1);
  o.end_retry_first = 1ms;  // test seam: the backoff, shortened
  jobs::JobService service(store, agent, o);
  service.start();
  auto out = submit(service, nlohmann::json::object());
  EXPECT_TRUE(eventually([&] { return stored_status(store, out.job.id) == JobStatus::succeeded; },
                         3000ms))
      << "still " << jobs::to_string(stored_status(store, out.job.id).value_or(JobStatus::queued))
      << " after " << store.calls.load() << " tries";
  EXPECT_EQ(store.calls.load(), 9);
}

// --- Race 7: a wake-up taken by a paused worker ---------------------------------------

// finish() always fails (so its worker sits in the end-retry pause); tells when it has,
// and when the other worker's idle poll has looked at the queue after that.
class PausingStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Gate finish_failed, idle_poll_after, claimed_new;
  bool finish(const jobs::Job&) override {
    finish_failed.open();
    throw std::runtime_error("database is locked");
  }
  std::optional<jobs::Job> claim_next(std::int64_t now) override {
    auto j = ForwardingStore::claim_next(now);
    if (!j && finish_failed.is_open()) idle_poll_after.open();
    if (j && j->prompt == "new") claimed_new.open();
    return j;
  }
};

TEST(WakeRace, NewJobIsClaimedAtOnceWhileAnotherWorkerIsPaused) {
  PausingStore store(memory_store());
  ScriptedAgent agent;
  auto o = options(2);
  o.end_retry_first = 10s;  // the first worker stays paused for the whole test
  jobs::JobService service(store, agent, o);
  service.start();
  submit(service, nlohmann::json::object());
  ASSERT_TRUE(store.finish_failed.wait());
  // The idle worker went back to sleep after the paused one (so a single notify would
  // go to the paused one, which waits longer). Reproduces the bug; not a sync.
  ASSERT_TRUE(store.idle_poll_after.wait(3000ms));
  std::this_thread::sleep_for(20ms);
  jobs::Job j;
  j.prompt = "new";
  std::promise<SubmitOutcome> p;
  service.submit(std::move(j), [&](SubmitOutcome out) { p.set_value(out); });
  const auto t0 = Clock::now();
  // The idle poll (1 s) would pick it up anyway: it must come well before that.
  EXPECT_TRUE(store.claimed_new.wait(700ms))
      << "not claimed after " << std::chrono::duration<double>(Clock::now() - t0).count()
      << " s: the wake-up went to the paused worker";
  p.get_future().wait();
  service.stop();
}

// --- One claim in flight at a time, for every idle worker -------------------------

// Counts the claims in flight and holds the first one made after hold_next is set.
class HeldBatchClaimStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> hold_next{false};
  std::atomic<int> calls{0}, in_flight{0}, max_in_flight{0};
  Gate held, release, second_claim;
  std::vector<jobs::Job> claim_many(std::int64_t now, int max) override {
    ++calls;
    const int n = ++in_flight;
    int m = max_in_flight.load();
    while (n > m && !max_in_flight.compare_exchange_weak(m, n)) {
    }
    if (n > 1) second_claim.open();
    if (hold_next.exchange(false)) {
      held.open();
      release.wait();
    }
    auto out = inner().claim_many(now, max);  // the SQLite store's one statement
    --in_flight;
    return out;
  }
};

// Jobs submitted while a claim is in flight start no claim of their own: the idle workers
// wait for that claim, which takes jobs for them, or for the next one. (Before, every
// wake-up sent another worker to the store, one claim per job.)
TEST(ClaimBatch, NoSecondClaimWhileOneIsInFlightAndEveryJobRuns) {
  HeldBatchClaimStore store(memory_store());
  ScriptedAgent agent;
  jobs::JobService service(store, agent, options(3));
  service.start();
  ASSERT_TRUE(eventually([&] { return store.calls.load() >= 1; }));  // the first look
  store.hold_next = true;
  std::vector<std::string> ids{submit(service, nlohmann::json::object()).job.id};
  ASSERT_TRUE(store.held.wait());  // a claim is in flight
  for (int i = 0; i < 2; ++i) ids.push_back(submit(service, nlohmann::json::object()).job.id);
  // A window for the bug to show itself in: the wake-ups of these two submits sent
  // other workers to claim at once.
  EXPECT_FALSE(store.second_claim.wait(300ms)) << "a second claim started during the first";
  store.release.open();
  ASSERT_TRUE(eventually([&] {
    for (const auto& id : ids)
      if (stored_status(store, id) != JobStatus::succeeded) return false;
    return true;
  }));
  EXPECT_EQ(store.max_in_flight.load(), 1);
  EXPECT_EQ(agent.runs.load(), 3);
  for (const auto& id : ids) EXPECT_EQ(store.get_status(id)->attempts, 1) << id;
  service.stop();
}

// --- Race 8: a ?wait= waiter registered after the release at shutdown --------------

TEST(WaiterRace, WaiterRegisteredAfterTheReleaseIsAnsweredAtOnce) {
  auto store = memory_store();
  jobs::Job j;
  j.id = "run_waiterrace01";
  j.prompt = "p";
  j.created_at_us = util::now_us();
  j.timeout_s = 60;
  j.request_hash = "h";
  ASSERT_EQ(store->insert({j}).at(0).outcome, jobs::InsertResult::Outcome::inserted);
  jobs::Transitions transitions(*store);
  jobs::TimerQueue timers;
  jobs::LiveJobs live(*store, transitions, timers, {}, nullptr);
  live.release_all_waiters();  // begin_stop ran just before the registration
  Gate done;
  live.wait_terminal(j.id, 60s, [&] { done.open(); });
  EXPECT_TRUE(done.wait(1000ms)) << "left waiting for its whole ?wait=";
  timers.stop();
}

}  // namespace
