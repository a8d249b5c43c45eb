// api::Router driven with plain Requests against a real JobService (SQLite in memory,
// the echo agent): every route, status code, detail string and header.
#include "runq/agents/echo_agent.hpp"
#include "runq/api/router.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <regex>
#include <thread>

using namespace runq;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Answer {
  http::Response r;
  json body() const { return r.body.empty() ? json() : json::parse(r.body); }
  const std::string* header(const std::string& name) const {
    for (const auto& h : r.headers)
      if (h.name == name) return &h.value;
    return nullptr;
  }
};

class RouterTest : public ::testing::Test {
 protected:
  void start(int workers = 2, api::ApiOptions api_opts = {}, int default_timeout = 3600,
             int max_timeout = 86400, std::int64_t retention_s = 7 * 24 * 3600) {
    router_.reset();  // a restart: the old service goes before the store it uses
    service_.reset();
    store_ = store::open_sqlite_store(":memory:");
    jobs::ServiceOptions opts;
    opts.max_concurrent = workers;
    opts.default_timeout_s = default_timeout;
    opts.max_timeout_s = max_timeout;
    opts.retention_s = retention_s;
    service_ = std::make_unique<jobs::JobService>(*store_, agent_, opts);
    service_->start();
    router_ = std::make_unique<api::Router>(*service_, std::move(api_opts));
  }
  void SetUp() override { start(); }
  void TearDown() override {
    if (service_) service_->stop();
  }

  Answer call(const std::string& method, const std::string& target, std::string body = {},
              std::vector<http::Header> headers = {}) {
    http::Request req;
    req.method = method;
    req.target = target;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    req.query = q == std::string::npos ? "" : target.substr(q + 1);
    req.headers = std::move(headers);
    req.body = std::move(body);
    auto p = std::make_shared<std::promise<http::Response>>();
    auto f = p->get_future();
    auto calls = std::make_shared<std::atomic<int>>(0);
    router_->handle(std::move(req), [p, calls](http::Response r) {
      if (calls->fetch_add(1) == 0) p->set_value(std::move(r));
      else ADD_FAILURE() << "reply called twice";
    });
    if (f.wait_for(70s) != std::future_status::ready) {
      ADD_FAILURE() << "no reply for " << method << " " << target;
      return {};
    }
    return {f.get()};
  }
  Answer get(const std::string& t) { return call("GET", t); }
  Answer post_json(const json& body, std::vector<http::Header> headers = {}) {
    return call("POST", "/api/v1/runs", body.dump(), std::move(headers));
  }

  // Submits and returns the 202 body.
  json submit(json body, std::vector<http::Header> headers = {}) {
    Answer a = post_json(body, std::move(headers));
    EXPECT_EQ(a.r.status, 202) << a.r.body;
    return a.body();
  }
  json submit_prompt(const std::string& prompt, json config = json::object()) {
    return submit(json{{"prompt", prompt}, {"config", config}});
  }

