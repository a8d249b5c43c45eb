// Tests of the SQLite job store against a real database file in a temp dir and against
// ":memory:" (the Store-level tests run on both).
#include "runq/store/sqlite_store.hpp"

#include "forwarding_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using runq::jobs::Job;
using runq::jobs::JobStatus;
using namespace runq::jobs;  // the Store port
using namespace runq::store;  // the SQLite implementation

namespace {

// A fresh temp directory, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "runq-store-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

Job make_job(const std::string& id, int priority = 0, std::int64_t created = 1000) {
  Job j;
  j.id = id;
  j.prompt = "prompt of " + id;
  j.priority = priority;
  j.created_at_us = created;
  j.timeout_s = 60;
  j.request_hash = "hash-" + id;
  return j;
}

Job with_key(Job j, const std::string& key, const std::string& hash) {
  j.idempotency_key = key;
  j.request_hash = hash;
  return j;
}

Job finished(Job j, JobStatus s, std::int64_t at = 5000) {
  j.status = s;
  j.completed_at_us = at;
  return j;
}

// Runs one SQL query on the file with a separate raw connection; the first column of
// every row, joined with '\n'.
std::string raw_query(const fs::path& file, const std::string& sql, int col = 0) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (!out.empty()) out += '\n';
    auto* t = sqlite3_column_text(st, col);
    out += t ? reinterpret_cast<const char*>(t) : "NULL";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

InsertResult::Outcome insert_one_outcome(Store& s, const Job& j) {
  return s.insert({j}).at(0).outcome;
}

// Store-level tests, once on a file and once on ":memory:".
class StoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { store = open_sqlite_store(db_path()); }
  bool on_file() const { return GetParam(); }
  std::string db_path() const { return on_file() ? (dir.path / "jobs.db").string() : ":memory:"; }

  InsertResult insert_one(const Job& j) {
    auto r = store->insert({j});
    EXPECT_EQ(r.size(), 1u);
    return r.at(0);
  }

  TempDir dir;
  std::unique_ptr<Store> store;
};

INSTANTIATE_TEST_SUITE_P(FileAndMemory, StoreTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "file" : "memory"; });

TEST_P(StoreTest, KindIsSqlite) { EXPECT_EQ(store->kind(), "sqlite"); }

TEST_P(StoreTest, RoundTripsEveryField) {
  Job j;
  j.id = "run_0123456789ab";
  j.status = JobStatus::queued;
  j.progress = {42.5, std::string("step two"), 2, 5};
  j.created_at_us = 1'764'000'000'123'456;
  j.started_at_us = 1'764'000'001'000'000;
  j.completed_at_us = 1'764'000'002'000'000;
  j.agent_id = "agent-1";
  j.run_id = "agent-run-9";
  j.session_id = "sess-1";
  j.error = "an error";
  j.result = "a result \xE2\x9C\x93 with \0 nothing";  // UTF-8; C string ends at \0
  j.attempts = 3;
  j.prompt = std::string("multi\nline prompt with 'quotes' and \"dq\" and a \0 NUL", 52);
  j.agent_file = "agents.yaml";
  j.agent_yaml = "name: x\nsteps: []\n";
  j.recipe_name = "recipe";
  j.recipe_config = {{"a", 1}, {"nested", {{"b", {1, 2, 3}}, {"c", nullptr}}}};
  j.config = {{"model", "gpt"}, {"temperature", 0.25}};
  j.framework = "crewai";
  j.webhook_url = "https://example.com/hook";
  j.timeout_s = 3600;
  j.priority = -7;
  j.metadata = {{"k1", "v1"}, {"k2", "v2"}};
  j.max_retries = 4;
  j.owner = "owner-hash";
  j.idempotency_key = "global:key-1";
  j.request_hash = "abcdef";
  j.events_json = R"([{"id":1,"event":"status","data":{"status":"running"}}])";

  auto r = insert_one(j);
  EXPECT_EQ(r.outcome, InsertResult::Outcome::inserted);
  EXPECT_GT(r.job.seq, 0);
  auto g = store->get(j.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->id, j.id);
  EXPECT_EQ(g->status, j.status);
  EXPECT_DOUBLE_EQ(g->progress.percentage, 42.5);
  EXPECT_EQ(g->progress.current_step, j.progress.current_step);
  EXPECT_EQ(g->progress.steps_completed, 2);
  EXPECT_EQ(g->progress.steps_total, 5);
  EXPECT_EQ(g->created_at_us, j.created_at_us);
  EXPECT_EQ(g->started_at_us, j.started_at_us);
  EXPECT_EQ(g->completed_at_us, j.completed_at_us);
  EXPECT_EQ(g->agent_id, j.agent_id);
  EXPECT_EQ(g->run_id, j.run_id);
  EXPECT_EQ(g->session_id, j.session_id);
  EXPECT_EQ(g->error, j.error);
  EXPECT_EQ(g->result, j.result);
  EXPECT_EQ(g->attempts, 3);
  EXPECT_EQ(g->prompt, j.prompt);
  EXPECT_EQ(g->prompt.size(), 52u);
  EXPECT_EQ(g->agent_file, j.agent_file);
  EXPECT_EQ(g->agent_yaml, j.agent_yaml);
  EXPECT_EQ(g->recipe_name, j.recipe_name);
  EXPECT_EQ(g->recipe_config, j.recipe_config);
  EXPECT_EQ(g->config, j.config);
  EXPECT_EQ(g->framework, j.framework);
  EXPECT_EQ(g->webhook_url, j.webhook_url);
  EXPECT_EQ(g->timeout_s, 3600);
  EXPECT_EQ(g->priority, -7);
  EXPECT_EQ(g->metadata, j.metadata);
  EXPECT_EQ(g->max_retries, 4);
  EXPECT_EQ(g->owner, j.owner);
  EXPECT_EQ(g->idempotency_key, j.idempotency_key);
  EXPECT_EQ(g->request_hash, j.request_hash);
  EXPECT_EQ(g->seq, r.job.seq);
  EXPECT_EQ(g->events_json, j.events_json);

  // get_status: the same minus the large fields.
  auto s = store->get_status(j.id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->id, j.id);
  EXPECT_EQ(s->metadata, j.metadata);
  EXPECT_EQ(s->progress.current_step, j.progress.current_step);
  EXPECT_EQ(s->error, j.error);
  EXPECT_EQ(s->attempts, 3);
  EXPECT_EQ(s->seq, r.job.seq);
  EXPECT_TRUE(s->prompt.empty());
  EXPECT_FALSE(s->result);
  EXPECT_FALSE(s->agent_yaml);
  EXPECT_TRUE(s->events_json.empty());
}

