// jobs::request_fingerprint and jobs::scoped_idempotency_key. The hashes below are what
// runq stored before the fingerprint moved to jobs/ (read from a database the old binary
// wrote): a stored idempotency key must keep matching its replays across upgrades.
#include "runq/jobs/fingerprint.hpp"

#include <gtest/gtest.h>

using namespace runq;
using nlohmann::json;

TEST(Fingerprint, DefaultsHashAsStored) {
  jobs::Job job;
  job.prompt = "x";
  job.timeout_s = 3600;  // the default filled in: not part of the hash
  EXPECT_EQ(jobs::request_fingerprint(job, 0),
            "5dd13af41d385c74161073f4b9362bc943e35d042a2a9192f8fe9aa3aced937e");
}

TEST(Fingerprint, EveryFieldHashesAsStored) {
  jobs::Job job;
  job.prompt = "h\xc3\xa9llo";
  job.agent_file = "a.yaml";
  job.config = json{{"b", {1, 2.5}}, {"a", nullptr}};
  job.timeout_s = 120;
  job.session_id = "s";
  job.priority = -3;
  job.metadata = json{{"z", "1"}, {"a", "2"}};
  job.max_retries = 2;
  job.framework.reset();
  job.recipe_config = json{{"k", "v"}};
  EXPECT_EQ(jobs::request_fingerprint(job, 120),
            "0e63b4ac2dcc5bbb0d6ce2246cc19607eebb23b6787d5df87badf3f789c3adc5");
  // Bookkeeping is not the request.
  job.owner = "someone";
  job.idempotency_key = "g:k";
  EXPECT_EQ(jobs::request_fingerprint(job, 120),
            "0e63b4ac2dcc5bbb0d6ce2246cc19607eebb23b6787d5df87badf3f789c3adc5");
  EXPECT_NE(jobs::request_fingerprint(job, 0), jobs::request_fingerprint(job, 120));
}

TEST(Fingerprint, ScopedKeys) {
  EXPECT_EQ(jobs::scoped_idempotency_key("global", std::string("s"), "k"), "g:k");
  EXPECT_EQ(jobs::scoped_idempotency_key("session", std::string("s"), "k"), "s:1:s:k");
  EXPECT_EQ(jobs::scoped_idempotency_key("session", std::nullopt, "k"), "s:0::k");
  EXPECT_EQ(jobs::scoped_idempotency_key("none", std::string("s"), "k"), std::nullopt);
}