  json wait_status(const std::string& id, const std::string& want = "",
                   std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      Answer a = get("/api/v1/runs/" + id);
      json b = a.body();
      std::string st = b.value("status", "");
      if (want.empty() ? (st == "succeeded" || st == "failed" || st == "cancelled")
                       : st == want)
        return b;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "job " << id << " never reached " << (want.empty() ? "the end" : want)
                      << ": " << a.r.body;
        return b;
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  agents::EchoAgent agent_;
  std::unique_ptr<jobs::Store> store_;
  std::unique_ptr<jobs::JobService> service_;
  std::unique_ptr<api::Router> router_;
};

json detail(const std::string& d) { return json{{"detail", d}}; }

const std::regex kJobId("run_[0-9a-f]{12,}");
const std::regex kTs(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");

}  // namespace

// ------------------------------------------------------------------ submit

TEST_F(RouterTest, Submit202) {
  Answer a = call("POST", "/api/v1/runs", R"({"prompt":"What is 2+2?"})",
                  {{"host", "127.0.0.1:8005"}, {"content-type", "application/json"}});
  ASSERT_EQ(a.r.status, 202) << a.r.body;
  EXPECT_EQ(a.r.content_type, "application/json");
  json b = a.body();
  EXPECT_EQ(b.size(), 5u);
  std::string id = b["job_id"];
  EXPECT_TRUE(std::regex_match(id, kJobId)) << id;
  EXPECT_EQ(b["status"], "queued");
  EXPECT_TRUE(std::regex_match(b["created_at"].get<std::string>(), kTs));
  EXPECT_EQ(b["poll_url"], "http://127.0.0.1:8005/api/v1/runs/" + id);
  EXPECT_EQ(b["stream_url"], "http://127.0.0.1:8005/api/v1/runs/" + id + "/stream");
  ASSERT_TRUE(a.header("Location"));
  EXPECT_EQ(*a.header("Location"), b["poll_url"]);
  ASSERT_TRUE(a.header("Retry-After"));
  EXPECT_EQ(*a.header("Retry-After"), "2");
  json st = wait_status(id);
  EXPECT_EQ(st["status"], "succeeded");
  EXPECT_EQ(st["created_at"], b["created_at"]);
}

TEST_F(RouterTest, SubmitUrlsFromHostOrPublicUrl) {
  json b = submit(json{{"prompt", "x"}}, {{"host", "jobs.example.test:9999"}});
  EXPECT_EQ(b["poll_url"], "http://jobs.example.test:9999/api/v1/runs/" + b["job_id"].get<std::string>());
  b = submit(json{{"prompt", "x"}});
  EXPECT_EQ(b["poll_url"], "http://127.0.0.1/api/v1/runs/" + b["job_id"].get<std::string>());

  service_->stop();
  api::ApiOptions o;
  o.public_url = "https://jobs.example.com/";
  start(2, o);
  b = submit(json{{"prompt", "x"}}, {{"host", "ignored:1"}});
  EXPECT_EQ(b["stream_url"],
            "https://jobs.example.com/api/v1/runs/" + b["job_id"].get<std::string>() + "/stream");
}

TEST_F(RouterTest, ContentTypes) {
  for (const char* ct : {"application/json", "application/json; charset=utf-8",
                         "application/merge-patch+json"}) {
    Answer a = call("POST", "/api/v1/runs", R"({"prompt":"x"})", {{"content-type", ct}});
    EXPECT_EQ(a.r.status, 202) << ct;
  }
  EXPECT_EQ(call("POST", "/api/v1/runs", R"({"prompt":"x"})").r.status, 202);
  for (const char* ct : {"text/plain", "application/x-www-form-urlencoded", "text/json"}) {
    // 415 wins over a body that would also be a 422
    Answer a = call("POST", "/api/v1/runs", "{", {{"content-type", ct}});
    EXPECT_EQ(a.r.status, 415) << ct;
    EXPECT_EQ(a.body(), detail("Content-Type must be application/json"));
  }
  EXPECT_EQ(get("/api/v1/runs").body()["total"], 4);
}

TEST_F(RouterTest, Submit422) {
  Answer a = call("POST", "/api/v1/runs", "{}");
  EXPECT_EQ(a.r.status, 422);
  EXPECT_EQ(a.r.body,
            R"({"detail":[{"type":"missing","loc":["body","prompt"],"msg":"Field required","input":{}}]})");
  a = call("POST", "/api/v1/runs", R"({"prompt": x})");
  EXPECT_EQ(a.r.status, 422);
  EXPECT_EQ(a.body()["detail"][0]["loc"], json({"body", 11}));
  a = post_json({{"prompt", "x"}, {"timeout", 86401}});
  EXPECT_EQ(a.r.status, 422);
  EXPECT_EQ(get("/api/v1/runs").body()["total"], 0);
}

TEST_F(RouterTest, MaxTimeoutFromServiceOptions) {
  service_->stop();
  start(2, {}, 7, 10);
  EXPECT_EQ(post_json({{"prompt", "x"}, {"timeout", 11}}).r.status, 422);
  json b = submit(json{{"prompt", "x"}, {"timeout", 10}});
  EXPECT_EQ(get("/api/v1/runs/" + b["job_id"].get<std::string>()).body()["timeout"], 10);
  b = submit(json{{"prompt", "x"}, {"timeout", 0}});
  EXPECT_EQ(get("/api/v1/runs/" + b["job_id"].get<std::string>()).body()["timeout"], 7);
}

TEST_F(RouterTest, IdempotencyReplayAndConflict) {
  json first = submit(json{{"prompt", "x"}}, {{"idempotency-key", "k1"}});
  // same key in the body, same request: the first job
  json again = submit(json{{"prompt", "x"}, {"idempotency_key", "k1"}});
  EXPECT_EQ(again["job_id"], first["job_id"]);
  EXPECT_EQ(again["status"], "queued");
  EXPECT_EQ(again["created_at"], first["created_at"]);
  // a different request with that key
  Answer c = post_json({{"prompt", "y"}}, {{"idempotency-key", "k1"}});
  EXPECT_EQ(c.r.status, 409);
  EXPECT_EQ(c.body(), detail("Idempotency key already used for job " +
                             first["job_id"].get<std::string>() + " with a different request"));
  // scope none: not idempotent
  json n1 = submit(json{{"prompt", "x"}, {"idempotency_key", "k1"}, {"idempotency_scope", "none"}});
  EXPECT_NE(n1["job_id"], first["job_id"]);
  // session scope: per session
  json s1 = submit(json{{"prompt", "x"}, {"idempotency_key", "k1"},
                        {"idempotency_scope", "session"}, {"session_id", "A"}});
  json s2 = submit(json{{"prompt", "x"}, {"idempotency_key", "k1"},
                        {"idempotency_scope", "session"}, {"session_id", "B"}});
  json s1b = submit(json{{"prompt", "x"}, {"idempotency_key", "k1"},
                         {"idempotency_scope", "session"}, {"session_id", "A"}});
  EXPECT_NE(s1["job_id"], s2["job_id"]);
  EXPECT_EQ(s1["job_id"], s1b["job_id"]);
  EXPECT_NE(s1["job_id"], first["job_id"]);
}

TEST_F(RouterTest, SubmitWhileShuttingDown) {
  service_->stop();
  Answer a = post_json({{"prompt", "x"}});
  EXPECT_EQ(a.r.status, 503);
  EXPECT_EQ(a.body(), detail("Server is shutting down"));
  EXPECT_TRUE(a.header("Retry-After"));
}

// ------------------------------------------------------------------ status / result

TEST_F(RouterTest, StatusOfSucceededJob) {
  json b = submit(json{{"prompt", "hello"}, {"session_id", "s-1"}, {"priority", 7},
                       {"metadata", {{"team", "qa"}}}, {"timeout", 30}});
  std::string id = b["job_id"];
  json st = wait_status(id);
  EXPECT_EQ(st["status"], "succeeded");
  EXPECT_EQ(st["session_id"], "s-1");
  EXPECT_EQ(st["priority"], 7);
  EXPECT_EQ(st["metadata"], json({{"team", "qa"}}));
  EXPECT_EQ(st["timeout"], 30);
  EXPECT_EQ(st["attempts"], 1);
  EXPECT_EQ(st["agent_id"], "echo");
  EXPECT_TRUE(st["retry_after"].is_null());
  Answer raw = get("/api/v1/runs/" + id);
  EXPECT_NE(raw.r.body.find(R"("percentage":100.0)"), std::string::npos) << raw.r.body;
}

// Polls of a finished job are answered from memory (the status cache), but never after
// the job is gone: DELETE and the retention sweep end them.
TEST_F(RouterTest, FinishedStatusNeverOutlivesDelete) {
  const std::string id = submit_prompt("cached")["job_id"];
  json done = wait_status(id, "succeeded");
  const std::string first = get("/api/v1/runs/" + id).r.body;
  EXPECT_EQ(json::parse(first), done);
  EXPECT_EQ(get("/api/v1/runs/" + id).r.body, first);  // the same bytes again
  EXPECT_EQ(call("DELETE", "/api/v1/runs/" + id).r.status, 204);
  Answer gone = get("/api/v1/runs/" + id);
  EXPECT_EQ(gone.r.status, 404);
  EXPECT_EQ(gone.body(), detail("Job not found: " + id));
}

TEST_F(RouterTest, FinishedStatusNeverOutlivesRetention) {
  service_->stop();
  start(2, {}, 3600, 86400, /*retention_s=*/1);  // the sweep looks every 100 ms
  const std::string id = submit_prompt("short-lived")["job_id"];
  json done = wait_status(id, "succeeded");
  EXPECT_FALSE(done["expires_at"].is_null());
  ASSERT_EQ(get("/api/v1/runs/" + id).r.status, 200);  // polled: now cached
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  int status = 200;
  while (status == 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    status = get("/api/v1/runs/" + id).r.status;
  }
  EXPECT_EQ(status, 404) << "still answered after retention deleted it";
  EXPECT_EQ(get("/api/v1/runs/" + id + "/result").r.status, 404);
}

TEST_F(RouterTest, Status404) {
  for (const char* id : {"run_000000000000", "run_deadbeefdeadbeef", "nope", "RUN_ABC",
                         "run_0123456789ab%20"}) {
    Answer a = get(std::string("/api/v1/runs/") + id);
    EXPECT_EQ(a.r.status, 404) << id;
  }
  EXPECT_EQ(get("/api/v1/runs/nope").body(), detail("Job not found: nope"));
  EXPECT_EQ(get("/api/v1/runs/run_000000000000").body(), detail("Job not found: run_000000000000"));
  EXPECT_EQ(get("/api/v1/runs/a%20b").body(), detail("Job not found: a b"));
  // invalid UTF-8 in the id still gives valid JSON
  Answer bad = get("/api/v1/runs/%ff");
  EXPECT_EQ(bad.r.status, 404);
  EXPECT_NO_THROW(json::parse(bad.r.body));
}

TEST_F(RouterTest, Result200) {
  std::string prompt = "Line one\nLine \"two\"\ttab \\ back \xc3\xa9";
  json b = submit(json{{"prompt", prompt}, {"config", {{"sleep_seconds", 0.2}}}});
  std::string id = b["job_id"];
  json st = wait_status(id);
  Answer a = get("/api/v1/runs/" + id + "/result");
  ASSERT_EQ(a.r.status, 200) << a.r.body;
  json r = a.body();
  EXPECT_EQ(r["job_id"], id);
  EXPECT_EQ(r["status"], "succeeded");
  EXPECT_EQ(r["result"], prompt);
  EXPECT_TRUE(r["error"].is_null());
  EXPECT_TRUE(r["duration_seconds"].is_number_float());
  EXPECT_GE(r["duration_seconds"].get<double>(), 0.2);
  EXPECT_EQ(r["created_at"], st["created_at"]);
  EXPECT_EQ(r["started_at"], st["started_at"]);
  EXPECT_EQ(r["completed_at"], st["completed_at"]);
}

TEST_F(RouterTest, Result400s) {
  json f = submit_prompt("x", {{"fail_with", "Agent execution timeout"}});
  std::string fid = f["job_id"];
  wait_status(fid);
  Answer a = get("/api/v1/runs/" + fid + "/result");
  EXPECT_EQ(a.r.status, 400);
  EXPECT_EQ(a.r.body, R"({"detail":"Job failed. No result available.","error":"Agent execution timeout"})");

  json r = submit_prompt("x", {{"sleep_seconds", 30}});
  std::string rid = r["job_id"];
  wait_status(rid, "running");
  a = get("/api/v1/runs/" + rid + "/result");
  EXPECT_EQ(a.r.status, 400);
  EXPECT_EQ(a.body(), detail("Job is still running. Current status: running"));

  Answer c = call("POST", "/api/v1/runs/" + rid + "/cancel");
  EXPECT_EQ(c.r.status, 200);
  a = get("/api/v1/runs/" + rid + "/result");
  EXPECT_EQ(a.r.status, 400);
  json body = a.body();
  EXPECT_EQ(body.size(), 2u);
  EXPECT_EQ(body["detail"], "Job was cancelled. No result available.");
  EXPECT_EQ(body["error"], get("/api/v1/runs/" + rid).body()["error"]);

  EXPECT_EQ(get("/api/v1/runs/run_0123456789ab/result").body(),
            detail("Job not found: run_0123456789ab"));
}

TEST_F(RouterTest, ResultOfQueuedJob) {
  service_->stop();
  start(1);
  json blocker = submit_prompt("b", {{"sleep_seconds", 30}});
  wait_status(blocker["job_id"], "running");
  json q = submit_prompt("q");
  Answer a = get("/api/v1/runs/" + q["job_id"].get<std::string>() + "/result");
  EXPECT_EQ(a.r.status, 400);
  EXPECT_EQ(a.body(), detail("Job is still queued. Current status: queued"));
  json st = get("/api/v1/runs/" + q["job_id"].get<std::string>()).body();
  EXPECT_EQ(st["retry_after"], 2);
  EXPECT_EQ(get("/api/v1/runs/" + blocker["job_id"].get<std::string>()).body()["retry_after"], 5);
  call("POST", "/api/v1/runs/" + blocker["job_id"].get<std::string>() + "/cancel");
}

TEST_F(RouterTest, WaitReturnsWhenTerminal) {
  json b = submit_prompt("waited", {{"sleep_seconds", 0.3}});
  std::string id = b["job_id"];
  auto t0 = std::chrono::steady_clock::now();
  Answer a = get("/api/v1/runs/" + id + "?wait=10");
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(a.r.status, 200);
  EXPECT_EQ(a.body()["status"], "succeeded");
  EXPECT_LT(elapsed, 3s);
  a = get("/api/v1/runs/" + id + "/result?wait=10");
  EXPECT_EQ(a.body()["result"], "waited");

  json c = submit_prompt("again", {{"sleep_seconds", 0.3}});
  a = get("/api/v1/runs/" + c["job_id"].get<std::string>() + "/result?wait=10");
  EXPECT_EQ(a.r.status, 200) << a.r.body;
  EXPECT_EQ(a.body()["result"], "again");
}

TEST_F(RouterTest, WaitTimesOut) {
  json b = submit_prompt("x", {{"sleep_seconds", 30}});
  std::string id = b["job_id"];
  wait_status(id, "running");
  auto t0 = std::chrono::steady_clock::now();
  Answer a = get("/api/v1/runs/" + id + "?wait=1");
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(a.r.status, 200);
  EXPECT_EQ(a.body()["status"], "running");
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 2500ms);
  a = get("/api/v1/runs/" + id + "/result?wait=1");
  EXPECT_EQ(a.r.status, 400);
  call("POST", "/api/v1/runs/" + id + "/cancel");
}