TEST_P(StoreTest, RoundTripsOptionalNullsAndEmptyValues) {
  Job j = make_job("run_nulls");
  j.framework = std::nullopt;  // differs from the default "praisonai"
  j.owner = "";
  j.config = nlohmann::json::object();
  j.metadata = nlohmann::json::object();
  j.recipe_config = nlohmann::json::object();
  insert_one(j);
  for (auto g : {store->get(j.id), store->get_status(j.id)}) {
    ASSERT_TRUE(g);
    EXPECT_FALSE(g->progress.current_step);
    EXPECT_FALSE(g->progress.steps_total);
    EXPECT_FALSE(g->started_at_us);
    EXPECT_FALSE(g->completed_at_us);
    EXPECT_FALSE(g->agent_id);
    EXPECT_FALSE(g->run_id);
    EXPECT_FALSE(g->session_id);
    EXPECT_FALSE(g->error);
    EXPECT_FALSE(g->result);
    EXPECT_FALSE(g->agent_file);
    EXPECT_FALSE(g->agent_yaml);
    EXPECT_FALSE(g->recipe_name);
    EXPECT_FALSE(g->framework);
    EXPECT_FALSE(g->webhook_url);
    EXPECT_FALSE(g->idempotency_key);
    EXPECT_EQ(g->owner, "");
    EXPECT_TRUE(g->config.is_object() && g->config.empty());
    EXPECT_TRUE(g->metadata.is_object() && g->metadata.empty());
    EXPECT_TRUE(g->recipe_config.is_object() && g->recipe_config.empty());
    EXPECT_EQ(g->events_json, "");
  }
  // An empty string is not NULL.
  Job e = make_job("run_empty");
  e.session_id = "";
  e.error = "";
  insert_one(e);
  auto g = store->get("run_empty");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->session_id, std::optional<std::string>(""));
  EXPECT_EQ(g->error, std::optional<std::string>(""));
}

TEST_P(StoreTest, GetOfUnknownIdIsNullopt) {
  EXPECT_FALSE(store->get("run_nope"));
  EXPECT_FALSE(store->get_status("run_nope"));
}

TEST_P(StoreTest, AssignsCreatedAtWhenUnset) {
  Job j = make_job("run_t", 0, 0);
  auto r = insert_one(j);
  EXPECT_GT(r.job.created_at_us, 1'600'000'000'000'000);
  EXPECT_EQ(store->get("run_t")->created_at_us, r.job.created_at_us);
}

TEST_P(StoreTest, SeqIncreasesAndIsNeverReused) {
  Job a = make_job("run_a");
  a.seq = 999;  // ignored: the store assigns seq
  auto r = store->insert({a, make_job("run_b"), make_job("run_c")});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_LT(r[0].job.seq, r[1].job.seq);
  EXPECT_LT(r[1].job.seq, r[2].job.seq);
  EXPECT_EQ(store->get("run_c")->seq, r[2].job.seq);
  // Delete the newest; the next job still gets a larger seq.
  ASSERT_TRUE(store->cancel_queued("run_c", 1, std::nullopt));
  ASSERT_EQ(store->remove("run_c"), RemoveOutcome::removed);
  auto d = insert_one(make_job("run_d"));
  EXPECT_GT(d.job.seq, r[2].job.seq);
}

TEST_P(StoreTest, InsertWithoutIdThrowsAndStoresNothing) {
  EXPECT_THROW(store->insert({make_job("run_ok"), make_job("")}), std::invalid_argument);
  EXPECT_FALSE(store->get("run_ok"));
}

TEST_P(StoreTest, EmptyBatchIsFine) { EXPECT_TRUE(store->insert({}).empty()); }

TEST_P(StoreTest, ClaimsByPriorityThenFifo) {
  store->insert({make_job("low1", -1), make_job("mid1", 0), make_job("high1", 5),
                 make_job("mid2", 0), make_job("high2", 5), make_job("low2", -1)});
  std::vector<std::string> order;
  while (auto j = store->claim_next(10)) order.push_back(j->id);
  EXPECT_EQ(order, (std::vector<std::string>{"high1", "high2", "mid1", "mid2", "low1", "low2"}));
}

TEST_P(StoreTest, ClaimOnEmptyIsNullopt) {
  EXPECT_FALSE(store->claim_next(1));
  insert_one(finished(make_job("done"), JobStatus::succeeded));
  EXPECT_FALSE(store->claim_next(1));
}

// One statement for every idle worker: up to `max` jobs in claim order, each running and
// whole; fewer only when no more are due (a retry waiting for its time is not).
TEST_P(StoreTest, ClaimManyTakesUpToMaxInClaimOrder) {
  insert_one(make_job("later"));
  auto later = store->claim_next(5);
  ASSERT_TRUE(later);
  ASSERT_TRUE(store->requeue_for_retry(*later, 1'000'000));  // due long after the claims
  store->insert({make_job("low1", -1), make_job("mid1", 0), make_job("high1", 5),
                 make_job("mid2", 0), make_job("high2", 5), make_job("low2", -1)});
  auto ids = [](const std::vector<Job>& jobs) {
    std::vector<std::string> out;
    for (const Job& j : jobs) out.push_back(j.id);
    return out;
  };
  auto first = store->claim_many(10, 4);
  EXPECT_EQ(ids(first), (std::vector<std::string>{"high1", "high2", "mid1", "mid2"}));
  for (const Job& j : first) {
    EXPECT_EQ(j.status, JobStatus::running);
    EXPECT_EQ(j.started_at_us, 10);
    EXPECT_EQ(j.attempts, 1);
    EXPECT_EQ(j.prompt, "prompt of " + j.id);
    EXPECT_EQ(store->get_status(j.id)->status, JobStatus::running);
  }
  EXPECT_EQ(ids(store->claim_many(11, 4)), (std::vector<std::string>{"low1", "low2"}));
  EXPECT_TRUE(store->claim_many(12, 4).empty());
  EXPECT_TRUE(store->claim_many(2'000'000, 0).empty());
  EXPECT_EQ(ids(store->claim_many(2'000'000, 3)), (std::vector<std::string>{"later"}));
}

// The default claim_many (a store that only claims one at a time): when a later claim
// fails, the jobs claimed before it are handed out, never dropped while running; when the
// first fails, the caller gets the error.
TEST_P(StoreTest, DefaultClaimManyKeepsWhatItClaimedWhenALaterClaimFails) {
  class FailingClaim : public runq::racetest::ForwardingStore {
   public:
    FailingClaim(std::unique_ptr<Store> in, int fail_on)
        : ForwardingStore(std::move(in)), fail_on_(fail_on) {}
    std::optional<Job> claim_next(std::int64_t now) override {
      if (++calls_ == fail_on_) throw std::runtime_error("claim failed");
      return ForwardingStore::claim_next(now);
    }

   private:
    int fail_on_;
    int calls_ = 0;
  };
  store->insert({make_job("a"), make_job("b"), make_job("c")});
  FailingClaim s(std::move(store), /*fail_on=*/2);
  auto got = s.claim_many(10, 3);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "a");
  EXPECT_EQ(s.get_status("b")->status, JobStatus::queued);
  EXPECT_EQ(s.claim_many(11, 3).size(), 2u);  // b and c

  auto other = open_sqlite_store(":memory:");
  other->insert({make_job("d")});
  FailingClaim first_fails(std::move(other), /*fail_on=*/1);
  EXPECT_THROW(first_fails.claim_many(12, 3), std::runtime_error);
  EXPECT_EQ(first_fails.get_status("d")->status, JobStatus::queued);
}

