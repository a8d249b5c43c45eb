// JobService over a real SQLite store (in memory) and the echo agent: the domain end
// to end without HTTP.
#include "race_helpers.hpp"
#include "runq/agents/echo_agent.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/store/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <atomic>
#include <future>
#include <memory>
#include <thread>

using namespace runq;
using namespace std::chrono_literals;
using jobs::JobStatus;
using jobs::SubmitOutcome;

namespace {

class JobServiceTest : public ::testing::Test {
 protected:
  void start(int workers = 2) {
    store_ = store::open_sqlite_store(":memory:");
    jobs::ServiceOptions opts;
    opts.max_concurrent = workers;
    opts.default_timeout_s = 3600;
    service_ = std::make_unique<jobs::JobService>(*store_, agent_, opts);
    service_->start();
  }
  void TearDown() override {
    if (service_) service_->stop();
  }

  SubmitOutcome submit(jobs::Job job) {
    std::promise<SubmitOutcome> p;
    auto f = p.get_future();
    service_->submit(std::move(job), [&p](SubmitOutcome o) { p.set_value(std::move(o)); });
    return f.get();
  }
  SubmitOutcome submit(const std::string& prompt, nlohmann::json config = {},
                       int priority = 0) {
    jobs::Job j;
    j.prompt = prompt;
    j.config = config.is_null() ? nlohmann::json::object() : config;
    j.priority = priority;
    return submit(std::move(j));
  }

  jobs::Job wait_status(const std::string& id, std::initializer_list<JobStatus> want,
                        std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto j = service_->status(id);
      if (j)
        for (auto w : want)
          if (j->status == w) return *j;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "job " << id << " did not reach the wanted state";
        return j.value_or(jobs::Job{});
      }
      std::this_thread::sleep_for(2ms);
    }
  }

  agents::EchoAgent agent_;
  std::unique_ptr<jobs::Store> store_;
  std::unique_ptr<jobs::JobService> service_;
};

}  // namespace

TEST_F(JobServiceTest, SubmittedJobRunsAndSucceeds) {
  start();
  auto out = submit("hello");
  ASSERT_EQ(out.kind, SubmitOutcome::Kind::accepted);
  EXPECT_EQ(out.job.status, JobStatus::queued);
  EXPECT_EQ(out.job.timeout_s, 3600) << "0 means the server default";
  auto done = wait_status(out.job.id, {JobStatus::succeeded});
  auto full = service_->get(out.job.id);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->result, "hello");
  EXPECT_EQ(full->attempts, 1);
  EXPECT_EQ(full->agent_id, "echo");
  EXPECT_DOUBLE_EQ(full->progress.percentage, 100.0);
  ASSERT_TRUE(full->started_at_us && full->completed_at_us);
  EXPECT_LE(*full->started_at_us, *full->completed_at_us);
}

TEST_F(JobServiceTest, FailureKeepsTheAgentsError) {
  start();
  auto out = submit("x", {{"fail_with", "nope"}});
  auto done = wait_status(out.job.id, {JobStatus::failed});
  EXPECT_EQ(done.error, "nope");
}