TEST_F(RouterTest, BadWait422) {
  json b = submit_prompt("x");
  std::string id = b["job_id"];
  for (const char* w : {"61", "-1", "abc", "1.5x", "99999999999999999999", ""}) {
    for (const char* ep : {"", "/result"}) {
      Answer a = get("/api/v1/runs/" + id + ep + "?wait=" + w);
      EXPECT_EQ(a.r.status, 422) << w << ep;
      EXPECT_EQ(a.body()["detail"][0]["loc"], json({"query", "wait"})) << a.r.body;
    }
  }
  // unknown job with a wait: 404 at once
  auto t0 = std::chrono::steady_clock::now();
  Answer a = get("/api/v1/runs/run_aaaaaaaaaaaa?wait=5");
  EXPECT_EQ(a.r.status, 404);
  a = get("/api/v1/runs/run_aaaaaaaaaaaa/result?wait=5");
  EXPECT_EQ(a.r.status, 404);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

// ------------------------------------------------------------------ cancel / delete

TEST_F(RouterTest, CancelAndDelete) {
  json r = submit_prompt("x", {{"sleep_seconds", 30}});
  std::string id = r["job_id"];
  wait_status(id, "running");

  Answer d = call("DELETE", "/api/v1/runs/" + id);
  EXPECT_EQ(d.r.status, 400);
  EXPECT_EQ(d.body(), detail("Cannot delete running job. Cancel it first."));

  Answer c = call("POST", "/api/v1/runs/" + id + "/cancel");
  ASSERT_EQ(c.r.status, 200) << c.r.body;
  EXPECT_EQ(c.body()["status"], "cancelled");
  EXPECT_TRUE(c.body()["retry_after"].is_null());
  EXPECT_EQ(call("POST", "/api/v1/runs/" + id + "/cancel").r.status, 200);

  d = call("DELETE", "/api/v1/runs/" + id);
  EXPECT_EQ(d.r.status, 204);
  EXPECT_TRUE(d.r.body.empty());
  EXPECT_TRUE(d.r.content_type.empty());
  EXPECT_EQ(call("DELETE", "/api/v1/runs/" + id).body(), detail("Job not found: " + id));
  EXPECT_EQ(call("POST", "/api/v1/runs/" + id + "/cancel").r.status, 404);
  EXPECT_EQ(get("/api/v1/runs/" + id + "/stream").r.status, 404);

  json s = submit_prompt("done");
  wait_status(s["job_id"]);
  c = call("POST", "/api/v1/runs/" + s["job_id"].get<std::string>() + "/cancel");
  EXPECT_EQ(c.r.status, 400);
  EXPECT_EQ(c.body(), detail("Cannot cancel job with status: succeeded"));
  EXPECT_EQ(call("POST", "/api/v1/runs/run_abcdefabcdef/cancel").body(),
            detail("Job not found: run_abcdefabcdef"));
  EXPECT_EQ(call("DELETE", "/api/v1/runs/run_ffffffffffff").r.status, 404);
}

// ------------------------------------------------------------------ list

TEST_F(RouterTest, ListEmptyExact) {
  Answer a = get("/api/v1/runs");
  EXPECT_EQ(a.r.status, 200);
  EXPECT_EQ(a.r.body, R"({"jobs":[],"total":0,"page":1,"page_size":20})");
}

TEST_F(RouterTest, ListPagingAndFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(submit(json{{"prompt", "p"}, {"session_id", i % 2 ? "odd one" : "even"}})["job_id"]);
  for (auto& id : ids) wait_status(id);
  json all = get("/api/v1/runs").body();
  EXPECT_EQ(all["total"], 5);
  ASSERT_EQ(all["jobs"].size(), 5u);
  EXPECT_EQ(all["jobs"][0]["job_id"], ids[4]);  // newest first
  // A list item is the status object plus the prompt's preview.
  json item = all["jobs"][0];
  EXPECT_EQ(item["prompt_preview"], "p");
  item.erase("prompt_preview");
  EXPECT_EQ(item, get("/api/v1/runs/" + ids[4]).body());
  EXPECT_FALSE(get("/api/v1/runs/" + ids[4]).body().contains("prompt_preview"));

  json p = get("/api/v1/runs?page=2&page_size=2").body();
  EXPECT_EQ(p["page"], 2);
  EXPECT_EQ(p["page_size"], 2);
  EXPECT_EQ(p["total"], 5);
  ASSERT_EQ(p["jobs"].size(), 2u);
  EXPECT_EQ(p["jobs"][0]["job_id"], ids[2]);

  json odd = get("/api/v1/runs?session_id=odd+one").body();
  EXPECT_EQ(odd["total"], 2);
  odd = get("/api/v1/runs?session_id=odd%20one&status=succeeded").body();
  EXPECT_EQ(odd["total"], 2);
  EXPECT_EQ(get("/api/v1/runs?status=failed").body()["total"], 0);
  EXPECT_EQ(get("/api/v1/runs?sort=asc&foo=bar").body()["total"], 5);
}

TEST_F(RouterTest, ListBadStatus400) {
  for (const char* bad : {"foo", "QUEUED", "running%20"}) {
    Answer a = get(std::string("/api/v1/runs?status=") + bad);
    EXPECT_EQ(a.r.status, 400) << bad;
    std::string shown = std::string(bad) == "running%20" ? "running " : bad;
    EXPECT_EQ(a.body(), detail("Invalid status: " + shown +
                               ". Valid values: ['queued', 'running', 'succeeded', 'failed', 'cancelled']"));
  }
}

// An empty value is no filter, as in PraisonAI (`if status:`), like `?session_id=`.
TEST_F(RouterTest, ListEmptyStatusIsNoFilter) {
  std::string id = submit_prompt("p")["job_id"];
  wait_status(id);
  Answer a = get("/api/v1/runs?status=");
  EXPECT_EQ(a.r.status, 200);
  EXPECT_EQ(a.body()["total"], 1);
  EXPECT_EQ(a.body(), get("/api/v1/runs").body());
  EXPECT_EQ(get("/api/v1/runs?status=&session_id=").body(), get("/api/v1/runs").body());
  // The last value wins, as before: an empty one after a real one clears the filter.
  EXPECT_EQ(get("/api/v1/runs?status=failed&status=").body()["total"], 1);
  EXPECT_EQ(get("/api/v1/runs?status=&status=failed").body()["total"], 0);
}

TEST_F(RouterTest, ListBadPaging422) {
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"page_size", "0"}, {"page_size", "101"}, {"page_size", "-1"}, {"page_size", "x"},
           {"page_size", "99999999999999999999"}, {"page_size", "1.5"}, {"page", "0"},
           {"page", "-3"}, {"page", "x"}, {"page", "99999999999999999999"}, {"page", "10000001"}}) {
    Answer a = get("/api/v1/runs?" + name + "=" + value);
    EXPECT_EQ(a.r.status, 422) << name << "=" << value;
    json d = a.body()["detail"];
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0]["loc"], json({"query", name}));
    EXPECT_EQ(d[0]["input"], value);
  }
  json d = get("/api/v1/runs?page=0&page_size=0&status=bogus").body()["detail"];
  ASSERT_EQ(d.size(), 2u);  // 422 comes before the 400 for status
  EXPECT_EQ(get("/api/v1/runs?page=10000000&page_size=100").r.status, 200);
}