TEST_P(StoreTest, ClaimMarksRunningAndReturnsWholeJob) {
  Job j = make_job("run_x");
  j.events_json = "[]";
  insert_one(j);
  auto c = store->claim_next(777);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, "run_x");
  EXPECT_EQ(c->status, JobStatus::running);
  EXPECT_EQ(c->started_at_us, 777);
  EXPECT_EQ(c->attempts, 1);
  EXPECT_EQ(c->prompt, "prompt of run_x");
  EXPECT_EQ(c->events_json, "[]");
  auto g = store->get_status("run_x");
  EXPECT_EQ(g->status, JobStatus::running);
  EXPECT_EQ(g->attempts, 1);
  EXPECT_EQ(g->started_at_us, 777);
  EXPECT_FALSE(store->claim_next(778));  // taken
}

TEST_P(StoreTest, FinishOnlyOnceAndTerminalNeverChanges) {
  insert_one(make_job("run_f"));
  auto c = store->claim_next(100);
  ASSERT_TRUE(c);
  Job done = *c;
  done.status = JobStatus::succeeded;
  done.result = "the result";
  done.progress = {100.0, std::string("done"), 3, 3};
  done.completed_at_us = 200;
  done.events_json = R"([{"id":1}])";
  done.run_id = "r1";
  done.agent_id = "echo";
  EXPECT_TRUE(store->finish(done));

  Job again = done;
  again.status = JobStatus::failed;
  again.error = "late";
  again.result.reset();
  EXPECT_FALSE(store->finish(again));
  EXPECT_FALSE(store->cancel_queued("run_f", 300, std::string("x")));

  auto g = store->get("run_f");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->status, JobStatus::succeeded);
  EXPECT_EQ(g->result, "the result");
  EXPECT_FALSE(g->error);
  EXPECT_DOUBLE_EQ(g->progress.percentage, 100.0);
  EXPECT_EQ(g->progress.current_step, "done");
  EXPECT_EQ(g->progress.steps_completed, 3);
  EXPECT_EQ(g->progress.steps_total, 3);
  EXPECT_EQ(g->completed_at_us, 200);
  EXPECT_EQ(g->started_at_us, 100);
  EXPECT_EQ(g->events_json, R"([{"id":1}])");
  EXPECT_EQ(g->run_id, "r1");
  EXPECT_EQ(g->agent_id, "echo");

  Job ghost = done;
  ghost.id = "run_gone";
  EXPECT_FALSE(store->finish(ghost));
}

TEST_P(StoreTest, FinishOfQueuedJobAndNonTerminalStatus) {
  insert_one(make_job("run_q"));
  Job bad = make_job("run_q");
  bad.status = JobStatus::running;
  EXPECT_THROW(store->finish(bad), std::invalid_argument);
  Job f = finished(make_job("run_q"), JobStatus::failed, 0);
  f.completed_at_us.reset();  // the store stamps it
  f.error = "boom";
  EXPECT_TRUE(store->finish(f));
  auto g = store->get("run_q");
  EXPECT_EQ(g->status, JobStatus::failed);
  EXPECT_EQ(g->error, "boom");
  EXPECT_TRUE(g->completed_at_us && *g->completed_at_us > 0);
}

TEST_P(StoreTest, CancelQueuedOnlyForQueued) {
  store->insert({make_job("q"), make_job("r")});
  ASSERT_EQ(store->claim_next(1)->id, "q");
  EXPECT_FALSE(store->cancel_queued("q", 2, std::string("no")));  // running
  EXPECT_TRUE(store->cancel_queued("r", 3, std::string("user asked")));
  EXPECT_FALSE(store->cancel_queued("r", 4, std::string("twice")));
  EXPECT_FALSE(store->cancel_queued("nope", 4, std::nullopt));
  auto g = store->get("r");
  EXPECT_EQ(g->status, JobStatus::cancelled);
  EXPECT_EQ(g->completed_at_us, 3);
  EXPECT_EQ(g->error, "user asked");
  EXPECT_EQ(store->get("q")->status, JobStatus::running);

  insert_one(make_job("n"));
  EXPECT_TRUE(store->cancel_queued("n", 5, std::nullopt));
  EXPECT_FALSE(store->get("n")->error);
  EXPECT_FALSE(store->claim_next(6));
}