TEST_F(JobServiceTest, TimeoutFailsTheJobPromptly) {
  start();
  jobs::Job j;
  j.prompt = "slow";
  j.config = {{"sleep_seconds", 30}};
  j.timeout_s = 1;
  auto out = submit(std::move(j));
  auto t0 = std::chrono::steady_clock::now();
  auto done = wait_status(out.job.id, {JobStatus::failed}, 5s);
  EXPECT_EQ(done.error, "Job timed out after 1s");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST_F(JobServiceTest, CancelRunningStopsTheWorkAndFreesTheSlot) {
  start(1);
  auto slow = submit("slow", {{"sleep_seconds", 60}});
  wait_status(slow.job.id, {JobStatus::running});
  auto next = submit("next");
  auto c = service_->cancel(slow.job.id);
  EXPECT_EQ(c.kind, jobs::CancelOutcome::Kind::cancelled);
  EXPECT_EQ(c.job.status, JobStatus::cancelled);
  EXPECT_TRUE(c.job.completed_at_us.has_value());
  // The only slot comes free once the sleep is interrupted, so `next` runs.
  wait_status(next.job.id, {JobStatus::succeeded}, 5s);
  EXPECT_EQ(service_->status(slow.job.id)->status, JobStatus::cancelled);
  // Cancelling again is fine; a finished job cannot be cancelled.
  EXPECT_EQ(service_->cancel(slow.job.id).kind, jobs::CancelOutcome::Kind::cancelled);
  EXPECT_EQ(service_->cancel(next.job.id).kind, jobs::CancelOutcome::Kind::not_cancellable);
  EXPECT_EQ(service_->cancel("run_0000000000000000").kind,
            jobs::CancelOutcome::Kind::not_found);
}

TEST_F(JobServiceTest, CancelQueuedNeverRuns) {
  start(1);
  auto blocker = submit("block", {{"sleep_seconds", 60}});
  wait_status(blocker.job.id, {JobStatus::running});
  auto queued = submit("q");
  auto c = service_->cancel(queued.job.id);
  EXPECT_EQ(c.kind, jobs::CancelOutcome::Kind::cancelled);
  service_->cancel(blocker.job.id);
  std::this_thread::sleep_for(50ms);
  auto j = service_->get(queued.job.id);
  EXPECT_EQ(j->status, JobStatus::cancelled);
  EXPECT_EQ(j->attempts, 0);
  EXPECT_FALSE(j->started_at_us.has_value());
}

TEST_F(JobServiceTest, HigherPriorityRunsFirstThenFifo) {
  start(1);
  auto blocker = submit("block", {{"sleep_seconds", 60}});
  wait_status(blocker.job.id, {JobStatus::running});
  auto low = submit("low", {}, -5);
  auto a = submit("a", {}, 0);
  auto high = submit("high", {}, 10);
  auto b = submit("b", {}, 0);
  service_->cancel(blocker.job.id);
  std::vector<std::pair<std::int64_t, std::string>> order;
  for (auto* o : {&low, &a, &high, &b}) {
    auto j = wait_status(o->job.id, {JobStatus::succeeded});
    order.emplace_back(*j.started_at_us, o->job.id);
  }
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order[0].second, high.job.id);
  EXPECT_EQ(order[1].second, a.job.id);
  EXPECT_EQ(order[2].second, b.job.id);
  EXPECT_EQ(order[3].second, low.job.id);
}

TEST_F(JobServiceTest, WaitTerminalReturnsWhenTheJobEnds) {
  start();
  auto out = submit("w", {{"sleep_seconds", 0.1}});
  std::promise<void> p;
  auto t0 = std::chrono::steady_clock::now();
  service_->wait_terminal(out.job.id, 10s, [&] { p.set_value(); });
  p.get_future().wait();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(service_->status(out.job.id)->status, JobStatus::succeeded);
}

// Found by TSan: wait_terminal stored the waiter's timer handle without a lock after the
// waiter was visible to the worker, which read it when the job ended. Jobs ending while
// their waiters are being registered: every waiter fires once, none is lost.
TEST_F(JobServiceTest, WaitTerminalRacingTheJobsEnd) {
  start();
  constexpr int kJobs = 20;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) ids.push_back(submit("r" + std::to_string(i)).job.id);
  auto fired = std::make_shared<std::atomic<int>>(0);
  for (const auto& id : ids)
    service_->wait_terminal(id, 10s, [fired] { ++*fired; });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (*fired < kJobs && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(*fired, kJobs);
}

TEST_F(JobServiceTest, WaitTerminalTimesOut) {
  start();
  auto out = submit("w", {{"sleep_seconds", 30}});
  std::promise<void> p;
  auto t0 = std::chrono::steady_clock::now();
  service_->wait_terminal(out.job.id, 100ms, [&] { p.set_value(); });
  p.get_future().wait();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 90ms);
  EXPECT_LT(took, 5s);
}

TEST_F(JobServiceTest, EventsOfAJobInOrderAndReplayedAfterTheEnd) {
  start();
  auto out = submit("ev", {{"sleep_seconds", 0.05}, {"steps", 2}});
  auto log = service_->events(out.job.id);
  ASSERT_TRUE(log);
  wait_status(out.job.id, {JobStatus::succeeded});
  for (int i = 0; i < 100 && !log->closed(); ++i) std::this_thread::sleep_for(5ms);
  bool closed = false;
  auto events = log->since(0, &closed);
  ASSERT_TRUE(closed);
  std::vector<std::string> types;
  for (auto& e : events) types.push_back(e.type);
  // queued, running, two steps (the second at 100%, so no extra "Completed"), result
  EXPECT_EQ(types, (std::vector<std::string>{"status", "status", "progress", "progress",
                                             "result"}));
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].id, (long)i + 1);

  auto replay = service_->events(out.job.id);
  auto again = replay->since(0, &closed);
  EXPECT_TRUE(closed);
  ASSERT_EQ(again.size(), events.size());
  EXPECT_EQ(again.back().data, events.back().data);
  EXPECT_EQ(service_->events("run_0000000000000000"), nullptr);
}

