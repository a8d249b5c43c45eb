// A node that loses its lease (several nodes on one store) stops its running jobs and
// records nothing of them: another node runs them again.
#include "forwarding_store.hpp"
#include "race_helpers.hpp"
#include "runq/jobs/job_service.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>

using namespace runq;
using jobs::JobStatus;
using racetest::ForwardingStore;
using racetest::ScriptedAgent;
using racetest::eventually;
using racetest::memory_store;
using racetest::submit;

namespace {

// Keeps the service's lease-lost handler so the test can fire it; counts the writes
// that would record a job's end.
class LeaseStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void on_lease_lost(std::function<void()> stop_all) override {
    std::lock_guard l(mu_);
    handler_ = std::move(stop_all);
  }
  bool has_handler() {
    std::lock_guard l(mu_);
    return static_cast<bool>(handler_);
  }
  void lose_lease() {
    std::lock_guard l(mu_);
    handler_();
  }
  bool finish(const jobs::Job& j) override {
    ++finishes;
    return ForwardingStore::finish(j);
  }
  bool requeue_for_retry(const jobs::Job& j, std::int64_t not_before) override {
    ++requeues;
    return ForwardingStore::requeue_for_retry(j, not_before);
  }
  std::atomic<int> finishes{0}, requeues{0};

 private:
  std::mutex mu_;
  std::function<void()> handler_;
};

jobs::ServiceOptions options() {
  jobs::ServiceOptions o;
  o.max_concurrent = 2;
  o.retention_s = 0;
  return o;
}

JobStatus stored_status(jobs::Store& s, const std::string& id) { return s.get_status(id)->status; }

}  // namespace

TEST(LeaseLost, RunningJobsStopAndNothingOfThemIsRecorded) {
  LeaseStore store(memory_store());
  ScriptedAgent agent;
  jobs::JobService service(store, agent, options());
  service.start();
  ASSERT_TRUE(store.has_handler());
  // The agent returns ok once its token stops: a lost lease wins even over that.
  const std::string id = submit(service, {{"wait_cancel", true}}).job.id;
  ASSERT_TRUE(agent.started.wait());
  store.lose_lease();
  ASSERT_TRUE(eventually([&] { return service.health().running_jobs == 0; }));
  EXPECT_EQ(store.finishes.load(), 0);
  EXPECT_EQ(store.requeues.load(), 0);
  EXPECT_EQ(stored_status(store, id), JobStatus::running);  // for a rescue elsewhere
  // The node itself goes on: the next job runs and ends as usual.
  const std::string next = submit(service, nlohmann::json::object()).job.id;
  ASSERT_TRUE(eventually([&] { return stored_status(store, next) == JobStatus::succeeded; }));
  service.stop();
}

TEST(LeaseLost, TheServiceTakesItsHandlerBackWhenItGoes) {
  LeaseStore store(memory_store());
  ScriptedAgent agent;
  {
    jobs::JobService service(store, agent, options());
    EXPECT_TRUE(store.has_handler());
  }
  EXPECT_FALSE(store.has_handler());
}