TEST_P(StoreTest, RemoveOnlyTerminalAndFreesKey) {
  insert_one(with_key(make_job("j1"), "k", "h1"));
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::not_terminal);  // queued
  store->claim_next(1);
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::not_terminal);  // running
  EXPECT_EQ(store->remove("nope"), RemoveOutcome::not_found);
  // While j1 exists the key replays.
  EXPECT_EQ(insert_one(with_key(make_job("j2"), "k", "h1")).outcome,
            InsertResult::Outcome::replayed);
  EXPECT_TRUE(store->finish(finished(make_job("j1"), JobStatus::succeeded)));
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::removed);
  EXPECT_FALSE(store->get("j1"));
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::not_found);
  // The key is free again: the same key (even another request) makes a new job.
  auto r = insert_one(with_key(make_job("j3"), "k", "h-other"));
  EXPECT_EQ(r.outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(r.job.id, "j3");
  EXPECT_TRUE(store->get("j3"));
}

TEST_P(StoreTest, IdempotencyReplayAndConflict) {
  Job first = with_key(make_job("run_1"), "key-a", "h");
  first.prompt = "original";
  auto r1 = insert_one(first);
  EXPECT_EQ(r1.outcome, InsertResult::Outcome::inserted);
  store->claim_next(50);  // the stored state moves on

  auto r2 = insert_one(with_key(make_job("run_2"), "key-a", "h"));
  EXPECT_EQ(r2.outcome, InsertResult::Outcome::replayed);
  EXPECT_EQ(r2.job.id, "run_1");
  EXPECT_EQ(r2.job.status, JobStatus::running);  // as stored
  EXPECT_EQ(r2.job.prompt, "original");
  EXPECT_FALSE(store->get("run_2"));

  auto r3 = insert_one(with_key(make_job("run_3"), "key-a", "different"));
  EXPECT_EQ(r3.outcome, InsertResult::Outcome::conflict);
  EXPECT_EQ(r3.job.id, "run_1");
  EXPECT_FALSE(store->get("run_3"));

  // Another key is independent; no key never collides.
  EXPECT_EQ(insert_one(with_key(make_job("run_4"), "key-b", "h")).outcome,
            InsertResult::Outcome::inserted);
  EXPECT_EQ(insert_one(make_job("run_5")).outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(insert_one(make_job("run_6")).outcome, InsertResult::Outcome::inserted);
}

// Idempotency keys are per owner (API key): one key under two owners is two jobs, and
// deleting (or expiring) one owner's job frees only that owner's key.
TEST_P(StoreTest, IdempotencyKeysArePerOwner) {
  auto owned = [](Job j, const std::string& owner) {
    j.owner = owner;
    return j;
  };
  auto a1 = insert_one(owned(with_key(make_job("a1"), "k", "h"), "owner-a"));
  auto b1 = insert_one(owned(with_key(make_job("b1"), "k", "h"), "owner-b"));
  auto n1 = insert_one(with_key(make_job("n1"), "k", "h"));  // owner "" (keys off)
  EXPECT_EQ(a1.outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(b1.outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(n1.outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(store->get("b1")->owner, "owner-b");
  auto a2 = insert_one(owned(with_key(make_job("a2"), "k", "h"), "owner-a"));
  EXPECT_EQ(a2.outcome, InsertResult::Outcome::replayed);
  EXPECT_EQ(a2.job.id, "a1");
  auto b2 = insert_one(owned(with_key(make_job("b2"), "k", "other"), "owner-b"));
  EXPECT_EQ(b2.outcome, InsertResult::Outcome::conflict);
  EXPECT_EQ(b2.job.id, "b1");

  // Removing a1 frees owner-a's key only.
  ASSERT_TRUE(store->finish(finished(make_job("a1"), JobStatus::succeeded, 100)));
  EXPECT_EQ(store->remove("a1"), RemoveOutcome::removed);
  EXPECT_EQ(insert_one(owned(with_key(make_job("b3"), "k", "h"), "owner-b")).job.id, "b1");
  EXPECT_EQ(insert_one(owned(with_key(make_job("a3"), "k", "h"), "owner-a")).outcome,
            InsertResult::Outcome::inserted);
  // Retention frees owner-b's key only.
  ASSERT_TRUE(store->finish(finished(make_job("b1"), JobStatus::succeeded, 100)));
  EXPECT_EQ(store->delete_finished_before(1000, 10), 1);
  EXPECT_EQ(insert_one(owned(with_key(make_job("b4"), "k", "h"), "owner-b")).outcome,
            InsertResult::Outcome::inserted);
  EXPECT_EQ(insert_one(owned(with_key(make_job("a4"), "k", "h"), "owner-a")).job.id, "a3");
  EXPECT_EQ(insert_one(with_key(make_job("n2"), "k", "h")).job.id, "n1");
}

TEST_P(StoreTest, IdempotencyWithinOneBatch) {
  auto r = store->insert({with_key(make_job("b1"), "same", "h"), make_job("b2"),
                          with_key(make_job("b3"), "same", "h"),
                          with_key(make_job("b4"), "same", "other")});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(r[0].job.id, "b1");
  EXPECT_EQ(r[1].outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(r[1].job.id, "b2");
  EXPECT_EQ(r[2].outcome, InsertResult::Outcome::replayed);
  EXPECT_EQ(r[2].job.id, "b1");
  EXPECT_EQ(r[2].job.seq, r[0].job.seq);
  EXPECT_EQ(r[3].outcome, InsertResult::Outcome::conflict);
  EXPECT_EQ(r[3].job.id, "b1");
  EXPECT_TRUE(store->get("b1"));
  EXPECT_FALSE(store->get("b3"));
  EXPECT_FALSE(store->get("b4"));
  EXPECT_EQ(store->list({}).total, 2);
}

TEST_P(StoreTest, MaxNewRefusesNewJobsButStillAnswersReplaysAndConflicts) {
  insert_one(with_key(make_job("old"), "k-old", "h"));
  auto r = store->insert({make_job("n1"), with_key(make_job("r1"), "k-old", "h"),
                          make_job("n2"), with_key(make_job("c1"), "k-old", "other"),
                          with_key(make_job("n3"), "k-new", "h"), make_job("n4")},
                         /*max_new=*/1);
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[0].outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(r[1].outcome, InsertResult::Outcome::replayed);
  EXPECT_EQ(r[1].job.id, "old");
  EXPECT_EQ(r[2].outcome, InsertResult::Outcome::refused);
  EXPECT_EQ(r[2].job.id, "n2");
  EXPECT_EQ(r[3].outcome, InsertResult::Outcome::conflict);
  EXPECT_EQ(r[3].job.id, "old");
  EXPECT_EQ(r[4].outcome, InsertResult::Outcome::refused);
  EXPECT_EQ(r[5].outcome, InsertResult::Outcome::refused);
  EXPECT_EQ(store->list({}).total, 2);
  EXPECT_FALSE(store->get("n2"));
  // A refused job's key was not taken.
  EXPECT_EQ(insert_one(with_key(make_job("n5"), "k-new", "other")).outcome,
            InsertResult::Outcome::inserted);
  // max_new 0: only lookups.
  r = store->insert({with_key(make_job("r2"), "k-old", "h"), make_job("n6")}, 0);
  EXPECT_EQ(r[0].outcome, InsertResult::Outcome::replayed);
  EXPECT_EQ(r[1].outcome, InsertResult::Outcome::refused);
  EXPECT_EQ(store->list({}).total, 3);
}

TEST_P(StoreTest, FailedBatchRollsBackEntirely) {
  insert_one(make_job("exists"));
  // The third job's id is taken: the whole batch fails, the first two are not stored
  // and their keys are not taken.
  EXPECT_THROW(store->insert({with_key(make_job("new1"), "kk", "h"), make_job("new2"),
                              make_job("exists")}),
               std::runtime_error);
  EXPECT_FALSE(store->get("new1"));
  EXPECT_FALSE(store->get("new2"));
  EXPECT_EQ(store->list({}).total, 1);
  auto r = insert_one(with_key(make_job("new3"), "kk", "other"));
  EXPECT_EQ(r.outcome, InsertResult::Outcome::inserted);
  // The store is still usable: a later batch commits.
  EXPECT_EQ(store->insert({make_job("new4"), make_job("new5")}).size(), 2u);
  EXPECT_EQ(store->list({}).total, 4);
}

TEST_P(StoreTest, ListNewestFirstWithFiltersPagingAndTotal) {
  // created_at decides; equal created_at falls back to seq (later insert first).
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "\u00e9";
  std::vector<Job> batch;
  for (int i = 0; i < 25; ++i) {
    Job j = make_job("j" + std::to_string(i), 0, 1000 + i / 2);
    j.session_id = (i % 2) ? std::optional<std::string>("odd") : std::nullopt;
    j.owner = (i % 3 == 0) ? "alice" : "bob";
    j.result = "big";
    j.events_json = "[1]";
    // j24's prompt is long, in 2-byte characters: a list carries only its head.
    j.prompt = i == 24 ? long_prompt : "prompt " + std::to_string(i);
    batch.push_back(j);
  }
  store->insert(batch);
  store->claim_next(1);  // j0 (all priority 0: lowest seq) -> running
  ASSERT_TRUE(store->cancel_queued("j1", 2, std::nullopt));

  auto ids = [](const ListPage& p) {
    std::vector<std::string> v;
    for (auto& j : p.jobs) v.push_back(j.id);
    return v;
  };

  auto p1 = store->list({});
  EXPECT_EQ(p1.total, 25);
  ASSERT_EQ(p1.jobs.size(), 20u);
  EXPECT_EQ(p1.jobs[0].id, "j24");
  EXPECT_EQ(p1.jobs[1].id, "j23");  // same created_at as j22: higher seq first
  EXPECT_EQ(p1.jobs[2].id, "j22");
  EXPECT_EQ(p1.jobs[0].prompt, long_prompt.substr(0, 2 * runq::jobs::kListPromptChars));
  EXPECT_EQ(p1.jobs[1].prompt, "prompt 23");
  for (auto& j : p1.jobs) {
    EXPECT_FALSE(j.result);
    EXPECT_TRUE(j.events_json.empty());
    EXPECT_EQ(j.timeout_s, 60);
  }
  auto p2 = store->list({.page = 2});
  EXPECT_EQ(p2.total, 25);
  EXPECT_EQ(ids(p2), (std::vector<std::string>{"j4", "j3", "j2", "j1", "j0"}));
  auto p3 = store->list({.page = 3});
  EXPECT_EQ(p3.total, 25);
  EXPECT_TRUE(p3.jobs.empty());

  auto small = store->list({.page = 3, .page_size = 4});
  EXPECT_EQ(ids(small), (std::vector<std::string>{"j16", "j15", "j14", "j13"}));

  auto running = store->list({.status = JobStatus::running});
  EXPECT_EQ(running.total, 1);
  EXPECT_EQ(ids(running), std::vector<std::string>{"j0"});
  auto cancelled = store->list({.status = JobStatus::cancelled});
  EXPECT_EQ(ids(cancelled), std::vector<std::string>{"j1"});
  EXPECT_EQ(store->list({.status = JobStatus::succeeded}).total, 0);

  auto odd = store->list({.session_id = "odd", .page_size = 5});
  EXPECT_EQ(odd.total, 12);
  EXPECT_EQ(ids(odd), (std::vector<std::string>{"j23", "j21", "j19", "j17", "j15"}));

  auto alice = store->list({.owner = "alice", .page_size = 100});
  EXPECT_EQ(alice.total, 9);  // 0,3,...,24
  EXPECT_EQ(alice.jobs.front().id, "j24");
  EXPECT_EQ(alice.jobs.back().id, "j0");

  // All three filters together: odd sessions of alice still queued: 3, 9, 15, 21.
  auto all = store->list({.status = JobStatus::queued, .session_id = "odd", .owner = "alice"});
  EXPECT_EQ(all.total, 4);
  EXPECT_EQ(ids(all), (std::vector<std::string>{"j21", "j15", "j9", "j3"}));
  auto none = store->list({.status = JobStatus::queued, .session_id = "odd", .owner = "carol"});
  EXPECT_EQ(none.total, 0);
  EXPECT_TRUE(none.jobs.empty());
}

TEST_P(StoreTest, CountByStatus) {
  Job a = make_job("a");
  a.owner = "alice";
  Job b = make_job("b");
  b.owner = "bob";
  Job c = make_job("c");
  c.owner = "bob";
  Job d = finished(make_job("d"), JobStatus::failed);
  d.owner = "bob";
  store->insert({a, b, c, d});
  store->claim_next(1);  // a
  store->cancel_queued("c", 1, std::nullopt);

  auto all = store->count_by_status(std::nullopt);
  EXPECT_EQ(all[static_cast<int>(JobStatus::queued)], 1);
  EXPECT_EQ(all[static_cast<int>(JobStatus::running)], 1);
  EXPECT_EQ(all[static_cast<int>(JobStatus::succeeded)], 0);
  EXPECT_EQ(all[static_cast<int>(JobStatus::failed)], 1);
  EXPECT_EQ(all[static_cast<int>(JobStatus::cancelled)], 1);
  auto bob = store->count_by_status(std::string("bob"));
  EXPECT_EQ(bob, (StatusCounts{1, 0, 0, 1, 1}));
  auto carol = store->count_by_status(std::string("carol"));
  EXPECT_EQ(carol, (StatusCounts{0, 0, 0, 0, 0}));
}

TEST_P(StoreTest, RequeueRunningKeepsAttempts) {
  store->insert({make_job("r1", 1), make_job("r2", 1), make_job("q1")});
  store->claim_next(10);
  store->claim_next(11);
  EXPECT_EQ(store->requeue_running(0).requeued, 2);
  EXPECT_EQ(store->requeue_running(0).requeued, 0);
  auto g = store->get("r1");
  EXPECT_EQ(g->status, JobStatus::queued);
  EXPECT_FALSE(g->started_at_us);
  EXPECT_EQ(g->attempts, 1);
  // Claimable again, in the original order, attempts counting on.
  auto c = store->claim_next(12);
  EXPECT_EQ(c->id, "r1");
  EXPECT_EQ(c->attempts, 2);
  EXPECT_EQ(store->claim_next(12)->id, "r2");
  EXPECT_EQ(store->claim_next(12)->id, "q1");
}

TEST_P(StoreTest, RequeueRunningFailsJobsInterruptedTooOften) {
  store->insert({make_job("a"), make_job("b"), make_job("q")});
  store->claim_next(10);  // a: 1 start
  store->claim_next(10);  // b: 1 start
  EXPECT_EQ(store->requeue_running(0).requeued, 2);
  store->claim_next(11);  // a: 2
  store->claim_next(11);  // b: 2
  auto rc = store->requeue_running(3);  // under the limit: both back
  EXPECT_EQ(rc.requeued, 2);
  EXPECT_EQ(rc.failed, 0);
  ASSERT_EQ(store->claim_next(12)->id, "a");  // a: 3
  rc = store->requeue_running(3);
  EXPECT_EQ(rc.failed, 1);
  EXPECT_EQ(rc.requeued, 0);
  auto f = store->get("a");
  EXPECT_EQ(f->status, JobStatus::failed);
  EXPECT_EQ(f->error, "Job interrupted 3 times (the server stopped while it ran); giving up");
  EXPECT_TRUE(f->completed_at_us);
  EXPECT_EQ(store->get_status("b")->status, JobStatus::queued);
  EXPECT_EQ(store->get_status("b")->attempts, 2);
  EXPECT_EQ(store->get_status("q")->status, JobStatus::queued);
}

TEST_P(StoreTest, DeleteFinishedBeforeDeletesOnlyOldTerminalJobsOldestFirst) {
  store->insert({with_key(finished(make_job("old1"), JobStatus::succeeded, 100), "k1", "h"),
                 finished(make_job("old2"), JobStatus::failed, 200),
                 finished(make_job("old3"), JobStatus::cancelled, 300),
                 finished(make_job("new"), JobStatus::succeeded, 5000),
                 make_job("queued")});
  EXPECT_EQ(store->delete_finished_before(1000, 2), 2);  // old1, old2 (oldest first)
  EXPECT_FALSE(store->get("old1"));
  EXPECT_FALSE(store->get("old2"));
  EXPECT_TRUE(store->get("old3"));
  EXPECT_EQ(store->delete_finished_before(1000, 2), 1);  // old3: fewer than the limit
  EXPECT_EQ(store->delete_finished_before(1000, 2), 0);
  EXPECT_TRUE(store->get("new"));
  EXPECT_TRUE(store->get("queued"));
  // old1's idempotency key is free again: the same key makes a new job.
  EXPECT_EQ(insert_one_outcome(*store, with_key(make_job("again"), "k1", "h")),
            InsertResult::Outcome::inserted);
  EXPECT_EQ(store->delete_finished_before(1000, 0), 0);
}

TEST_P(StoreTest, DeleteFinishedBeforeKeepsJobsWithPendingWebhooks) {
  Job j = make_job("hooked");
  j.webhook_url = "http://127.0.0.1:9/hook";
  insert_one(j);
  store->claim_next(10);
  ASSERT_TRUE(store->finish(finished(make_job("hooked"), JobStatus::succeeded, 100)));
  EXPECT_EQ(store->delete_finished_before(1000, 10), 0);
  EXPECT_TRUE(store->get("hooked"));
}

// Several threads claim at once while another inserts: no job is handed out twice and
// every job is handed out once.
TEST_P(StoreTest, ConcurrentClaimsNeverDuplicate) {
  constexpr int kJobs = 400;
  constexpr int kThreads = 6;
  std::vector<Job> batch;
  for (int i = 0; i < kJobs / 2; ++i) batch.push_back(make_job("c" + std::to_string(i), i % 3));
  store->insert(batch);

  std::atomic<bool> inserting{true};
  std::thread inserter([&] {
    for (int i = kJobs / 2; i < kJobs; i += 10) {
      std::vector<Job> b;
      for (int k = i; k < i + 10; ++k) b.push_back(make_job("c" + std::to_string(k)));
      store->insert(b);
    }
    inserting = false;
  });
  std::vector<std::vector<std::string>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (;;) {
        // Read before the claim: once it says done, every insert has committed, so an
        // empty claim means nothing is left. (Read after, it would race with the last
        // insert: an empty claim, then the insert, then "done".)
        const bool done = !inserting;
        auto j = store->claim_next(t);
        if (j) {
          got[t].push_back(j->id);
          EXPECT_EQ(j->attempts, 1);
          // reads interleave with the writes
          auto s = store->get_status(j->id);
          EXPECT_TRUE(s && s->status == JobStatus::running);
          continue;
        }
        if (done) break;
        std::this_thread::yield();
      }
    });
  }
  inserter.join();
  for (auto& t : threads) t.join();
  std::multiset<std::string> all;
  for (auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  EXPECT_EQ(store->count_by_status(std::nullopt)[static_cast<int>(JobStatus::running)], kJobs);
}

// Readers on many threads while a writer commits batches: every read sees a whole job.
TEST_P(StoreTest, ConcurrentReadsDuringWrites) {
  insert_one(make_job("base"));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) {
      std::vector<Job> b;
      for (int k = 0; k < 20; ++k) b.push_back(make_job("w" + std::to_string(i * 20 + k)));
      store->insert(b);
    }
    stop = true;
  });
  std::vector<std::thread> readers;
  std::atomic<int> reads{0};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        auto s = store->get_status("base");
        ASSERT_TRUE(s);
        EXPECT_EQ(s->timeout_s, 60);
        auto p = store->list({.page_size = 5});
        EXPECT_EQ(p.jobs.size(), std::min<std::int64_t>(5, p.total));
        ++reads;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(store->list({}).total, 1001);
}