// ------------------------------------------------------------------ stream

TEST_F(RouterTest, StreamOfFinishedJobReplays) {
  json b = submit_prompt("streamed");
  std::string id = b["job_id"];
  wait_status(id);
  Answer a = get("/api/v1/runs/" + id + "/stream");
  ASSERT_EQ(a.r.status, 200);
  EXPECT_EQ(a.r.content_type, "text/event-stream");
  ASSERT_TRUE(a.r.stream);
  std::string all;
  while (auto chunk = a.r.stream->poll()) all += *chunk;
  EXPECT_TRUE(a.r.stream->finished());
  EXPECT_NE(all.find("event: result\n"), std::string::npos) << all;
  EXPECT_NE(all.find(R"(data: {"result":"streamed"})"), std::string::npos) << all;
  EXPECT_EQ(all.find("heartbeat"), std::string::npos);

  // resume after the last-but-one event: only the last one comes
  std::vector<long> event_ids;
  std::regex id_line("id: (\\d+)\n");
  for (std::sregex_iterator it(all.begin(), all.end(), id_line), end; it != end; ++it)
    event_ids.push_back(std::stol((*it)[1]));
  ASSERT_GE(event_ids.size(), 1u);
  long before_last = event_ids.back() - 1;
  Answer resumed = call("GET", "/api/v1/runs/" + id + "/stream", {},
                        {{"last-event-id", std::to_string(before_last)}});
  std::string tail;
  while (auto chunk = resumed.r.stream->poll()) tail += *chunk;
  EXPECT_TRUE(tail.starts_with("event: result\nid: " + std::to_string(event_ids.back()) + "\n"))
      << tail;
  a.r.stream->close();
  resumed.r.stream->close();
}

