// News between nodes on one PostgreSQL database (the PostgreSQL store's publish,
// events_after, request_cancel and its listener), with two stores as two nodes on a real
// server (see pg_test_db.hpp).
#include "pg_test_db.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace runq::jobs;
using namespace pg_test;

namespace {

Job make_job(const std::string& id) {
  Job j;
  j.id = id;
  j.prompt = "prompt of " + id;
  j.created_at_us = 1000;
  j.request_hash = "hash-" + id;
  return j;
}

Store::PublishedEvent event(const std::string& job, int attempt, std::int64_t id,
                            const std::string& type = "status") {
  return {job, attempt, Event{id, type, "{\"n\":" + std::to_string(id) + "}"}};
}

// What a node's listener heard, for the test to wait on.
struct Heard {
  std::mutex mu;
  std::vector<std::string> changed, cancels;
  int queued = 0;
  bool has_changed(const std::string& id) {
    std::lock_guard lock(mu);
    return std::find(changed.begin(), changed.end(), id) != changed.end();
  }
  bool has_cancel(const std::string& id) {
    std::lock_guard lock(mu);
    return std::find(cancels.begin(), cancels.end(), id) != cancels.end();
  }
  Store::ClusterNews news(bool with_cancels = true) {
    Store::ClusterNews n;
    n.jobs_changed = [this](const std::vector<std::string>& ids) {
      std::lock_guard lock(mu);
      changed.insert(changed.end(), ids.begin(), ids.end());
    };
    if (with_cancels) {
      n.cancel_requested = [this](const std::string& id) {
        std::lock_guard lock(mu);
        cancels.push_back(id);
      };
    }
    n.jobs_queued = [this](int k) {
      std::lock_guard lock(mu);
      queued += k;
    };
    return n;
  }
};

class PgClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(server_uri(), nullptr) << kNoServer;
    db = std::make_unique<FreshDatabase>();
    a = db->open_node("a", 3600);
    b = db->open_node("b", 3600);
  }
  void TearDown() override {
    a.reset();
    b.reset();
    db.reset();
  }
  // Job `id` queued and claimed by node a (attempt 1).
  void running_on_a(const std::string& id) {
    a->insert({make_job(id)});
    auto claimed = a->claim_next(2000);
    ASSERT_TRUE(claimed && claimed->id == id);
  }
  std::unique_ptr<FreshDatabase> db;
  std::unique_ptr<Store> a, b;
};

}  // namespace

TEST_F(PgClusterTest, StoresAreShared) {
  EXPECT_TRUE(a->shared());
  EXPECT_TRUE(b->shared());
}

TEST_F(PgClusterTest, OnlyTheNodeRunningAnAttemptStoresItsEvents) {
  running_on_a("j");
  a->publish({event("j", 1, 1), event("j", 1, 2)}, {"j"});
  auto seen = b->events_after("j", 0);
  EXPECT_TRUE(seen.found);
  EXPECT_FALSE(seen.terminal);
  ASSERT_EQ(seen.events.size(), 2u);
  EXPECT_EQ(seen.events[0].id, 1);
  EXPECT_EQ(seen.events[1].type, "status");
  EXPECT_EQ(seen.events[1].data, "{\"n\":2}");
  EXPECT_EQ(b->events_after("j", 1).events.size(), 1u);

  b->publish({event("j", 1, 3)}, {"j"});  // b does not run it
  a->publish({event("j", 2, 3)}, {"j"});  // an attempt a does not run
  a->publish({event("j", 1, 2, "progress")}, {"j"});  // a copy: the first one stays
  seen = a->events_after("j", 0);
  ASSERT_EQ(seen.events.size(), 2u);
  EXPECT_EQ(seen.events[1].type, "status");
}

TEST_F(PgClusterTest, AnEndDropsTheEventsAndNoLateOneIsStored) {
  running_on_a("j");
  a->publish({event("j", 1, 1)}, {"j"});
  Job done = *a->get("j");
  done.status = JobStatus::succeeded;
  done.result = "r";
  done.events_json = R"([{"id":1,"event":"status","data":"{}"}])";
  ASSERT_TRUE(a->finish(done));
  auto seen = b->events_after("j", 0);
  EXPECT_TRUE(seen.found);
  EXPECT_TRUE(seen.terminal);
  EXPECT_TRUE(seen.events.empty());
  a->publish({event("j", 1, 2)}, {"j"});  // late: the job has ended
  EXPECT_EQ(db->query("SELECT count(*) FROM job_events"), "0");
  EXPECT_FALSE(b->events_after("gone", 0).found);
}