// Writes from many threads share transactions (group commit): every write lands exactly
// once, and one that fails (a taken id) is undone alone — the writes batched with it
// are stored and their callers see success.
TEST_P(StoreTest, ConcurrentWritesWithFailuresMixedIn) {
  insert_one(make_job("taken"));
  constexpr int kThreads = 8;
  constexpr int kRounds = 60;
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string id = "g" + std::to_string(t) + "-" + std::to_string(i);
        if (i % 3 == 2) {
          // Fails inside the transaction (UNIQUE id), after a valid row of its own.
          EXPECT_THROW(store->insert({make_job(id), make_job("taken")}), std::runtime_error);
          ++refused;
          continue;
        }
        auto r = store->insert({make_job(id)});
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].outcome, InsertResult::Outcome::inserted);
        auto claimed = store->claim_next(1);
        ASSERT_TRUE(claimed);
        EXPECT_TRUE(store->finish(finished(*claimed, JobStatus::succeeded)));
      }
    });
  }
  for (auto& th : threads) th.join();
  const int ok = kThreads * kRounds - refused.load();
  auto counts = store->count_by_status(std::nullopt);
  EXPECT_EQ(counts[static_cast<int>(JobStatus::succeeded)], ok);
  EXPECT_EQ(counts[static_cast<int>(JobStatus::queued)], 1);  // "taken"; the rest finished
  EXPECT_EQ(store->list({}).total, ok + 1);
  // The failed batches stored nothing, not even their valid first job.
  for (int t = 0; t < kThreads; ++t)
    EXPECT_FALSE(store->get("g" + std::to_string(t) + "-2"));
}