TEST_F(RouterTest, StreamFollowsLiveJob) {
  json b = submit_prompt("live", {{"sleep_seconds", 0.3}, {"steps", 2}});
  std::string id = b["job_id"];
  Answer a = get("/api/v1/runs/" + id + "/stream");
  ASSERT_TRUE(a.r.stream);
  std::mutex mu;
  std::condition_variable cv;
  int notes = 0;
  a.r.stream->set_notifier([&] {
    std::lock_guard l(mu);
    ++notes;
    cv.notify_all();
  });
  std::string all;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!a.r.stream->finished() && std::chrono::steady_clock::now() < deadline) {
    if (auto chunk = a.r.stream->poll()) {
      all += *chunk;
      continue;
    }
    std::unique_lock l(mu);
    cv.wait_for(l, 100ms);
  }
  EXPECT_TRUE(a.r.stream->finished());
  {
    std::lock_guard l(mu);  // the notifier may still be running on the job's thread
    EXPECT_GE(notes, 1);
  }
  EXPECT_NE(all.find("event: progress\n"), std::string::npos) << all;
  EXPECT_NE(all.find("event: result\n"), std::string::npos) << all;
  a.r.stream->close();
}

TEST_F(RouterTest, Stream404) {
  EXPECT_EQ(get("/api/v1/runs/run_0123456789ab/stream").body(),
            detail("Job not found: run_0123456789ab"));
  EXPECT_EQ(get("/api/v1/runs/bogus/stream").r.status, 404);
}

// ------------------------------------------------------------------ service endpoints