TEST_F(JobServiceTest, StopRefusesSubmits) {
  start();
  service_->stop();
  auto out = submit("late");
  EXPECT_EQ(out.kind, SubmitOutcome::Kind::shutting_down);
  EXPECT_TRUE(service_->health().shutdown);
}

// Graceful stop: after begin_stop() no queued job starts, a running one finishes within
// the drain; one still running at stop() goes back to the queue, not to failed.
// The running job is held by the agent until the stop has begun: the queued one must
// stay queued however late its submit is answered (a job that merely slept could end
// first on a loaded machine, and the worker would rightly take the next one).
TEST_F(JobServiceTest, DrainFinishesRunningJobsAndStartsNoNewOnes) {
  store_ = store::open_sqlite_store(":memory:");
  racetest::ScriptedAgent agent;
  jobs::ServiceOptions opts;
  opts.max_concurrent = 1;
  service_ = std::make_unique<jobs::JobService>(*store_, agent, opts);
  service_->start();
  auto running = submit("drained", {{"block", true}});
  ASSERT_TRUE(agent.started.wait());
  auto waiting = submit("not started");
  service_->begin_stop();
  EXPECT_EQ(submit("late").kind, SubmitOutcome::Kind::shutting_down);
  EXPECT_FALSE(service_->drain(50ms)) << "the drain did not wait for the running job";
  agent.release.open();
  EXPECT_TRUE(service_->drain(10s));
  EXPECT_EQ(service_->running(), 0);
  service_->stop();
  service_.reset();  // before `agent` goes
  EXPECT_EQ(store_->get_status(running.job.id)->status, JobStatus::succeeded);
  auto w = store_->get_status(waiting.job.id);
  EXPECT_EQ(w->status, JobStatus::queued);
  EXPECT_EQ(w->attempts, 0);
  EXPECT_EQ(agent.runs.load(), 1);
}