// ---- file-only behaviour -----------------------------------------------------------

TEST(SqliteStoreFile, SurvivesCloseAndReopen) {
  TempDir dir;
  const std::string path = (dir.path / "jobs.db").string();
  std::int64_t seq_b = 0;
  {
    auto s = open_sqlite_store(path);
    Job a = with_key(make_job("a"), "key", "h");
    a.metadata = {{"x", "y"}};
    auto r = s->insert({a, make_job("b")});
    seq_b = r[1].job.seq;
    s->claim_next(5);  // a
    ASSERT_TRUE(s->finish(finished(make_job("a"), JobStatus::succeeded, 9)));
  }
  auto s = open_sqlite_store(path);
  auto a = s->get("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, JobStatus::succeeded);
  EXPECT_EQ(a->started_at_us, 5);
  EXPECT_EQ(a->completed_at_us, 9);
  EXPECT_EQ(a->metadata, (nlohmann::json{{"x", "y"}}));
  EXPECT_EQ(s->get("b")->seq, seq_b);
  EXPECT_EQ(insert_one_outcome(*s, with_key(make_job("c"), "key", "h")),
            InsertResult::Outcome::replayed);
  auto c = s->insert({make_job("d")});
  EXPECT_GT(c[0].job.seq, seq_b);
  EXPECT_EQ(s->claim_next(6)->id, "b");
}

TEST(SqliteStoreFile, GarbageFileThrowsClearError) {
  TempDir dir;
  const std::string path = (dir.path / "garbage.db").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << std::string(8192, 'x') << "this is not a database";
  }
  try {
    open_sqlite_store(path);
    FAIL() << "expected DamagedDatabase";
  } catch (const DamagedDatabase& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a SQLite database"), std::string::npos) << msg;
    EXPECT_NE(msg.find("backup"), std::string::npos) << msg;
    EXPECT_NE(msg.find("move it aside"), std::string::npos) << msg;
  }
}