TEST_F(RouterTest, HealthAndStats) {
  Answer h = get("/health");
  EXPECT_EQ(h.r.status, 200);
  json hb = h.body();
  EXPECT_EQ(hb["status"], "healthy");
  EXPECT_EQ(hb["store"], "sqlite");
  EXPECT_EQ(hb["executor_stats"]["max_concurrent"], 2);
  EXPECT_EQ(hb["executor_stats"]["default_timeout"], 3600);
  EXPECT_EQ(hb["executor_stats"]["shutdown"], false);
  for (const char* k : {"running_jobs", "queued_jobs"}) EXPECT_TRUE(hb["executor_stats"][k].is_number_integer());

  json s = submit_prompt("x");
  wait_status(s["job_id"]);
  json f = submit_prompt("x", {{"fail_with", "e"}});
  wait_status(f["job_id"]);
  // A worker's slot is freed just after its job's ending is stored.
  for (int i = 0; i < 500 && get("/health").body()["executor_stats"]["running_jobs"] != 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(get("/stats").r.body,
            R"({"total_jobs":2,"by_status":{"queued":0,"running":0,"succeeded":1,"failed":1,"cancelled":0},)"
            R"("executor":{"running_jobs":0,"queued_jobs":0,"max_concurrent":2,"default_timeout":3600,"shutdown":false}})");
}

// ------------------------------------------------------------------ routing

TEST_F(RouterTest, UnknownPaths404) {
  for (const char* p : {"/api", "/api/v1", "/api/v1/runs/", "/api/v1/runsx",
                        "/api/v1/runs//result", "/api/v1/runs/run_0123456789ab/",
                        "/api/v1/runs/run_0123456789ab/foo", "/healthz", "/health/"}) {
    Answer a = get(p);
    EXPECT_EQ(a.r.status, 404) << p;
    EXPECT_EQ(a.body(), detail("Not Found")) << p;
  }
}

TEST_F(RouterTest, WrongMethod405WithAllow) {
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (const auto& c : std::vector<Case>{{"DELETE", "/api/v1/runs", "GET, POST"},
                                         {"PUT", "/api/v1/runs/run_0123456789ab", "GET, DELETE"},
                                         {"POST", "/api/v1/runs/nope", "GET, DELETE"},
                                         {"GET", "/api/v1/runs/run_0123456789ab/cancel", "POST"},
                                         {"POST", "/api/v1/runs/run_0123456789ab/result", "GET"},
                                         {"DELETE", "/api/v1/runs/x/stream", "GET"},
                                         {"POST", "/health", "GET"},
                                         {"HEAD", "/stats", "GET"}}) {
    Answer a = call(c.method, c.path);
    EXPECT_EQ(a.r.status, 405) << c.method << " " << c.path;
    EXPECT_EQ(a.body(), detail("Method Not Allowed"));
    ASSERT_TRUE(a.header("Allow"));
    EXPECT_EQ(*a.header("Allow"), c.allow);
  }
}

// ------------------------------------------------------------------ API keys and CORS

namespace {

const std::string kKeyA = "router-test-key-a";
const std::string kKeyB = "router-test-key-b";

std::vector<http::Header> as(const std::string& key) {
  return {{"authorization", "Bearer " + key}};
}

class RouterAuthTest : public RouterTest {
 protected:
  void SetUp() override {
    api::ApiOptions o;
    o.keys = std::make_shared<api::ApiKeys>(true, std::vector<std::string>{kKeyA, kKeyB});
    o.cors_origins = {"https://app.example.com"};
    start(2, o);
  }
  Answer call_as(const std::string& key, const std::string& method, const std::string& target,
                 std::string body = {}) {
    return call(method, target, std::move(body), as(key));
  }
};

}  // namespace

TEST_F(RouterAuthTest, EveryPathButHealthNeeds401) {
  EXPECT_EQ(get("/health").r.status, 200);
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/stats"}, {"GET", "/api/v1/runs"}, {"POST", "/api/v1/runs"},
           {"GET", "/api/v1/runs/run_0123456789ab"}, {"DELETE", "/api/v1/runs/run_0123456789ab"},
           {"GET", "/api/v1/runs/run_0123456789ab/result"},
           {"POST", "/api/v1/runs/run_0123456789ab/cancel"},
           {"GET", "/api/v1/runs/run_0123456789ab/stream"}, {"GET", "/nope"},
           {"PUT", "/api/v1/runs"}}) {
    for (const auto& headers : std::vector<std::vector<http::Header>>{
             {}, as("wrong"), {{"authorization", "Bearer"}}, {{"authorization", "Basic x"}},
             {{"x-api-key", ""}}}) {
      Answer a = call(method, path, "{\"prompt\":\"x\"}", headers);
      EXPECT_EQ(a.r.status, 401) << method << " " << path;
      EXPECT_EQ(a.body(), detail("Unauthorized"));
      ASSERT_TRUE(a.header("WWW-Authenticate"));
      EXPECT_EQ(*a.header("WWW-Authenticate"), "Bearer");
    }
  }
}

TEST_F(RouterAuthTest, KeysSeeOnlyTheirOwnJobs) {
  Answer sa = call_as(kKeyA, "POST", "/api/v1/runs", R"({"prompt":"a","session_id":"s"})");
  ASSERT_EQ(sa.r.status, 202);
  const std::string id = sa.body()["job_id"];
  // X-API-Key works as well as Bearer.
  EXPECT_EQ(call("GET", "/api/v1/runs/" + id, {}, {{"x-api-key", kKeyA}}).r.status, 200);
  const json not_found = detail("Job not found: " + id);
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/v1/runs/" + id}, {"GET", "/api/v1/runs/" + id + "?wait=1"},
           {"GET", "/api/v1/runs/" + id + "/result"},
           {"GET", "/api/v1/runs/" + id + "/result?wait=1"},
           {"POST", "/api/v1/runs/" + id + "/cancel"}, {"DELETE", "/api/v1/runs/" + id},
           {"GET", "/api/v1/runs/" + id + "/stream"}}) {
    Answer a = call_as(kKeyB, method, path);
    EXPECT_EQ(a.r.status, 404) << method << " " << path;
    EXPECT_EQ(a.body(), not_found) << method << " " << path;
  }
  EXPECT_EQ(call_as(kKeyB, "GET", "/api/v1/runs").body()["total"], 0);
  EXPECT_EQ(call_as(kKeyB, "GET", "/api/v1/runs?session_id=s").body()["total"], 0);
  EXPECT_EQ(call_as(kKeyB, "GET", "/stats").body()["total_jobs"], 0);
  EXPECT_EQ(call_as(kKeyA, "GET", "/api/v1/runs").body()["total"], 1);
  EXPECT_EQ(call_as(kKeyA, "GET", "/stats").body()["total_jobs"], 1);
  // B's attempts changed nothing: A's job ran and is still there.
  EXPECT_EQ(call_as(kKeyA, "GET", "/api/v1/runs/" + id + "/result?wait=10").r.status, 200);
  EXPECT_EQ(call_as(kKeyA, "DELETE", "/api/v1/runs/" + id).r.status, 204);
}