TEST_F(PgClusterTest, DeletingAJobDeletesItsEvents) {
  running_on_a("j");
  a->publish({event("j", 1, 1)}, {"j"});
  // An event left behind (as a publish racing with the end could leave one).
  db->query("UPDATE jobs SET status = 'failed', completed_at = 3000 WHERE id = 'j'");
  ASSERT_EQ(db->query("SELECT count(*) FROM job_events"), "1");
  EXPECT_EQ(b->remove("j"), RemoveOutcome::removed);
  EXPECT_EQ(db->query("SELECT count(*) FROM job_events"), "0");
}

TEST_F(PgClusterTest, OtherNodesHearOfChangedAndQueuedJobs) {
  Heard heard;
  b->on_cluster_news(heard.news());
  running_on_a("j");  // the insert tells of a queued job
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(heard.mu);
    return heard.queued >= 1;
  }));
  a->publish({event("j", 1, 1)}, {"j", "other"});
  EXPECT_TRUE(eventually([&] { return heard.has_changed("j") && heard.has_changed("other"); }));
  b->on_cluster_news({});
}

TEST_F(PgClusterTest, ACancelReachesTheNodeThatRunsTheJob) {
  Heard heard;
  a->on_cluster_news(heard.news());
  running_on_a("j");
  b->insert({make_job("queued")});
  EXPECT_FALSE(b->request_cancel("queued"));  // not running: cancel_queued's business
  EXPECT_FALSE(b->request_cancel("nope"));
  EXPECT_TRUE(b->request_cancel("j"));
  EXPECT_TRUE(eventually([&] { return heard.has_cancel("j"); }));
  EXPECT_FALSE(heard.has_cancel("queued"));
  a->on_cluster_news({});
}

// A cancel whose NOTIFY was missed (here: no handler yet) reaches the node once its
// listener has reconnected: it asks the database for the cancels of its jobs.
TEST_F(PgClusterTest, ACancelMissedWhileNotListeningArrivesAfterReconnecting) {
  Heard heard;
  a->on_cluster_news(heard.news(/*with_cancels=*/false));
  running_on_a("j");
  ASSERT_TRUE(b->request_cancel("j"));
  b->publish({}, {"marker"});  // NOTIFYs arrive in commit order: the cancel came first
  ASSERT_TRUE(eventually([&] { return heard.has_changed("marker"); }));
  a->on_cluster_news(heard.news());
  EXPECT_FALSE(heard.has_cancel("j"));
  db->query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'runq/a/listen'");
  EXPECT_TRUE(eventually([&] { return heard.has_cancel("j"); }));
  a->on_cluster_news({});
}

TEST_F(PgClusterTest, TheRescueCancelsAJobWhoseCancelWasAskedFor) {
  running_on_a("j");
  a->insert({make_job("k")});
  ASSERT_TRUE(a->claim_next(2000));
  ASSERT_TRUE(b->request_cancel("j"));
  db->expire_node("a");
  auto counts = b->requeue_running(3);
  EXPECT_EQ(counts.requeued, 1);  // k runs again; j does not
  auto j = b->get_status("j");
  EXPECT_EQ(j->status, JobStatus::cancelled);
  EXPECT_TRUE(j->completed_at_us.has_value());
  EXPECT_EQ(b->get_status("k")->status, JobStatus::queued);
}

TEST_F(PgClusterTest, AClaimForgetsAnOldCancelRequest) {
  running_on_a("j");
  ASSERT_TRUE(b->request_cancel("j"));
  Job running = *a->get("j");
  ASSERT_TRUE(a->requeue_for_retry(running, 0));  // the attempt failed: a retry
  auto again = b->claim_next(3000);
  ASSERT_TRUE(again);
  EXPECT_EQ(db->query("SELECT cancel_requested FROM jobs WHERE id = 'j'"), "f");
}