// A file whose pages were overwritten is refused on open with DamagedDatabase, whose
// message says what to do.
// A closed database file with pages scribbled over (header and schema page intact).
void damage_closed_file(const std::string& path) {
  {
    auto s = open_sqlite_store(path);
    std::vector<Job> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(make_job("j" + std::to_string(i)));
    s->insert(batch);
  }
  ASSERT_EQ(raw_query(path, "PRAGMA wal_checkpoint(TRUNCATE)", 0).substr(0, 1), "0");
  ASSERT_FALSE(fs::exists(path + "-wal") && fs::file_size(path + "-wal") > 0);
  const auto size = fs::file_size(path);
  ASSERT_GT(size, 16u * 4096u);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  for (std::uintmax_t off = 4 * 4096; off + 4096 < size; off += 3 * 4096) {
    f.seekp(static_cast<std::streamoff>(off + 100));
    f << std::string(600, '\xff');
  }
}

TEST(SqliteStoreFile, DamagedFileIsRefusedWithAdvice) {
  TempDir dir;
  const std::string path = (dir.path / "jobs.db").string();
  damage_closed_file(path);
  try {
    open_sqlite_store(path);
    FAIL() << "expected DamagedDatabase";
  } catch (const DamagedDatabase& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("damaged"), std::string::npos) << msg;
    EXPECT_NE(msg.find("backup"), std::string::npos) << msg;
  }
}