TEST_F(JobServiceTest, JobsStillRunningAfterTheDrainAreRequeued) {
  start(2);
  auto a = submit("long", {{"sleep_seconds", 60}});
  wait_status(a.job.id, {JobStatus::running});
  service_->begin_stop();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(service_->drain(200ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_EQ(service_->running(), 1);
  service_->stop();
  auto j = store_->get_status(a.job.id);
  EXPECT_EQ(j->status, JobStatus::queued);
  EXPECT_EQ(j->attempts, 1);
  EXPECT_FALSE(j->error);
}

namespace {
// Fails the first `failures` attempts of every job, then echoes the prompt.
struct FlakyAgent : jobs::Agent {
  int failures = 0;
  std::string id() const override { return "flaky"; }
  jobs::AgentResult run(const jobs::Job& job, jobs::CancelToken&,
                          jobs::ProgressSink&) override {
    if (job.attempts <= failures)
      return {false, {}, "flake #" + std::to_string(job.attempts), {}, nullptr};
    return {true, job.prompt, {}, {}, {{"usage", {{"total_tokens", 3}}}}};
  }
};

class RetryTest : public ::testing::Test {
 protected:
  void start(int failures, int cap = 10) {
    agent_.failures = failures;
    store_ = store::open_sqlite_store(":memory:");
    jobs::ServiceOptions opts;
    opts.max_concurrent = 1;
    opts.max_retries_cap = cap;
    opts.retry_base_delay = 50ms;
    service_ = std::make_unique<jobs::JobService>(*store_, agent_, opts);
    service_->start();
  }
  void TearDown() override { service_->stop(); }
  std::string submit(int max_retries) {
    jobs::Job j;
    j.prompt = "again";
    j.max_retries = max_retries;
    std::promise<SubmitOutcome> p;
    service_->submit(std::move(j), [&p](SubmitOutcome o) { p.set_value(std::move(o)); });
    return p.get_future().get().job.id;
  }
  jobs::Job wait_terminal(const std::string& id) {
    std::promise<void> p;
    service_->wait_terminal(id, 10s, [&p] { p.set_value(); });
    p.get_future().wait();
    return *service_->get(id);
  }
  FlakyAgent agent_;
  std::unique_ptr<jobs::Store> store_;
  std::unique_ptr<jobs::JobService> service_;
};
}  // namespace

TEST_F(RetryTest, FailedAttemptsAreRetriedUntilOneSucceeds) {
  start(2);
  auto t0 = std::chrono::steady_clock::now();
  auto job = wait_terminal(submit(3));
  EXPECT_EQ(job.status, JobStatus::succeeded);
  EXPECT_EQ(job.attempts, 3);
  EXPECT_EQ(job.result, "again");
  EXPECT_EQ(job.metrics["usage"]["total_tokens"], 3);
  EXPECT_FALSE(job.error.has_value());
  // Backoff: ~50 ms then ~100 ms, each with jitter down to half.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 70ms);
}

TEST_F(RetryTest, GivesUpAfterMaxRetriesWithTheLastError) {
  start(100);
  auto job = wait_terminal(submit(2));
  EXPECT_EQ(job.status, JobStatus::failed);
  EXPECT_EQ(job.attempts, 3);
  EXPECT_EQ(job.error, "flake #3");
}

TEST_F(RetryTest, NoRetriesByDefault) {
  start(1);
  auto job = wait_terminal(submit(0));
  EXPECT_EQ(job.status, JobStatus::failed);
  EXPECT_EQ(job.attempts, 1);
}

TEST_F(RetryTest, TheServerCapsMaxRetries) {
  start(100, /*cap=*/1);
  auto job = wait_terminal(submit(5));
  EXPECT_EQ(job.status, JobStatus::failed);
  EXPECT_EQ(job.attempts, 2);
}

TEST_F(RetryTest, EventsShowEachAttemptAndEndOnce) {
  start(1);
  auto id = submit(1);
  auto job = wait_terminal(id);
  ASSERT_EQ(job.status, JobStatus::succeeded);
  bool closed = false;
  auto events = service_->events(id)->since(0, &closed);
  ASSERT_TRUE(closed);
  std::vector<std::string> statuses;
  for (auto& e : events)
    if (e.type == "status") statuses.push_back(nlohmann::json::parse(e.data)["status"]);
  EXPECT_EQ(statuses, (std::vector<std::string>{"queued", "running", "queued", "running"}));
  EXPECT_EQ(events.back().type, "result");
}

TEST_F(RetryTest, CancelWhileWaitingForARetry) {
  start(100);
  auto id = submit(5);
  // After the first failure it waits ~25-50 ms, then ~50-100 ms, ...: cancel in between.
  for (int i = 0; i < 500; ++i) {
    auto s = service_->status(id);
    if (s && s->attempts >= 1 && s->status == JobStatus::queued) break;
    std::this_thread::sleep_for(1ms);
  }
  auto c = service_->cancel(id);
  EXPECT_EQ(c.kind, jobs::CancelOutcome::Kind::cancelled);
  std::this_thread::sleep_for(300ms);
  auto job = service_->get(id);
  EXPECT_EQ(job->status, JobStatus::cancelled);
  bool closed = false;
  auto events = service_->events(id)->since(0, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(events.back().type, "cancelled");
}

namespace {
// Answers with bytes that are not UTF-8, as a careless program or model might.
struct RawBytesAgent : jobs::Agent {
  std::string id() const override { return "raw"; }
  jobs::AgentResult run(const jobs::Job&, jobs::CancelToken&,
                          jobs::ProgressSink& sink) override {
    sink.output("\xff\xfe partial");
    sink.progress(50.0, std::string("half \xc3"), 1, 2);
    return {true, "ok \xff end", {}, {}, {{"note", "\xfe"}}};
  }
};
}  // namespace

TEST(JobServiceBytes, OutputThatIsNotUtf8NeverTakesTheServiceDown) {
  RawBytesAgent agent;
  auto store = store::open_sqlite_store(":memory:");
  jobs::JobService service(*store, agent, jobs::ServiceOptions{});
  service.start();
  jobs::Job j;
  j.prompt = "p";
  std::promise<SubmitOutcome> p;
  service.submit(std::move(j), [&p](SubmitOutcome o) { p.set_value(std::move(o)); });
  auto id = p.get_future().get().job.id;
  std::promise<void> done;
  service.wait_terminal(id, 10s, [&done] { done.set_value(); });
  done.get_future().wait();
  auto job = service.get(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, JobStatus::succeeded);
  EXPECT_EQ(job->result, "ok \xff end") << "the result is kept as the agent gave it";
  bool closed = false;
  for (const auto& e : service.events(id)->since(0, &closed))
    EXPECT_TRUE(nlohmann::json::accept(e.data)) << e.type;
  EXPECT_TRUE(closed);
  service.stop();
}
