// Tests of the PostgreSQL job store against a real server: RUNQ_TEST_PG_URI names it
// (postgresql://postgres@127.0.0.1:PORT/postgres), or RUNQ_TEST_PG_URI_FILE names a file
// holding it (what ctest's throwaway server writes: tests/CMakeLists.txt); every test
// makes a fresh database of its own and drops it afterwards. Without a server every test
// fails: a silent skip would hide that the store went untested.
#include "pg_test_db.hpp"
#include "runq/store/postgres_store.hpp"
#include "../../src/store/postgres/store_impl.hpp"  // endings_waiting

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace runq::jobs;   // the Store port
using namespace runq::store;  // the PostgreSQL implementation

namespace {

using namespace pg_test;

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

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(server_uri(), nullptr) << kNoServer;
    db = std::make_unique<FreshDatabase>();
    store = db->open();
  }
  void TearDown() override {
    store.reset();  // closes its connections before the database is dropped
    db.reset();
  }

  InsertResult::Outcome insert_one_outcome(const Job& j) { return insert_one(j).outcome; }
  InsertResult insert_one(const Job& j) {
    auto r = store->insert({j});
    EXPECT_EQ(r.size(), 1u);
    return r.at(0);
  }

  std::unique_ptr<FreshDatabase> db;
  std::unique_ptr<Store> store;
};

}  // namespace

