// The one place a job's status changes refuses what the state machine forbids.
#include "runq/store/sqlite_store.hpp"
#include "runq/util/time.hpp"
#include "../../src/jobs/transitions.hpp"

#include <gtest/gtest.h>

using namespace runq;
using jobs::JobStatus;
using jobs::Transitions;

namespace {

class TransitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    job_.id = "run_transition01";
    job_.prompt = "p";
    job_.created_at_us = util::now_us();
    job_.timeout_s = 60;
    job_.request_hash = "h";
    ASSERT_EQ(store_->insert({job_}).at(0).outcome, jobs::InsertResult::Outcome::inserted);
  }
  std::unique_ptr<jobs::Store> store_ = store::open_sqlite_store(":memory:");
  Transitions t_{*store_};
  jobs::Job job_;
};

TEST_F(TransitionsTest, LegalPathRunsToTheEnd) {
  auto claimed = store_->claim_next(util::now_us());
  ASSERT_TRUE(claimed);
  jobs::Job view = *claimed;
  EXPECT_TRUE(t_.to_running(view));
  EXPECT_TRUE(t_.requeue(view, 0));  // a retry: running -> queued
  EXPECT_EQ(view.status, JobStatus::queued);
  EXPECT_EQ(store_->get_status(job_.id)->status, JobStatus::queued);
  view = *store_->claim_next(util::now_us());
  jobs::Job end = view;
  end.status = JobStatus::succeeded;
  end.result = "r";
  EXPECT_EQ(t_.finish(view, end), Transitions::Finish::stored);
  EXPECT_EQ(view.status, JobStatus::succeeded);
}

TEST_F(TransitionsTest, IllegalTransitionIsRefusedAndNothingIsWritten) {
  auto view = *store_->claim_next(util::now_us());
  jobs::Job end = view;
  end.status = JobStatus::failed;
  end.error = "e";
  ASSERT_EQ(t_.finish(view, end), Transitions::Finish::stored);
  // A terminal job never changes: not back to the queue, not to another end.
  EXPECT_FALSE(t_.requeue(view, 0));
  end.status = JobStatus::succeeded;
  EXPECT_EQ(t_.finish(view, end), Transitions::Finish::refused);
  EXPECT_EQ(view.status, JobStatus::failed);
  auto stored = store_->get(job_.id);
  EXPECT_EQ(stored->status, JobStatus::failed);
  EXPECT_EQ(stored->error, "e");
  // queued -> succeeded skips running.
  jobs::Job queued = job_;
  queued.id = "run_transition02";
  ASSERT_EQ(store_->insert({queued}).at(0).outcome, jobs::InsertResult::Outcome::inserted);
  jobs::Job done = queued;
  done.status = JobStatus::succeeded;
  EXPECT_EQ(t_.finish(queued, done), Transitions::Finish::refused);
  EXPECT_EQ(store_->get_status(queued.id)->status, JobStatus::queued);
}

}  // namespace
