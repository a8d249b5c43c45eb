#include "runq/jobs/job.hpp"

#include <gtest/gtest.h>

using namespace runq::jobs;

TEST(JobStatus, RoundTripsEveryName) {
  for (auto s : {JobStatus::queued, JobStatus::running, JobStatus::succeeded,
                 JobStatus::failed, JobStatus::cancelled}) {
    auto parsed = parse_status(to_string(s));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_FALSE(parse_status("done").has_value());
  EXPECT_FALSE(parse_status("Queued").has_value());
  EXPECT_FALSE(parse_status("").has_value());
}

TEST(JobStatus, TerminalStates) {
  EXPECT_FALSE(is_terminal(JobStatus::queued));
  EXPECT_FALSE(is_terminal(JobStatus::running));
  EXPECT_TRUE(is_terminal(JobStatus::succeeded));
  EXPECT_TRUE(is_terminal(JobStatus::failed));
  EXPECT_TRUE(is_terminal(JobStatus::cancelled));
}

TEST(JobStatus, StateMachine) {
  EXPECT_TRUE(can_transition(JobStatus::queued, JobStatus::running));
  EXPECT_TRUE(can_transition(JobStatus::queued, JobStatus::cancelled));
  EXPECT_FALSE(can_transition(JobStatus::queued, JobStatus::succeeded));
  EXPECT_FALSE(can_transition(JobStatus::queued, JobStatus::failed));
  EXPECT_TRUE(can_transition(JobStatus::running, JobStatus::succeeded));
  EXPECT_TRUE(can_transition(JobStatus::running, JobStatus::failed));
  EXPECT_TRUE(can_transition(JobStatus::running, JobStatus::cancelled));
  // A retry or a stop at shutdown puts a running job back in the queue.
  EXPECT_TRUE(can_transition(JobStatus::running, JobStatus::queued));
  EXPECT_FALSE(can_transition(JobStatus::queued, JobStatus::queued));
  EXPECT_FALSE(can_transition(JobStatus::running, JobStatus::running));
  for (auto from : {JobStatus::succeeded, JobStatus::failed, JobStatus::cancelled})
    for (auto to : {JobStatus::queued, JobStatus::running, JobStatus::succeeded,
                    JobStatus::failed, JobStatus::cancelled})
      EXPECT_FALSE(can_transition(from, to)) << "terminal states never change";
}