namespace {

// ---- the SQLite store's conformance cases, on PostgreSQL ---------------------------

TEST_F(PgStoreTest, KindIsPostgresql) { EXPECT_EQ(store->kind(), "postgresql"); }

TEST_F(PgStoreTest, RoundTripsEveryField) {
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
  // PostgreSQL's text cannot hold a NUL: it is stored as U+FFFD.
  EXPECT_EQ(g->prompt, std::string("multi\nline prompt with 'quotes' and \"dq\" and a "
                                   "\xEF\xBF\xBD NUL"));
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

TEST_F(PgStoreTest, RoundTripsOptionalNullsAndEmptyValues) {
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

TEST_F(PgStoreTest, GetOfUnknownIdIsNullopt) {
  EXPECT_FALSE(store->get("run_nope"));
  EXPECT_FALSE(store->get_status("run_nope"));
}

TEST_F(PgStoreTest, AssignsCreatedAtWhenUnset) {
  Job j = make_job("run_t", 0, 0);
  auto r = insert_one(j);
  EXPECT_GT(r.job.created_at_us, 1'600'000'000'000'000);
  EXPECT_EQ(store->get("run_t")->created_at_us, r.job.created_at_us);
}

TEST_F(PgStoreTest, SeqIncreasesAndIsNeverReused) {
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

TEST_F(PgStoreTest, InsertWithoutIdThrowsAndStoresNothing) {
  EXPECT_THROW(store->insert({make_job("run_ok"), make_job("")}), std::invalid_argument);
  EXPECT_FALSE(store->get("run_ok"));
}

TEST_F(PgStoreTest, EmptyBatchIsFine) { EXPECT_TRUE(store->insert({}).empty()); }

TEST_F(PgStoreTest, ClaimsByPriorityThenFifo) {
  store->insert({make_job("low1", -1), make_job("mid1", 0), make_job("high1", 5),
                 make_job("mid2", 0), make_job("high2", 5), make_job("low2", -1)});
  std::vector<std::string> order;
  while (auto j = store->claim_next(10)) order.push_back(j->id);
  EXPECT_EQ(order, (std::vector<std::string>{"high1", "high2", "mid1", "mid2", "low1", "low2"}));
}

TEST_F(PgStoreTest, ClaimOnEmptyIsNullopt) {
  EXPECT_FALSE(store->claim_next(1));
  insert_one(finished(make_job("done"), JobStatus::succeeded));
  EXPECT_FALSE(store->claim_next(1));
}

TEST_F(PgStoreTest, ClaimMarksRunningAndReturnsWholeJob) {
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

TEST_F(PgStoreTest, FinishOnlyOnceAndTerminalNeverChanges) {
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

TEST_F(PgStoreTest, FinishOfQueuedJobAndNonTerminalStatus) {
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

// A transaction on a connection of the test's own that holds a row lock until commit().
class HeldRowLock {
 public:
  HeldRowLock(const std::string& uri, const std::string& id) : c_(PQconnectdb(uri.c_str())) {
    run("BEGIN");
    run("SELECT 1 FROM jobs WHERE id = '" + id + "' FOR UPDATE");
  }
  ~HeldRowLock() { PQfinish(c_); }
  void commit() { run("COMMIT"); }

 private:
  void run(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    const auto st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error("HeldRowLock: " + sql + ": " + PQerrorMessage(c_));
  }
  PGconn* c_;
};

// Ends `lead`, whose statement waits for a row lock, and `others` while it waits: they
// queue behind it and go to the database as one batch. Each call's future, by job id.
std::map<std::string, std::future<bool>> end_as_one_batch(const FreshDatabase& db, Store& store,
                                                          const Job& lead,
                                                          const std::vector<Job>& others) {
  auto* pg = dynamic_cast<postgres::PostgresStore*>(&store);
  if (!pg) throw std::logic_error("not the PostgreSQL store");
  HeldRowLock lock(db.uri, lead.id);
  std::map<std::string, std::future<bool>> outcome;
  outcome[lead.id] = std::async(std::launch::async, [&store, lead] { return store.finish(lead); });
  EXPECT_TRUE(eventually([&] {
    return db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'") == "1";
  }));
  for (const Job& j : others)
    outcome[j.id] = std::async(std::launch::async, [&store, j] { return store.finish(j); });
  EXPECT_TRUE(eventually([&] { return pg->endings_waiting() == others.size(); }));
  lock.commit();
  return outcome;
}

// Endings that queue while another is being stored go to the database together, in one
// transaction (their rows share its xmin), and each caller still learns its own outcome:
// stored, refused (not this attempt), or already ended.
TEST_F(PgStoreTest, EndingsThatArriveTogetherAreStoredTogetherEachWithItsOwnOutcome) {
  const std::vector<std::string> ids = {"lead", "b1", "b2", "b3", "stale", "done"};
  for (const auto& id : ids) insert_one(make_job(id));
  std::map<std::string, Job> running;
  for (const Job& j : store->claim_many(100, 10)) running[j.id] = j;
  ASSERT_EQ(running.size(), ids.size());
  ASSERT_TRUE(store->finish(finished(running["done"], JobStatus::succeeded, 150)));

  std::map<std::string, Job> ends;
  ends["lead"] = finished(running["lead"], JobStatus::succeeded, 200);
  Job b1 = finished(running["b1"], JobStatus::succeeded, 201);  // what the array form must carry
  b1.result = std::string("\"quoted\", \\back\\slash {braces} NULL ") + '\0' + " é";
  b1.progress = {100.0, std::string("step \"x\""), 2, std::nullopt};
  b1.events_json = R"([{"id":1,"data":"{\"a\":\"b\"}"}])";
  b1.run_id = "r1";
  b1.metrics = nlohmann::json{{"tokens", 7}};
  ends["b1"] = b1;
  Job b2 = finished(running["b2"], JobStatus::failed, 202);
  b2.error = "NULL";
  b2.progress = {12.5, std::nullopt, 1, 4};
  ends["b2"] = b2;
  Job b3 = finished(running["b3"], JobStatus::cancelled, 203);
  b3.result = "";
  ends["b3"] = b3;
  Job stale = finished(running["stale"], JobStatus::succeeded, 204);
  stale.attempts = 2;  // an attempt this node does not run
  ends["stale"] = stale;
  ends["done"] = finished(running["done"], JobStatus::failed, 205);

  std::vector<Job> others;
  for (const auto& id : ids)
    if (id != "lead") others.push_back(ends[id]);
  auto outcome = end_as_one_batch(*db, *store, ends["lead"], others);

  EXPECT_TRUE(outcome["lead"].get());
  EXPECT_TRUE(outcome["b1"].get());
  EXPECT_TRUE(outcome["b2"].get());
  EXPECT_TRUE(outcome["b3"].get());
  EXPECT_FALSE(outcome["stale"].get());
  EXPECT_FALSE(outcome["done"].get());
  EXPECT_EQ(db->query("SELECT count(DISTINCT xmin::text) FROM jobs WHERE id IN ('b1','b2','b3')"),
            "1");

  auto g1 = store->get("b1");
  EXPECT_EQ(g1->status, JobStatus::succeeded);
  EXPECT_EQ(g1->result, std::string("\"quoted\", \\back\\slash {braces} NULL \xEF\xBF\xBD é"));
  EXPECT_EQ(g1->progress.current_step, "step \"x\"");
  EXPECT_EQ(g1->progress.steps_completed, 2);
  EXPECT_FALSE(g1->progress.steps_total);
  EXPECT_EQ(g1->events_json, b1.events_json);
  EXPECT_EQ(g1->run_id, "r1");
  EXPECT_FALSE(g1->agent_id);
  EXPECT_EQ(g1->metrics, b1.metrics);
  EXPECT_EQ(g1->completed_at_us, 201);
  auto g2 = store->get("b2");
  EXPECT_EQ(g2->status, JobStatus::failed);
  EXPECT_EQ(g2->error, "NULL");
  EXPECT_FALSE(g2->result);
  EXPECT_DOUBLE_EQ(g2->progress.percentage, 12.5);
  EXPECT_FALSE(g2->progress.current_step);
  EXPECT_EQ(g2->progress.steps_total, 4);
  EXPECT_TRUE(g2->metrics.is_null());
  auto g3 = store->get("b3");
  EXPECT_EQ(g3->status, JobStatus::cancelled);
  EXPECT_EQ(g3->result, "");
  EXPECT_EQ(store->get_status("stale")->status, JobStatus::running);
  auto gd = store->get("done");
  EXPECT_EQ(gd->status, JobStatus::succeeded);
  EXPECT_EQ(gd->completed_at_us, 150);
}

// An ending the database refuses fails alone: the others of its batch are stored, each
// on its own once the statement for all of them has failed.
TEST_F(PgStoreTest, AnEndingTheDatabaseRefusesFailsAloneNotItsBatch) {
  db->query("CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
            "IF NEW.result = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; "
            "END $$ LANGUAGE plpgsql");
  db->query("CREATE TRIGGER refuse_poison BEFORE UPDATE ON jobs FOR EACH ROW "
            "EXECUTE FUNCTION refuse_poison()");
  for (const char* id : {"lead", "good1", "bad", "good2"}) insert_one(make_job(id));
  std::map<std::string, Job> running;
  for (const Job& j : store->claim_many(100, 10)) running[j.id] = j;
  ASSERT_EQ(running.size(), 4u);
  Job bad = finished(running["bad"], JobStatus::succeeded);
  bad.result = "poison";
  auto outcome = end_as_one_batch(*db, *store, finished(running["lead"], JobStatus::succeeded),
                                  {finished(running["good1"], JobStatus::succeeded), bad,
                                   finished(running["good2"], JobStatus::failed)});
  EXPECT_TRUE(outcome["lead"].get());
  EXPECT_TRUE(outcome["good1"].get());
  EXPECT_THROW(outcome["bad"].get(), std::runtime_error);
  EXPECT_TRUE(outcome["good2"].get());
  EXPECT_EQ(store->get_status("good1")->status, JobStatus::succeeded);
  EXPECT_EQ(store->get_status("bad")->status, JobStatus::running);
  EXPECT_EQ(store->get_status("good2")->status, JobStatus::failed);
  EXPECT_EQ(store->write_fault(), std::nullopt);
}

// The connection of a batch of endings is lost while it runs: every ending of the batch
// gets the fault and none of them is stored (one transaction); each is stored when its
// worker tries again, on a connection made anew.
TEST_F(PgStoreTest, ABatchOfEndingsThatLosesItsConnectionFailsWholeAndIsStoredOnRetry) {
  for (const char* id : {"lead", "b1", "b2"}) insert_one(make_job(id));
  std::map<std::string, Job> running;
  for (const Job& j : store->claim_many(100, 10)) running[j.id] = j;
  ASSERT_EQ(running.size(), 3u);
  const Job b1 = finished(running["b1"], JobStatus::succeeded);
  const Job b2 = finished(running["b2"], JobStatus::failed);
  HeldRowLock hold_b1(db->uri, "b1");  // the batch's transaction waits here
  auto outcome = end_as_one_batch(*db, *store, finished(running["lead"], JobStatus::succeeded),
                                  {b1, b2});
  EXPECT_TRUE(outcome["lead"].get());
  std::string waiting;
  ASSERT_TRUE(eventually([&] {
    waiting = db->query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'");
    return !waiting.empty();
  }));
  db->query("SELECT pg_terminate_backend(" + waiting + ")");
  for (const char* id : {"b1", "b2"}) {
    try {
      outcome[id].get();
      ADD_FAILURE() << id << ": ended although its batch lost its connection";
    } catch (const StoreUnavailable& e) {
      EXPECT_EQ(e.reason(), FaultReason::unreachable) << id;
    }
  }
  EXPECT_TRUE(store->write_fault());
  hold_b1.commit();
  EXPECT_EQ(store->get_status("b1")->status, JobStatus::running);
  EXPECT_EQ(store->get_status("b2")->status, JobStatus::running);
  EXPECT_TRUE(store->finish(b1));
  EXPECT_TRUE(store->finish(b2));
  EXPECT_EQ(store->get_status("b1")->status, JobStatus::succeeded);
  EXPECT_EQ(store->get_status("b2")->status, JobStatus::failed);
  EXPECT_FALSE(store->write_fault());
}

TEST_F(PgStoreTest, CancelQueuedOnlyForQueued) {
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

TEST_F(PgStoreTest, RemoveOnlyTerminalAndFreesKey) {
  insert_one(with_key(make_job("j1"), "k", "h1"));
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::not_terminal);  // queued
  store->claim_next(1);
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::not_terminal);  // running
  EXPECT_EQ(store->remove("nope"), RemoveOutcome::not_found);
  // While j1 exists the key replays.
  EXPECT_EQ(insert_one(with_key(make_job("j2"), "k", "h1")).outcome,
            InsertResult::Outcome::replayed);
  EXPECT_TRUE(store->finish(finished(*store->get("j1"), JobStatus::succeeded)));
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::removed);
  EXPECT_FALSE(store->get("j1"));
  EXPECT_EQ(store->remove("j1"), RemoveOutcome::not_found);
  // The key is free again: the same key (even another request) makes a new job.
  auto r = insert_one(with_key(make_job("j3"), "k", "h-other"));
  EXPECT_EQ(r.outcome, InsertResult::Outcome::inserted);
  EXPECT_EQ(r.job.id, "j3");
  EXPECT_TRUE(store->get("j3"));
}

TEST_F(PgStoreTest, IdempotencyReplayAndConflict) {
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
TEST_F(PgStoreTest, IdempotencyKeysArePerOwner) {
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

TEST_F(PgStoreTest, IdempotencyWithinOneBatch) {
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

TEST_F(PgStoreTest, MaxNewRefusesNewJobsButStillAnswersReplaysAndConflicts) {
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

TEST_F(PgStoreTest, FailedBatchRollsBackEntirely) {
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

// A database made with LANG=C is SQL_ASCII: it counts a prompt's head in bytes, which may
// end inside a character. The list still answers, with valid UTF-8.
TEST(PgStoreEncoding, ListOfASqlAsciiDatabase) {
  FreshDatabase db("ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
  ASSERT_EQ(db.query("SHOW server_encoding"), "SQL_ASCII");
  auto store = db.open();
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "\u00e9";
  Job j = make_job("j1");
  j.prompt = long_prompt;
  Job k = make_job("j2", 0, 2000);
  k.prompt = "\u00e9t\u00e9";
  store->insert({j, k});
  const ListPage page = store->list({});
  ASSERT_EQ(page.jobs.size(), 2u);
  EXPECT_EQ(page.jobs[0].prompt, "\u00e9t\u00e9");
  // 101 bytes: 50 whole characters, the half of the 51st dropped.
  EXPECT_EQ(page.jobs[1].prompt, long_prompt.substr(0, 100));
}

TEST_F(PgStoreTest, ListNewestFirstWithFiltersPagingAndTotal) {
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

TEST_F(PgStoreTest, CountByStatus) {
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

// On PostgreSQL requeue_running re-queues only the jobs of nodes whose lease ran out
// (here a node "dead" whose store is gone). The stores of these tests have a lease of
// an hour: their own keepers do not rescue anything while the test runs.
TEST_F(PgStoreTest, RequeueRunningKeepsAttempts) {
  store = db->open_node("node-a", 3600);
  store->insert({make_job("r1", 1), make_job("r2", 1), make_job("q1")});
  {
    auto dead = db->open_node("dead", 3600);
    dead->claim_next(10);
    dead->claim_next(11);
  }
  EXPECT_EQ(store->requeue_running(0).requeued, 0);  // its lease has not run out yet
  db->expire_node("dead");
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

TEST_F(PgStoreTest, RequeueRunningFailsJobsInterruptedTooOften) {
  store = db->open_node("node-a", 3600);
  store->insert({make_job("a"), make_job("b"), make_job("q")});
  // Each round, a node claims and dies.
  auto claim_and_die = [&](const std::string& node, int n, std::int64_t at) {
    auto dead = db->open_node(node, 3600);
    for (int i = 0; i < n; ++i) ASSERT_TRUE(dead->claim_next(at));
    dead.reset();
    db->expire_node(node);
  };
  claim_and_die("dead1", 2, 10);  // a, b: 1 start
  EXPECT_EQ(store->requeue_running(0).requeued, 2);
  claim_and_die("dead2", 2, 11);  // a, b: 2
  auto rc = store->requeue_running(3);  // under the limit: both back
  EXPECT_EQ(rc.requeued, 2);
  EXPECT_EQ(rc.failed, 0);
  {
    auto dead = db->open_node("dead3", 3600);
    ASSERT_EQ(dead->claim_next(12)->id, "a");  // a: 3
  }
  db->expire_node("dead3");
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

TEST_F(PgStoreTest, DeleteFinishedBeforeDeletesOnlyOldTerminalJobsOldestFirst) {
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
  EXPECT_EQ(insert_one_outcome(with_key(make_job("again"), "k1", "h")),
            InsertResult::Outcome::inserted);
  EXPECT_EQ(store->delete_finished_before(1000, 0), 0);
}

TEST_F(PgStoreTest, DeleteFinishedBeforeKeepsJobsWithPendingWebhooks) {
  Job j = make_job("hooked");
  j.webhook_url = "http://127.0.0.1:9/hook";
  insert_one(j);
  ASSERT_TRUE(store->finish(finished(*store->claim_next(10), JobStatus::succeeded, 100)));
  EXPECT_EQ(store->delete_finished_before(1000, 10), 0);
  EXPECT_TRUE(store->get("hooked"));
}

// Several threads claim at once while another inserts: no job is handed out twice and
// every job is handed out once.
TEST_F(PgStoreTest, ConcurrentClaimsNeverDuplicate) {
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
TEST_F(PgStoreTest, ConcurrentReadsDuringWrites) {
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
TEST_F(PgStoreTest, ConcurrentWritesWithFailuresMixedIn) {
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
        // SKIP LOCKED: a claim passes over the rows other claimers hold, and may not see
        // a row committed after it began. So a claim can come back empty while another
        // thread takes this thread's job; the next one finds the job that is left.
        std::optional<Job> claimed;
        for (int k = 0; k < 200 && !claimed; ++k) claimed = store->claim_next(1);
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


// ---- PostgreSQL only ---------------------------------------------------------------

TEST_F(PgStoreTest, ClaimHonoursNotBeforeAndRecordsTheNode) {
  store->insert({make_job("first", 5), make_job("second")});
  auto c = store->claim_next(100);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, "first");
  // lease_node: this start of the node ("name:random"); node: its name.
  EXPECT_EQ(db->query("SELECT lease_node LIKE 'node-a:%' FROM jobs WHERE id = 'first'"), "t");
  EXPECT_EQ(db->query("SELECT lease_node FROM jobs WHERE id = 'first'"),
            db->query("SELECT lease_id FROM runq_nodes WHERE name = 'node-a'"));
  EXPECT_EQ(c->node, "node-a");
  EXPECT_EQ(store->get_status("first")->node, "node-a");
  EXPECT_EQ(db->query("SELECT lease_node FROM jobs WHERE id = 'second'"), "NULL");
  EXPECT_FALSE(store->get("second")->node);
  // A retry waits for its time, and the job behind it goes first meanwhile.
  Job stale = *c;
  stale.attempts = 0;
  EXPECT_FALSE(store->requeue_for_retry(stale, 500));  // not that attempt
  ASSERT_TRUE(store->requeue_for_retry(*c, 500));
  EXPECT_FALSE(store->requeue_for_retry(*c, 500));  // not running
  auto g = store->get("first");
  EXPECT_EQ(g->status, JobStatus::queued);
  EXPECT_EQ(g->attempts, 1);
  EXPECT_FALSE(g->error);
  EXPECT_EQ(store->claim_next(499)->id, "second");
  EXPECT_FALSE(store->claim_next(499));
  auto again = store->claim_next(500);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, "first");
  EXPECT_EQ(again->attempts, 2);
}

TEST_F(PgStoreTest, WebhooksDueAttemptedAndNext) {
  EXPECT_FALSE(store->next_webhook_at());
  Job a = make_job("a");
  a.webhook_url = "http://127.0.0.1:9/a";
  Job b = make_job("b");
  b.webhook_url = "http://127.0.0.1:9/b";
  store->insert({a, b, make_job("plain")});
  EXPECT_TRUE(store->due_webhooks(1'000'000, 10).empty());  // nothing has ended
  ASSERT_TRUE(store->finish(finished(make_job("b"), JobStatus::failed, 200)));
  ASSERT_TRUE(store->cancel_queued("a", 300, std::string("no")));
  ASSERT_TRUE(store->finish(finished(make_job("plain"), JobStatus::succeeded, 100)));
  EXPECT_EQ(store->next_webhook_at(), 200);
  EXPECT_TRUE(store->due_webhooks(199, 10).empty());
  auto due = store->due_webhooks(1000, 10);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].job.id, "b");  // earliest first
  EXPECT_EQ(due[0].attempts, 0);
  EXPECT_EQ(due[0].job.prompt, "prompt of b");  // whole
  EXPECT_EQ(due[1].job.id, "a");
  // Claimed: not handed out again (to this node or another) for a while...
  EXPECT_TRUE(store->due_webhooks(1000, 10).empty());
  EXPECT_EQ(store->next_webhook_at(), 1000 + 60'000'000);
  // ...unless nothing was recorded for them meanwhile (the node died while delivering).
  EXPECT_EQ(store->due_webhooks(1000 + 60'000'000, 1).size(), 1u);

  store->webhook_attempted("b", false, 5000);  // failed: again at 5000
  store->webhook_attempted("a", true, std::nullopt);
  EXPECT_EQ(store->next_webhook_at(), 5000);
  EXPECT_TRUE(store->due_webhooks(4999, 10).empty());
  due = store->due_webhooks(5000, 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].attempts, 1);
  store->webhook_attempted("b", false, std::nullopt);  // given up
  EXPECT_FALSE(store->next_webhook_at());
  EXPECT_TRUE(store->due_webhooks(1'000'000, 10).empty());
  // Delivered or given up: retention may take them now.
  EXPECT_EQ(store->delete_finished_before(1'000'000, 10), 3);
}

TEST_F(PgStoreTest, ErrorsThatAreNoFaultAreRuntimeErrors) {
  insert_one(make_job("dup"));
  try {
    store->insert({make_job("dup")});
    ADD_FAILURE() << "a duplicate id was stored";
  } catch (const StoreUnavailable& e) {
    ADD_FAILURE() << "a constraint is no storage fault: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("duplicate key"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(store->write_fault());
  EXPECT_TRUE(store->get("dup"));  // the connection is usable again
}

TEST_F(PgStoreTest, NoWriteFaultWhenHealthyAndTheProbeWrites) {
  EXPECT_FALSE(store->write_fault().has_value());
  store->probe_write();
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM store_probe"), "1");
  store->probe_write();  // one row, rewritten
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM store_probe"), "1");
  EXPECT_FALSE(store->write_fault().has_value());
  EXPECT_EQ(store->count_by_status(std::nullopt), (StatusCounts{0, 0, 0, 0, 0}));
}

TEST_F(PgStoreTest, SchemaIsVersionedAndTheQueueTableVacuumsEarly) {
  EXPECT_EQ(db->query("SELECT version FROM runq_schema"), "3");
  const std::string options = db->query(
      "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'jobs'");
  EXPECT_NE(options.find("autovacuum_vacuum_scale_factor=0.02"), std::string::npos) << options;
  EXPECT_EQ(db->query("SELECT pg_get_expr(indpred, indrelid) IS NOT NULL FROM pg_index "
                      "WHERE indexrelid = 'jobs_claim'::regclass"),
            "t");
}

TEST_F(PgStoreTest, ConnectionsNameTheNodeAndLimitIdleTransactions) {
  store->probe_write();
  EXPECT_EQ(db->query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND application_name = 'runq/node-a'"),
            "4");  // the pool
  auto other = db->open("node-b", 1);
  EXPECT_EQ(db->query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND application_name = 'runq/node-b'"),
            "1");
}

TEST_F(PgStoreTest, SurvivesCloseAndReopen) {
  insert_one(with_key(make_job("kept"), "k", "h"));
  store.reset();
  store = db->open();
  ASSERT_TRUE(store->get("kept"));
  EXPECT_EQ(insert_one(with_key(make_job("again"), "k", "h")).outcome,
            InsertResult::Outcome::replayed);
}

TEST_F(PgStoreTest, NewerSchemaVersionIsRefused) {
  store.reset();
  db->query("UPDATE runq_schema SET version = 99");
  try {
    db->open();
    ADD_FAILURE() << "opened a schema from the future";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99 is newer"), std::string::npos)
        << e.what();
  }
}

// Two "nodes" (stores) on one database, four claimers each: every job is claimed once.
TEST_F(PgStoreTest, TwoNodesClaimingConcurrentlyNeverShareAJob) {
  constexpr int kJobs = 200;
  std::vector<Job> batch;
  for (int i = 0; i < kJobs; ++i) batch.push_back(make_job("n" + std::to_string(i), i % 4));
  store->insert(batch);
  auto node_b = db->open("node-b", 4);
  std::vector<Store*> nodes{store.get(), node_b.get()};
  std::vector<std::vector<std::string>> got(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Store& s = *nodes[t % 2];
      while (auto j = s.claim_next(1)) {
        EXPECT_EQ(j->attempts, 1);
        got[t].push_back(j->id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, int> times;
  for (auto& v : got)
    for (auto& id : v) ++times[id];
  EXPECT_EQ(times.size(), static_cast<std::size_t>(kJobs));
  for (auto& [id, n] : times) EXPECT_EQ(n, 1) << id << " claimed " << n << " times";
  // Both nodes took part, and each job names the node that claimed it.
  EXPECT_EQ(db->query("SELECT count(DISTINCT lease_node) FROM jobs"), "2");
  EXPECT_EQ(db->query("SELECT count(*) FROM jobs WHERE status = 'running'"),
            std::to_string(kJobs));
}

// The same idempotency key submitted on two nodes at the same moment: one job, and the
// other node answers with it (replayed), never an error or a second job.
TEST_F(PgStoreTest, SameKeyFromTwoNodesAtOnceStoresOneJob) {
  auto node_b = db->open("node-b", 2);
  constexpr int kRounds = 40;
  std::barrier sync(2);
  std::vector<std::vector<InsertResult>> results(2);
  auto submit = [&](int node) {
    Store& s = node == 0 ? *store : *node_b;
    for (int i = 0; i < kRounds; ++i) {
      const std::string key = "key-" + std::to_string(i);
      Job j = with_key(make_job("j" + std::to_string(i) + "-" + std::to_string(node)), key, "h");
      sync.arrive_and_wait();
      try {
        // Batches with other jobs in opposite orders on the two nodes, to cross locks.
        std::vector<Job> batch{j, make_job("x" + std::to_string(i) + "-" + std::to_string(node))};
        if (node == 1) std::swap(batch[0], batch[1]);
        auto r = s.insert(batch);
        results[node].push_back(r[node == 1 ? 1 : 0]);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "node " << node << " round " << i << ": " << e.what();
        results[node].push_back({});
      }
    }
  };
  std::thread a(submit, 0), b(submit, 1);
  a.join();
  b.join();
  for (int i = 0; i < kRounds; ++i) {
    const auto& ra = results[0][i];
    const auto& rb = results[1][i];
    const int inserted = (ra.outcome == InsertResult::Outcome::inserted) +
                         (rb.outcome == InsertResult::Outcome::inserted);
    EXPECT_EQ(inserted, 1) << "round " << i;
    EXPECT_EQ(ra.job.id, rb.job.id) << "round " << i;  // both answer with the one job
    EXPECT_EQ(db->query("SELECT count(*) FROM jobs WHERE idempotency_key = 'key-" +
                        std::to_string(i) + "'"),
              "1");
  }
}

TEST_F(PgStoreTest, NodesStartingTogetherOnAFreshDatabaseAllOpen) {
  store.reset();
  FreshDatabase fresh;
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      try {
        auto s = fresh.open("node-" + std::to_string(i), 1);
        s->insert({make_job("from-" + std::to_string(i))});
        ++opened;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "node " << i << ": " << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  EXPECT_EQ(fresh.query("SELECT version FROM runq_schema"), "3");  // one row
  EXPECT_EQ(fresh.query("SELECT count(*) FROM jobs"), "4");
}

// The database refuses connections for a while: calls throw StoreUnavailable
// (unreachable) and write_fault says so; once it is back, the store reconnects by
// itself, and a write clears the fault.
TEST_F(PgStoreTest, LostDatabaseIsUnavailableThenRecoversByItself) {
  insert_one(make_job("before"));
  raw_query(db->admin, "ALTER DATABASE " + db->name + " ALLOW_CONNECTIONS false");
  raw_query(db->admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                       "datname = '" + db->name + "' AND pid <> pg_backend_pid()");
  try {
    store->insert({make_job("during")});
    ADD_FAILURE() << "a write succeeded while the database refused connections";
  } catch (const StoreUnavailable& e) {
    EXPECT_EQ(e.reason(), FaultReason::unreachable);
    EXPECT_EQ(e.detail(), "Store unavailable");
  }
  auto fault = store->write_fault();
  ASSERT_TRUE(fault);
  EXPECT_EQ(fault->reason, FaultReason::unreachable);
  EXPECT_GT(fault->since_us, 0);
  EXPECT_THROW(store->get_status("before"), StoreUnavailable);  // reads too
  EXPECT_THROW(store->probe_write(), StoreUnavailable);
  EXPECT_TRUE(store->write_fault());

  raw_query(db->admin, "ALTER DATABASE " + db->name + " ALLOW_CONNECTIONS true");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool probed = false;
  while (!probed && std::chrono::steady_clock::now() < deadline) {
    try {
      store->probe_write();
      probed = true;
    } catch (const StoreUnavailable&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_TRUE(probed) << "the store did not reconnect";
  EXPECT_FALSE(store->write_fault());
  // Every pooled connection comes back (each on its next use).
  for (int i = 0; i < 20; ++i) {
    try {
      EXPECT_TRUE(store->get_status("before"));
    } catch (const StoreUnavailable&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_EQ(insert_one(make_job("after")).outcome, InsertResult::Outcome::inserted);
  EXPECT_FALSE(store->write_fault());
}

// A connection the server closed while it sat in the pool (a restart, an admin) is
// re-made before use, without a failed call.
TEST_F(PgStoreTest, ConnectionsClosedWhileIdleAreRemadeQuietly) {
  insert_one(make_job("j"));
  raw_query(db->admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                       "datname = '" + db->name + "' AND pid <> pg_backend_pid()");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the backends are gone
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(store->get_status("j"));
  EXPECT_TRUE(store->claim_next(1));
  EXPECT_FALSE(store->write_fault());
}

// ---- several nodes: leases, fencing, rescue ----------------------------------------
// Nodes with a lease of 1 s (renewed every 100 ms). The fixture's own store is closed
// first, so that only the nodes of the test rescue.

std::string job_row(const FreshDatabase& db, const std::string& id) {
  return db.query("SELECT status || ' ' || attempts || ' ' || coalesce(node, '-') || ' ' || "
                  "coalesce(lease_node, '-') || ' ' || coalesce(started_at::text, '-') "
                  "FROM jobs WHERE id = '" + id + "'");
}

TEST_F(PgStoreTest, LiveNodesKeepTheirJobsDeadNodesJobsRunAgainElsewhere) {
  store.reset();
  auto a = db->open_node("alpha", 1);
  auto b = db->open_node("beta", 1);
  a->insert({make_job("j")});
  auto ja = a->claim_next(1);
  ASSERT_TRUE(ja);
  EXPECT_EQ(ja->node, "alpha");
  const std::string lease_a = db->query("SELECT lease_id FROM runq_nodes WHERE name = 'alpha'");
  // Alpha renews its lease: however long it runs, beta takes nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(b->requeue_running(3).requeued, 0);
  EXPECT_EQ(job_row(*db, "j"), "running 1 alpha " + lease_a + " 1");
  EXPECT_EQ(b->get_status("j")->node, "alpha");  // the same on every node

  // Alpha dies (its store goes away as with kill -9: nothing is cleaned up)...
  a.reset();
  EXPECT_EQ(db->query("SELECT count(*) FROM runq_nodes WHERE name = 'alpha'"), "1");
  EXPECT_EQ(db->query("SELECT status FROM jobs WHERE id = 'j'"), "running");
  // ...and once its lease has run out, beta's keeper puts its job back in the queue.
  ASSERT_TRUE(eventually([&] { return b->get_status("j")->status == JobStatus::queued; }));
  EXPECT_EQ(job_row(*db, "j"), "queued 1 - - -");
  EXPECT_EQ(db->query("SELECT count(*) FROM runq_nodes WHERE name = 'alpha'"), "0");
  auto jb = b->claim_next(2);
  ASSERT_TRUE(jb);
  EXPECT_EQ(jb->id, "j");
  EXPECT_EQ(jb->attempts, 2);
  EXPECT_EQ(jb->node, "beta");
  Job done = *jb;
  done.status = JobStatus::succeeded;
  EXPECT_TRUE(b->finish(done));
}

// Alpha loses its lease while it runs (another node ended it): it is told to stop, its
// late writes of the old attempts are refused, and it goes on with a new lease.
TEST_F(PgStoreTest, ANodeThatLostItsLeaseStopsAndItsLateWritesAreRefused) {
  store.reset();
  std::promise<void> stopped;
  std::atomic<int> stop_calls{0};
  auto a = db->open_node("alpha", 1);
  auto b = db->open_node("beta", 1);
  a->on_lease_lost([&] {
    if (stop_calls.fetch_add(1) == 0) stopped.set_value();
  });
  a->insert({make_job("j"), make_job("k")});
  auto ja = a->claim_next(1);
  auto ka = a->claim_next(1);
  ASSERT_TRUE(ja && ka);
  db->query("DELETE FROM runq_nodes WHERE name = 'alpha'");  // as a rescuer does
  ASSERT_EQ(stopped.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_TRUE(eventually([&] {
    return b->get_status("j")->status == JobStatus::queued &&
           b->get_status("k")->status == JobStatus::queued;
  }));
  auto jb = b->claim_next(2);
  ASSERT_TRUE(jb);
  ASSERT_EQ(jb->id, "j");
  const std::string before = job_row(*db, "j");
  EXPECT_EQ(before.substr(0, 18), "running 2 beta bet") << before;

  Job late = finished(*ja, JobStatus::succeeded);
  late.result = "late";
  EXPECT_FALSE(a->finish(late));  // beta runs attempt 2 now
  EXPECT_FALSE(a->requeue_for_retry(*ja, 0));
  EXPECT_EQ(job_row(*db, "j"), before);
  EXPECT_FALSE(a->get("j")->result);
  // k is queued again, not yet claimed: a late end is refused all the same.
  EXPECT_FALSE(a->finish(finished(*ka, JobStatus::failed)));
  EXPECT_FALSE(a->requeue_for_retry(*ka, 0));
  EXPECT_EQ(job_row(*db, "k"), "queued 1 - - -");

  // Alpha took a new lease and works on; its writes name that lease.
  EXPECT_EQ(db->query("SELECT count(*) FROM runq_nodes WHERE name = 'alpha'"), "1");
  auto k2 = a->claim_next(3);
  ASSERT_TRUE(k2);
  EXPECT_EQ(k2->attempts, 2);
  EXPECT_TRUE(a->finish(finished(*k2, JobStatus::succeeded)));
  Job done_b = finished(*jb, JobStatus::succeeded);
  EXPECT_TRUE(b->finish(done_b));
  EXPECT_EQ(stop_calls.load(), 1);
  a->on_lease_lost({});
}

// The database cannot be reached: the node stops its jobs before its lease runs out,
// and takes a new lease when it is back; the jobs of the old one run again.
TEST_F(PgStoreTest, ANodeCutOffFromTheDatabaseStopsItsJobsBeforeItsLeaseRunsOut) {
  store.reset();
  std::promise<void> stopped;
  std::atomic<int> stop_calls{0};
  auto a = db->open_node("alpha", 1);
  a->on_lease_lost([&] {
    if (stop_calls.fetch_add(1) == 0) stopped.set_value();
  });
  a->insert({make_job("j")});
  auto ja = a->claim_next(1);
  ASSERT_TRUE(ja);
  const auto cut = std::chrono::steady_clock::now();
  raw_query(db->admin, "ALTER DATABASE " + db->name + " ALLOW_CONNECTIONS false");
  raw_query(db->admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                       "datname = '" + db->name + "' AND pid <> pg_backend_pid()");
  ASSERT_EQ(stopped.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  // The last renewal began at most 100 ms before the cut; stop by lease - margin after it.
  EXPECT_LT(std::chrono::steady_clock::now() - cut, std::chrono::milliseconds(1000));
  raw_query(db->admin, "ALTER DATABASE " + db->name + " ALLOW_CONNECTIONS true");
  ASSERT_TRUE(eventually([&] {
    try {
      return a->get_status("j")->status == JobStatus::queued;
    } catch (const StoreUnavailable&) {
      return false;
    }
  }));
  EXPECT_FALSE(a->finish(finished(*ja, JobStatus::succeeded)));
  auto again = a->claim_next(2);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempts, 2);
  EXPECT_TRUE(a->finish(finished(*again, JobStatus::succeeded)));
  EXPECT_EQ(stop_calls.load(), 1);
  a->on_lease_lost({});
}

TEST_F(PgStoreTest, RescuedJobsThatStartedMaxAttemptsTimesFail) {
  store.reset();
  auto b = db->open_node("beta", 1, /*max_attempts=*/2);
  Job hooked = make_job("hooked");
  hooked.attempts = 1;  // started once before
  hooked.webhook_url = "http://127.0.0.1:9/hook";
  b->insert({hooked, make_job("fresh")});
  {
    auto a = db->open_node("alpha", 1);
    ASSERT_EQ(a->claim_next(1)->attempts, 2);
    ASSERT_EQ(a->claim_next(1)->attempts, 1);
  }  // alpha dies
  ASSERT_TRUE(eventually([&] {
    return b->get_status("hooked")->status == JobStatus::failed &&
           b->get_status("fresh")->status == JobStatus::queued;
  }));
  auto f = b->get("hooked");
  EXPECT_EQ(f->error, "Job interrupted 2 times (the server stopped while it ran); giving up");
  EXPECT_TRUE(f->completed_at_us);
  EXPECT_EQ(f->attempts, 2);
  EXPECT_EQ(f->node, "alpha");  // where it last ran
  EXPECT_TRUE(b->next_webhook_at());  // its webhook is due
  EXPECT_EQ(b->get_status("fresh")->attempts, 1);
}

TEST_F(PgStoreTest, TwoNodesAskingForDueWebhooksNeverGetTheSameOne) {
  constexpr int kJobs = 60;
  std::vector<Job> batch;
  for (int i = 0; i < kJobs; ++i) {
    Job j = make_job("w" + std::to_string(i));
    j.webhook_url = "http://127.0.0.1:9/w";
    batch.push_back(j);
  }
  store->insert(batch);
  for (const Job& j : batch) ASSERT_TRUE(store->finish(finished(j, JobStatus::succeeded, 100)));
  auto b = db->open("node-b", 2);
  std::vector<std::vector<std::string>> got(4);
  std::barrier sync(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Store& s = t % 2 ? *b : *store;
      sync.arrive_and_wait();
      while (true) {
        auto due = s.due_webhooks(1000, 3);
        if (due.empty()) break;
        for (auto& d : due) got[t].push_back(d.job.id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, int> times;
  for (auto& v : got)
    for (auto& id : v) ++times[id];
  EXPECT_EQ(times.size(), static_cast<std::size_t>(kJobs));
  for (auto& [id, n] : times) EXPECT_EQ(n, 1) << id << " handed out " << n << " times";
  EXPECT_TRUE(b->due_webhooks(1000, 100).empty());
}

// A database of schema version 1 (one node, before leases) is migrated on open; its
// data is kept, and a job it left running (no lease) is re-queued at start-up.
TEST_F(PgStoreTest, SchemaVersion1MigratesToTheCurrentVersion) {
  store->insert({make_job("old"), make_job("was-running")});
  store->claim_next(1);
  store.reset();
  db->query("ALTER TABLE jobs DROP COLUMN node, DROP COLUMN cancel_requested; "
            "DROP TABLE runq_nodes; DROP TABLE job_events; "
            "UPDATE runq_schema SET version = 1; "
            "UPDATE jobs SET lease_node = 'node-a' WHERE id = 'was-running'");
  store = db->open_node("node-a", 3600);
  EXPECT_EQ(db->query("SELECT version FROM runq_schema"), "3");
  EXPECT_EQ(db->query("SELECT count(*) FROM information_schema.columns WHERE "
                      "table_name = 'jobs' AND column_name = 'node'"),
            "1");
  EXPECT_EQ(db->query("SELECT count(*) FROM runq_nodes"), "1");
  EXPECT_TRUE(store->get("old"));
  EXPECT_EQ(store->requeue_running(3).requeued, 1);
  EXPECT_EQ(store->get_status("was-running")->status, JobStatus::queued);
}

}  // namespace

TEST(PgStoreOpen, UnreachableServerThrowsAReadableErrorWithoutThePassword) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    open_postgres_store(
        PostgresOptions{"postgresql://runq:s3cret-pw@127.0.0.1:1/jobs", 2, "n"});
    ADD_FAILURE() << "opened a store on a closed port";
  } catch (const StoreUnavailable& e) {
    ADD_FAILURE() << "open throws std::runtime_error, not StoreUnavailable: " << e.what();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot connect to PostgreSQL at 127.0.0.1:1/jobs"), std::string::npos)
        << what;
    EXPECT_EQ(what.find("s3cret"), std::string::npos) << what;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(PgStoreOpen, InvalidUriThrows) {
  EXPECT_THROW(open_postgres_store(PostgresOptions{"postgresql://[::1", 1, "n"}),
               std::runtime_error);
}

TEST(PgStoreOpen, ServerUriIsSet) { ASSERT_NE(server_uri(), nullptr) << kNoServer; }