// A finished job polled by its owner (and so cached) is still a 404 for another key.
TEST_F(RouterAuthTest, CachedStatusStaysWithItsOwner) {
  Answer sa = call_as(kKeyA, "POST", "/api/v1/runs", R"({"prompt":"mine"})");
  ASSERT_EQ(sa.r.status, 202);
  const std::string id = sa.body()["job_id"];
  ASSERT_EQ(call_as(kKeyA, "GET", "/api/v1/runs/" + id + "?wait=10").body()["status"],
            "succeeded");
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(call_as(kKeyA, "GET", "/api/v1/runs/" + id).r.status, 200);
  Answer b = call_as(kKeyB, "GET", "/api/v1/runs/" + id);
  EXPECT_EQ(b.r.status, 404);
  EXPECT_EQ(b.body(), detail("Job not found: " + id));
  EXPECT_EQ(call("GET", "/api/v1/runs/" + id).r.status, 401);
}

TEST_F(RouterAuthTest, IdempotencyKeysArePerApiKey) {
  const std::string body = R"({"prompt":"same"})";
  auto submit_as = [&](const std::string& key) {
    Answer a = call("POST", "/api/v1/runs", body,
                    {{"authorization", "Bearer " + key}, {"idempotency-key", "k1"}});
    EXPECT_EQ(a.r.status, 202) << a.r.body;
    return a.body()["job_id"].get<std::string>();
  };
  const std::string a1 = submit_as(kKeyA);
  const std::string b1 = submit_as(kKeyB);
  EXPECT_NE(a1, b1);
  EXPECT_EQ(submit_as(kKeyA), a1);  // replays within one key
  EXPECT_EQ(submit_as(kKeyB), b1);
}