// --check-db after-crash: the check runs only when the last process left its -wal file
// behind (it died with the database open); after a clean stop it is skipped, so damage
// done at rest goes unnoticed at start. off: never checked.
TEST(SqliteStoreFile, StartupCheckAfterCrashOnlyWhenAWalWasLeft) {
  TempDir dir;
  const std::string path = (dir.path / "jobs.db").string();
  damage_closed_file(path);
  EXPECT_NO_THROW(open_sqlite_store(path, StartupCheck::off));
  EXPECT_NO_THROW(open_sqlite_store(path, StartupCheck::after_crash));  // clean stop
  EXPECT_THROW(open_sqlite_store(path, StartupCheck::full), DamagedDatabase);
  // A crashed process leaves a -wal file (here: one with an invalid header, which SQLite
  // ignores): now the check runs and refuses the file.
  { std::ofstream(path + "-wal", std::ios::binary) << std::string(4096, '\x01'); }
  EXPECT_THROW(open_sqlite_store(path, StartupCheck::after_crash), DamagedDatabase);
}

TEST(SqliteStoreFile, StartupCheckAfterCrashAcceptsAHealthyCrashedFile) {
  TempDir dir;
  const std::string path = (dir.path / "jobs.db").string();
  {
    auto s = open_sqlite_store(path);
    s->insert({make_job("kept")});
    // Keep the -wal file as a crash would: copy it while the store is open.
    fs::copy_file(path + "-wal", dir.path / "saved-wal");
  }
  fs::copy_file(dir.path / "saved-wal", path + "-wal", fs::copy_options::overwrite_existing);
  auto s = open_sqlite_store(path, StartupCheck::after_crash);
  EXPECT_TRUE(s->get("kept"));
}

TEST(SqliteStoreFile, UnopenablePathThrowsClearError) {
  TempDir dir;
  const std::string path = (dir.path / "no" / "such" / "dir" / "jobs.db").string();
  try {
    open_sqlite_store(path);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // A directory is not a database file either.
  EXPECT_THROW(open_sqlite_store(dir.path.string()), std::runtime_error);
}

TEST(SqliteStoreFile, UsesWalFullSyncAndSchemaVersion) {
  TempDir dir;
  const fs::path path = dir.path / "jobs.db";
  auto s = open_sqlite_store(path.string());
  EXPECT_EQ(raw_query(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw_query(path, "PRAGMA user_version"), "3");
  EXPECT_EQ(raw_query(path,
                      "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
                      "('jobs', 'idempotency_keys', 'store_probe') ORDER BY name"),
            "idempotency_keys\njobs\nstore_probe");
}

TEST(SqliteStoreFile, NewerSchemaVersionIsRefused) {
  TempDir dir;
  const fs::path path = dir.path / "jobs.db";
  open_sqlite_store(path.string());
  raw_query(path, "PRAGMA user_version = 99");
  try {
    open_sqlite_store(path.string());
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("99"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  }
}

// claim_next must stay O(log n): its subquery reads the first entry of the partial claim
// index, without a sort. Lists read an index in order (no sort of the matching rows),
// with every combination of filters the API produces. (The SQL mirrors store/sqlite/sql.cpp.)
TEST(SqliteStoreFile, ClaimAndListUseIndexes) {
  TempDir dir;
  const fs::path path = dir.path / "jobs.db";
  auto s = open_sqlite_store(path.string());
  auto plan = [&](const std::string& sql) {
    return "\n" + raw_query(path, "EXPLAIN QUERY PLAN " + sql, 3) + "\n";
  };
  auto claim = plan(
      "UPDATE jobs SET status = 'running', started_at = 1, attempts = attempts + 1 "
      "WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_claim WHERE status = 'queued' "
      "ORDER BY priority DESC, seq LIMIT 1)");
  EXPECT_NE(claim.find("USING INDEX jobs_claim"), std::string::npos) << claim;
  EXPECT_EQ(claim.find("TEMP B-TREE"), std::string::npos) << claim;
  for (const char* where :
       {"", " WHERE status = ?1", " WHERE session_id = ?2", " WHERE owner = ?3",
        " WHERE status = ?1 AND owner = ?3"}) {
    auto list = plan(std::string("SELECT id FROM jobs") + where +
                     " ORDER BY created_at DESC, seq DESC LIMIT 20");
    EXPECT_EQ(list.find("\nSCAN jobs\n"), std::string::npos) << where << ": " << list;
    EXPECT_EQ(list.find("TEMP B-TREE"), std::string::npos) << where << ": " << list;
  }
}

}  // namespace

TEST(SqliteStoreFile, NoWriteFaultWhenHealthyAndTheProbeWrites) {
  TempDir dir;
  const fs::path path = dir.path / "jobs.db";
  auto s = open_sqlite_store(path.string());
  EXPECT_FALSE(s->write_fault().has_value());
  s->probe_write();
  EXPECT_EQ(raw_query(path, "SELECT COUNT(*) FROM store_probe"), "1");
  s->probe_write();  // one row, rewritten
  EXPECT_EQ(raw_query(path, "SELECT COUNT(*) FROM store_probe"), "1");
  EXPECT_FALSE(s->write_fault().has_value());
  // The probe is no job.
  EXPECT_EQ(s->count_by_status(std::nullopt), (StatusCounts{0, 0, 0, 0, 0}));
}