TEST_F(RouterAuthTest, CorsPreflightAndHeaders) {
  // Preflight from an allowed origin: 204, no key needed.
  Answer pre = call("OPTIONS", "/api/v1/runs", {},
                    {{"origin", "https://app.example.com"},
                     {"access-control-request-method", "POST"},
                     {"access-control-request-headers", "authorization, content-type"}});
  EXPECT_EQ(pre.r.status, 204);
  ASSERT_TRUE(pre.header("Access-Control-Allow-Origin"));
  EXPECT_EQ(*pre.header("Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_EQ(*pre.header("Access-Control-Allow-Methods"), "GET, POST, OPTIONS");
  EXPECT_TRUE(pre.header("Access-Control-Allow-Headers"));
  EXPECT_TRUE(pre.header("Access-Control-Max-Age"));
  EXPECT_EQ(*pre.header("Vary"), "Origin");
  // Answers to the allowed origin carry the headers, also a 401 and one sent later.
  Answer unauth = call("GET", "/api/v1/runs", {}, {{"origin", "https://app.example.com"}});
  EXPECT_EQ(unauth.r.status, 401);
  EXPECT_TRUE(unauth.header("Access-Control-Allow-Origin"));
  Answer sub = call("POST", "/api/v1/runs", R"({"prompt":"x"})",
                    {{"origin", "https://app.example.com"}, {"x-api-key", kKeyA}});
  EXPECT_EQ(sub.r.status, 202);
  EXPECT_TRUE(sub.header("Access-Control-Allow-Origin"));
  // Another origin: no CORS headers, and OPTIONS is an ordinary (unauthenticated) request.
  Answer other = call("GET", "/api/v1/runs", {},
                      {{"origin", "https://evil.example.com"}, {"x-api-key", kKeyA}});
  EXPECT_EQ(other.r.status, 200);
  EXPECT_FALSE(other.header("Access-Control-Allow-Origin"));
  EXPECT_FALSE(other.header("Vary"));
  Answer other_pre = call("OPTIONS", "/api/v1/runs", {},
                          {{"origin", "https://evil.example.com"},
                           {"access-control-request-method", "POST"}});
  EXPECT_EQ(other_pre.r.status, 401);
  EXPECT_FALSE(other_pre.header("Access-Control-Allow-Origin"));
}

TEST_F(RouterTest, NoCorsHeadersWhenOff) {
  Answer a = call("GET", "/api/v1/runs", {}, {{"origin", "https://app.example.com"}});
  EXPECT_EQ(a.r.status, 200);
  EXPECT_FALSE(a.header("Access-Control-Allow-Origin"));
  Answer pre = call("OPTIONS", "/api/v1/runs", {},
                    {{"origin", "https://app.example.com"},
                     {"access-control-request-method", "POST"}});
  EXPECT_EQ(pre.r.status, 405);
}

// The dashboard: its files need no key, even when keys are on (they hold no data).
TEST_F(RouterAuthTest, DashboardNeedsNoKeyAndHealthSaysKeysAreNeeded) {
  EXPECT_EQ(get("/health").body()["auth_required"], true);
  EXPECT_EQ(get("/").r.status, 302);
  Answer page = get("/ui/");
  EXPECT_EQ(page.r.status, 200);
  EXPECT_EQ(page.r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(get("/stats").r.status, 401);  // the data still needs one
}

TEST_F(RouterTest, HealthSaysNoKeyIsNeeded) {
  EXPECT_EQ(get("/health").body()["auth_required"], false);
}

TEST_F(RouterTest, RootAndUiRedirectToTheDashboard) {
  for (const char* p : {"/", "/ui"}) {
    Answer a = get(p);
    EXPECT_EQ(a.r.status, 302) << p;
    ASSERT_NE(a.header("Location"), nullptr) << p;
    EXPECT_EQ(*a.header("Location"), "/ui/") << p;
    EXPECT_EQ(a.r.body, "") << p;
  }
  EXPECT_EQ(call("POST", "/ui/").r.status, 405);
}

TEST_F(RouterTest, DashboardFilesCarryCspAndAnETag) {
  Answer page = get("/ui/");
  ASSERT_EQ(page.r.status, 200);
  EXPECT_NE(page.r.body.find("<!doctype html>"), std::string::npos);
  EXPECT_EQ(get("/ui/index.html").r.body, page.r.body);
  ASSERT_NE(page.header("Content-Security-Policy"), nullptr);
  EXPECT_EQ(page.header("Content-Security-Policy")->rfind("default-src 'self'", 0), 0u);
  EXPECT_EQ(*page.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(*page.header("Cache-Control"), "no-cache");
  const std::string* etag = page.header("ETag");
  ASSERT_NE(etag, nullptr);
  EXPECT_EQ(etag->front(), '"');
  // Unchanged: 304 without a body. Another tag: the file again.
  Answer same = call("GET", "/ui/", {}, {{"if-none-match", *etag}});
  EXPECT_EQ(same.r.status, 304);
  EXPECT_EQ(same.r.body, "");
  EXPECT_EQ(*same.header("ETag"), *etag);
  EXPECT_EQ(call("GET", "/ui/", {}, {{"if-none-match", "\"other\""}}).r.status, 200);
  for (const char* p : {"/ui/nope.js", "/ui/..%2fCMakeLists.txt", "/ui/%2e%2e", "/ui/a/b"}) {
    Answer a = get(p);
    EXPECT_EQ(a.r.status, 404) << p;
    EXPECT_EQ(a.body(), detail("Not Found")) << p;
  }
}

class RouterHostCheckTest : public RouterTest {
 protected:
  void SetUp() override {
    api::ApiOptions o;
    o.host_check.enabled = true;
    o.host_check.allowed = {"jobs.internal", "Runq.Example.COM"};
    start(2, o);
  }
  Answer from_host(const std::string& host, const std::string& target = "/health") {
    return call("GET", target, {}, {{"host", host}});
  }
};

TEST_F(RouterHostCheckTest, ForeignHostsGet421) {
  for (const char* host : {"evil.example", "evil.example:8005", "127.0.0.1.evil.example",
                           "localhost.evil.example", "192.168.1.5:8005", "[2001:db8::1]:8005",
                           "jobs.internal.evil.example", "", "0.0.0.0:8005"}) {
    for (const char* target : {"/health", "/ui/", "/", "/api/v1/runs"}) {
      Answer a = from_host(host, target);
      EXPECT_EQ(a.r.status, 421) << host << " " << target;
      EXPECT_EQ(a.body(), detail("Misdirected Request")) << host;
    }
  }
}

TEST_F(RouterHostCheckTest, LoopbackAndAllowedHostsPass) {
  for (const char* host : {"127.0.0.1:8005", "127.0.0.1", "127.1.2.3:80", "localhost:8005",
                           "LOCALHOST", "localhost.", "app.localhost:8005", "[::1]:8005",
                           "[::1]", "jobs.internal", "jobs.internal:443",
                           "runq.example.com:8005"})
    EXPECT_EQ(from_host(host).r.status, 200) << host;
  // HTTP/1.0 clients may send no Host; browsers always do.
  EXPECT_EQ(get("/health").r.status, 200);
}

TEST_F(RouterTest, TheHostCheckIsOffUnlessTurnedOn) {
  EXPECT_EQ(call("GET", "/health", {}, {{"host", "evil.example"}}).r.status, 200);
}

TEST_F(RouterHostCheckTest, StarAllowsAnyHost) {
  api::ApiOptions o;
  o.host_check.enabled = true;
  o.host_check.allowed = {"*"};
  start(2, o);
  EXPECT_EQ(from_host("evil.example").r.status, 200);
}

// A page on another site may POST to localhost without a preflight; the browser says so.
TEST_F(RouterTest, CrossSiteWritesFromBrowsersGet403) {
  const std::string body = R"({"prompt":"x"})";
  const http::Header json_type{"content-type", "application/json"};
  for (const auto& headers : std::vector<std::vector<http::Header>>{
           {json_type, {"sec-fetch-site", "cross-site"}},
           {json_type, {"sec-fetch-site", "same-site"}},
           {json_type, {"origin", "https://evil.example"}, {"host", "127.0.0.1:8005"}},
           {json_type, {"origin", "null"}, {"host", "127.0.0.1:8005"}},
           {json_type, {"origin", "http://127.0.0.1:9999"}, {"host", "127.0.0.1:8005"}}}) {
    Answer a = call("POST", "/api/v1/runs", body, headers);
    EXPECT_EQ(a.r.status, 403) << a.r.body;
    EXPECT_EQ(call("POST", "/api/v1/runs/run_0123456789ab/cancel", {}, headers).r.status, 403);
    EXPECT_EQ(call("DELETE", "/api/v1/runs/run_0123456789ab", {}, headers).r.status, 403);
  }
  EXPECT_EQ(get("/api/v1/runs").body()["total"], 0);  // none of them was taken
  // The dashboard's own requests, and clients that are no browser, pass.
  for (const auto& headers : std::vector<std::vector<http::Header>>{
           {json_type, {"sec-fetch-site", "same-origin"}},
           {json_type, {"sec-fetch-site", "none"}},
           {json_type, {"origin", "http://127.0.0.1:8005"}, {"host", "127.0.0.1:8005"}},
           {json_type}}) {
    EXPECT_EQ(call("POST", "/api/v1/runs", body, headers).r.status, 202);
  }
  // Reads are never refused: a page cannot read the answer without CORS anyway.
  EXPECT_EQ(call("GET", "/api/v1/runs", {}, {{"sec-fetch-site", "cross-site"}}).r.status, 200);
}

TEST_F(RouterAuthTest, CorsOriginsMayWriteCrossSite) {
  Answer a = call("POST", "/api/v1/runs", R"({"prompt":"x"})",
                  {{"content-type", "application/json"}, {"authorization", "Bearer " + kKeyA},
                   {"origin", "https://app.example.com"}, {"sec-fetch-site", "cross-site"}});
  EXPECT_EQ(a.r.status, 202) << a.r.body;
}
