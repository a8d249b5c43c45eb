// api::status_text / result_json / accepted_json / health / stats / errors: exact field
// sets, timestamps with Z, floats with a decimal point, retry_after per state.
#include "runq/api/json_render.hpp"
#include "runq/api/sse_stream.hpp"
#include "runq/util/time.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

using namespace runq;
using api::Json;
using jobs::JobStatus;

namespace {

constexpr std::int64_t kCreated = 1'795'896'658'786'415;  // 2026-11-28T20:10:58.786415Z

jobs::Job sample(JobStatus st) {
  jobs::Job j;
  j.id = "run_3f9c2a7b1d4e";
  j.status = st;
  j.created_at_us = kCreated;
  j.prompt = "secret prompt";
  j.timeout_s = 3600;
  if (st != JobStatus::queued) {
    j.started_at_us = kCreated + 1'000'000;
    j.agent_id = "echo";
    j.attempts = 1;
  }
  if (jobs::is_terminal(st)) j.completed_at_us = kCreated + 46'230'000;
  return j;
}

std::set<std::string> keys(const Json& j) {
  std::set<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.insert(it.key());
  return out;
}

// The status object as a tree, from the text the server sends.
Json status_json(const jobs::Job& job, const api::RetryAfter& retry) {
  return Json::parse(api::status_text(job, retry));
}

// What status_text must equal byte for byte: the document built as a JSON tree and
// dumped (how the server rendered it before status_text).
std::string reference_status(const jobs::Job& job, const api::RetryAfter& retry) {
  auto opt = [](const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); };
  auto ts = [](const std::optional<std::int64_t>& us) {
    return us ? Json(util::rfc3339(*us)) : Json(nullptr);
  };
  Json progress = Json::object();
  double pct = job.status == JobStatus::succeeded ? 100.0 : job.progress.percentage;
  // (+ 0.0: a negative zero shows as 0.0, not -0.0 as the tree once wrote it)
  progress["percentage"] = (std::isfinite(pct) ? std::clamp(pct, 0.0, 100.0) : 0.0) + 0.0;
  progress["current_step"] = opt(job.progress.current_step);
  progress["steps_completed"] = job.progress.steps_completed;
  progress["steps_total"] = job.progress.steps_total ? Json(*job.progress.steps_total) : Json(nullptr);
  Json j = Json::object();
  j["job_id"] = job.id;
  j["status"] = jobs::to_string(job.status);
  j["progress"] = std::move(progress);
  j["created_at"] = util::rfc3339(job.created_at_us);
  j["started_at"] = ts(job.started_at_us);
  j["completed_at"] = ts(job.completed_at_us);
  j["agent_id"] = opt(job.agent_id);
  j["run_id"] = opt(job.run_id);
  j["session_id"] = opt(job.session_id);
  j["error"] = opt(job.error);
  j["retry_after"] = job.status == JobStatus::queued    ? Json(retry.queued_s)
                     : job.status == JobStatus::running ? Json(retry.running_s)
                                                        : Json(nullptr);
  j["priority"] = job.priority;
  j["metadata"] = job.metadata.is_object() ? Json(job.metadata) : Json::object();
  j["attempts"] = job.attempts;
  j["timeout"] = job.timeout_s;
  j["expires_at"] = jobs::is_terminal(job.status) && job.completed_at_us && retry.retention_s > 0
                        ? Json(util::rfc3339(*job.completed_at_us + retry.retention_s * 1'000'000))
                        : Json(nullptr);
  return api::dump(j);
}

const std::regex kTs(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");

}  // namespace

TEST(JsonRender, StatusObjectFieldsInOrder) {
  Json j = status_json(sample(JobStatus::queued), {2, 5});
  std::vector<std::string> order;
  for (auto it = j.begin(); it != j.end(); ++it) order.push_back(it.key());
  EXPECT_EQ(order, (std::vector<std::string>{
                       "job_id", "status", "progress", "created_at", "started_at",
                       "completed_at", "agent_id", "run_id", "session_id", "error",
                       "retry_after", "priority", "metadata", "attempts", "timeout",
                       "expires_at"}));
  EXPECT_EQ(keys(j["progress"]),
            (std::set<std::string>{"percentage", "current_step", "steps_completed", "steps_total"}));
  EXPECT_FALSE(j.contains("prompt"));
  EXPECT_FALSE(j.contains("result"));
}

TEST(JsonRender, QueuedExactText) {
  EXPECT_EQ(api::status_text(sample(JobStatus::queued), {2, 5}),
            R"({"job_id":"run_3f9c2a7b1d4e","status":"queued",)"
            R"("progress":{"percentage":0.0,"current_step":null,"steps_completed":0,"steps_total":null},)"
            R"("created_at":"2026-11-28T20:10:58.786415Z","started_at":null,"completed_at":null,)"
            R"("agent_id":null,"run_id":null,"session_id":null,"error":null,"retry_after":2,)"
            R"("priority":0,"metadata":{},"attempts":0,"timeout":3600,"expires_at":null})");
}

// expires_at = completed_at + retention, for finished jobs; null otherwise and when
// retention is 0 (kept forever).
TEST(JsonRender, ExpiresAtFromRetention) {
  api::RetryAfter keep_a_day{2, 5, 86400};
  EXPECT_TRUE(status_json(sample(JobStatus::queued), keep_a_day)["expires_at"].is_null());
  EXPECT_TRUE(status_json(sample(JobStatus::running), keep_a_day)["expires_at"].is_null());
  for (auto st : {JobStatus::succeeded, JobStatus::failed, JobStatus::cancelled}) {
    // completed 2026-11-28T20:11:45.016415Z; a day later:
    EXPECT_EQ(status_json(sample(st), keep_a_day)["expires_at"],
              "2026-11-29T20:11:45.016415Z");
    EXPECT_TRUE(status_json(sample(st), {2, 5, 0})["expires_at"].is_null());
  }
}

TEST(JsonRender, RetryAfterPerState) {
  api::RetryAfter r{3, 7};
  EXPECT_EQ(status_json(sample(JobStatus::queued), r)["retry_after"], 3);
  EXPECT_EQ(status_json(sample(JobStatus::running), r)["retry_after"], 7);
  for (auto st : {JobStatus::succeeded, JobStatus::failed, JobStatus::cancelled})
    EXPECT_TRUE(status_json(sample(st), r)["retry_after"].is_null());
}

TEST(JsonRender, TimestampsHaveZAndMicroseconds) {
  Json j = status_json(sample(JobStatus::succeeded), {});
  for (const char* k : {"created_at", "started_at", "completed_at"}) {
    ASSERT_TRUE(j[k].is_string()) << k;
    EXPECT_TRUE(std::regex_match(j[k].get<std::string>(), kTs)) << j[k];
  }
  EXPECT_EQ(j["created_at"], "2026-11-28T20:10:58.786415Z");
  EXPECT_EQ(j["started_at"], "2026-11-28T20:10:59.786415Z");
}

TEST(JsonRender, PercentageIsAlwaysAFloatAnd100WhenSucceeded) {
  jobs::Job j = sample(JobStatus::succeeded);
  j.progress.percentage = 40.0;
  std::string text = api::dump(status_json(j, {}));
  EXPECT_NE(text.find(R"("percentage":100.0,)"), std::string::npos) << text;

  j.status = JobStatus::failed;
  text = api::dump(status_json(j, {}));
  EXPECT_NE(text.find(R"("percentage":40.0,)"), std::string::npos) << text;

  j.status = JobStatus::running;
  j.progress = {30.0, "Running agent", 1, 4};
  Json s = status_json(j, {});
  EXPECT_EQ(api::dump(s["progress"]),
            R"({"percentage":30.0,"current_step":"Running agent","steps_completed":1,"steps_total":4})");
  j.progress.percentage = 33.25;
  EXPECT_EQ(api::dump(status_json(j, {})["progress"]["percentage"]), "33.25");
}

TEST(JsonRender, ExtensionsAndOptionalFields) {
  jobs::Job j = sample(JobStatus::failed);
  j.error = "boom";
  j.session_id = "s-1";
  j.run_id = "r-9";
  j.priority = -7;
  j.metadata = {{"team", "qa"}};
  j.attempts = 3;
  j.timeout_s = 30;
  Json s = status_json(j, {});
  EXPECT_EQ(s["error"], "boom");
  EXPECT_EQ(s["session_id"], "s-1");
  EXPECT_EQ(s["run_id"], "r-9");
  EXPECT_EQ(s["agent_id"], "echo");
  EXPECT_EQ(s["priority"], -7);
  EXPECT_EQ(api::dump(s["metadata"]), R"({"team":"qa"})");
  EXPECT_EQ(s["attempts"], 3);
  EXPECT_EQ(s["timeout"], 30);
}

// status_text writes the text directly; it must be exactly the dumped tree, whatever
// the strings hold (escapes, UTF-8, invalid UTF-8, control bytes) and the numbers are.
TEST(JsonRender, StatusTextIsExactlyTheDumpedTree) {
  const std::vector<std::optional<std::string>> strings = {
      std::nullopt, "", "plain", "quote\"back\\slash", "tab\tnew\nline\x01\x1f\x7f",
      "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", "bad \xff\xfe utf8 \xc3", std::string("nul\0in", 6)};
  const std::vector<double> percentages = {0.0, -0.0, 100.0, 12.5, 33.333333333333336, 1e-7,
                                           99.99999, -5.0, 250.0, std::nan(""), 1e300};
  int n = 0;
  for (auto st : {JobStatus::queued, JobStatus::running, JobStatus::succeeded,
                  JobStatus::failed, JobStatus::cancelled}) {
    for (std::size_t i = 0; i < strings.size(); ++i) {
      jobs::Job j = sample(st);
      j.error = strings[i];
      j.session_id = strings[(i + 1) % strings.size()];
      j.run_id = strings[(i + 2) % strings.size()];
      j.agent_id = strings[(i + 3) % strings.size()];
      j.progress.current_step = strings[(i + 4) % strings.size()];
      j.id = strings[(i + 5) % strings.size()].value_or("run_x");
      j.progress.percentage = percentages[i % percentages.size()];
      j.progress.steps_total = i % 2 ? std::optional<int>(static_cast<int>(i)) : std::nullopt;
      j.progress.steps_completed = static_cast<int>(i) - 3;
      j.priority = static_cast<int>(i) * 1000 - 4000;
      j.attempts = static_cast<int>(i);
      j.timeout_s = 86400 * static_cast<int>(i + 1);
      if (i % 3 == 1) j.metadata = {{"k", *strings[2]}, {"a\"b", "\n"}, {"z", "caf\xc3\xa9"}};
      if (i % 3 == 2) j.metadata = nullptr;
      for (const api::RetryAfter& r : {api::RetryAfter{2, 5, 0}, api::RetryAfter{1, 9, 604800}}) {
        EXPECT_EQ(api::status_text(j, r), reference_status(j, r)) << "case " << n;
        ++n;
      }
    }
  }
  for (double p : percentages) {
    jobs::Job j = sample(JobStatus::running);
    j.progress.percentage = p;
    EXPECT_EQ(api::status_text(j, {}), reference_status(j, {})) << p;
  }
}

TEST(JsonRender, ResultObject) {
  jobs::Job j = sample(JobStatus::succeeded);
  j.result = "line\n\"two\" \xc3\xa9";
  Json r = api::result_json(j);
  std::vector<std::string> order;
  for (auto it = r.begin(); it != r.end(); ++it) order.push_back(it.key());
  EXPECT_EQ(order, (std::vector<std::string>{"job_id", "status", "result", "duration_seconds",
                                             "created_at", "started_at", "completed_at",
                                             "error", "metrics"}));
  EXPECT_TRUE(r["metrics"].is_null()) << "no metrics from the agent";
  j.metrics = {{"usage", {{"total_tokens", 12}}}};
  EXPECT_EQ(api::result_json(j)["metrics"]["usage"]["total_tokens"], 12);
  EXPECT_EQ(r["status"], "succeeded");
  EXPECT_EQ(r["result"], "line\n\"two\" \xc3\xa9");
  EXPECT_TRUE(r["error"].is_null());
  EXPECT_DOUBLE_EQ(r["duration_seconds"].get<double>(), 45.23);
  EXPECT_EQ(api::dump(r["duration_seconds"]), "45.23");
  EXPECT_EQ(r["completed_at"], "2026-11-28T20:11:45.016415Z");
}

TEST(JsonRender, DurationIsAFloatEvenWhenWhole) {
  jobs::Job j = sample(JobStatus::succeeded);
  j.completed_at_us = *j.started_at_us + 2'000'000;
  j.result = "x";
  EXPECT_EQ(api::dump(api::result_json(j)["duration_seconds"]), "2.0");
  j.completed_at_us = *j.started_at_us;
  EXPECT_EQ(api::dump(api::result_json(j)["duration_seconds"]), "0.0");
  j.started_at_us.reset();
  EXPECT_EQ(api::dump(api::result_json(j)["duration_seconds"]), "0.0");
}

TEST(JsonRender, Accepted) {
  Json a = api::accepted_json(sample(JobStatus::running), "http://127.0.0.1:8005");
  EXPECT_EQ(api::dump(a),
            R"({"job_id":"run_3f9c2a7b1d4e","status":"queued","created_at":"2026-11-28T20:10:58.786415Z",)"
            R"("poll_url":"http://127.0.0.1:8005/api/v1/runs/run_3f9c2a7b1d4e",)"
            R"("stream_url":"http://127.0.0.1:8005/api/v1/runs/run_3f9c2a7b1d4e/stream"})");
}

TEST(JsonRender, HealthAndStats) {
  jobs::HealthStats h;
  h.running_jobs = 2;
  h.queued_jobs = 5;
  h.max_concurrent = 10;
  h.default_timeout = 3600;
  h.shutdown = false;
  h.store_kind = "sqlite";
  EXPECT_EQ(api::dump(api::health_json(h)),
            R"({"status":"healthy","store":"sqlite","executor_stats":{"running_jobs":2,)"
            R"("queued_jobs":5,"max_concurrent":10,"default_timeout":3600,"shutdown":false}})");
  jobs::StatusCounts c{1, 2, 3, 4, 5};
  EXPECT_EQ(api::dump(api::stats_json(c, h)),
            R"({"total_jobs":15,"by_status":{"queued":1,"running":2,"succeeded":3,"failed":4,"cancelled":5},)"
            R"("executor":{"running_jobs":2,"queued_jobs":5,"max_concurrent":10,"default_timeout":3600,"shutdown":false}})");
}

TEST(JsonRender, HealthDegradedWhileTheStoreCannotBeWritten) {
  jobs::HealthStats h;
  h.max_concurrent = 10;
  h.default_timeout = 3600;
  h.store_kind = "sqlite";
  h.store_fault = jobs::StoreFault{jobs::FaultReason::disk_full,
                                    "sqlite: step failed: database or disk is full",
                                    1'764'460'800'000'000};  // 2025-11-30T00:00:00Z
  EXPECT_EQ(api::dump(api::health_json(h)),
            R"({"status":"degraded","store":"sqlite","executor_stats":{"running_jobs":0,)"
            R"("queued_jobs":0,"max_concurrent":10,"default_timeout":3600,"shutdown":false},)"
            R"("store_error":"Job store is not writable (disk full): sqlite: step failed: )"
            R"(database or disk is full",)"
            R"("store_error_since":"2025-11-30T00:00:00.000000Z"})");
}

TEST(JsonRender, HealthOfANodeWhoseDatabaseIsUnreachable) {
  jobs::HealthStats h;
  h.max_concurrent = 4;
  h.default_timeout = 3600;
  h.store_kind = "postgresql";
  h.node_name = "n1";
  EXPECT_EQ(api::dump(api::health_json(h)),
            R"({"status":"healthy","store":"postgresql","node":"n1","executor_stats":{)"
            R"("running_jobs":0,"queued_jobs":0,"max_concurrent":4,"default_timeout":3600,)"
            R"("shutdown":false}})");
  h.store_fault = jobs::StoreFault{jobs::FaultReason::unreachable, "connection refused",
                                    1'764'460'800'000'000};
  const auto j = api::health_json(h);
  EXPECT_EQ(j["status"], "unhealthy");
  EXPECT_EQ(j["store_error"], "Job store is not writable (database unreachable): connection refused");
}

TEST(JsonRender, ErrorBodies) {
  EXPECT_EQ(api::error_body("Job not found: run_x"), R"({"detail":"Job not found: run_x"})");
  // invalid UTF-8 never throws
  EXPECT_NO_THROW(api::error_body("Job not found: \xff"));
  EXPECT_EQ(api::error_body("Job not found: \xff"), "{\"detail\":\"Job not found: \xef\xbf\xbd\"}");
}

// ------------------------------------------------------------------ SSE formatting

TEST(SseFormat, Event) {
  EXPECT_EQ(api::format_sse({3, "progress", R"({"percentage":30.0,"step":"Running agent"})"}),
            "event: progress\nid: 3\ndata: {\"percentage\":30.0,\"step\":\"Running agent\"}\n\n");
  EXPECT_EQ(api::format_sse({1, "x", "a\nb\r\nc"}), "event: x\nid: 1\ndata: a\ndata: b\ndata: c\n\n");
}

TEST(SseFormat, Heartbeat) {
  EXPECT_EQ(api::format_heartbeat(kCreated),
            "event: heartbeat\ndata: {\"timestamp\":\"2026-11-28T20:10:58.786415Z\"}\n\n");
}

TEST(SseFormat, LastEventId) {
  std::string v;
  EXPECT_EQ(api::parse_last_event_id(nullptr), 0);
  for (auto [text, want] : std::vector<std::pair<std::string, std::int64_t>>{
           {"5", 5}, {" 12 ", 12}, {"0", 0}, {"-1", 0}, {"x", 0}, {"", 0}, {"1.5", 0},
           {"99999999999999999999999", 0}}) {
    v = text;
    EXPECT_EQ(api::parse_last_event_id(&v), want) << text;
  }
}

TEST(SseStream, ReplaysThenFinishes) {
  auto log = std::make_shared<jobs::EventLog>();
  log->append("status", R"({"status":"running","job_id":"run_1"})");
  log->append("progress", R"({"percentage":50.0,"step":"half"})");
  api::JobEventStream s(log, 0);
  int notified = 0;
  s.set_notifier([&] { ++notified; });
  EXPECT_FALSE(s.finished());
  auto first = s.poll();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first,
            "event: status\nid: 1\ndata: {\"status\":\"running\",\"job_id\":\"run_1\"}\n\n"
            "event: progress\nid: 2\ndata: {\"percentage\":50.0,\"step\":\"half\"}\n\n");
  EXPECT_FALSE(s.poll());
  EXPECT_FALSE(s.finished());
  log->close_with("result", R"({"result":"x"})");
  EXPECT_GE(notified, 1);
  auto last = s.poll();
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, "event: result\nid: 3\ndata: {\"result\":\"x\"}\n\n");
  EXPECT_TRUE(s.finished());
  EXPECT_FALSE(s.poll());
  s.close();
  int before = notified;
  log->append("late", "{}");  // closed log: ignored; and we no longer listen
  EXPECT_EQ(notified, before);
}

TEST(SseStream, ResumesAfterLastEventId) {
  auto log = std::make_shared<jobs::EventLog>();
  log->append("a", "{}");
  log->append("b", "{}");
  log->close_with("result", "{}");
  api::JobEventStream s(log, 2);
  auto out = s.poll();
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "event: result\nid: 3\ndata: {}\n\n");
  EXPECT_TRUE(s.finished());

  api::JobEventStream past(log, 3);
  EXPECT_TRUE(past.finished());
  EXPECT_FALSE(past.poll());
}

TEST(SseStream, ClosedEmptyLogFinishesAtOnce) {
  auto log = jobs::EventLog::closed_from_json("[]");
  api::JobEventStream s(log, 0);
  EXPECT_TRUE(s.finished());
  EXPECT_FALSE(s.poll());
}

TEST(SseStream, HeartbeatHasNoId) {
  auto log = std::make_shared<jobs::EventLog>();
  api::JobEventStream s(log, 0);
  std::string hb = s.heartbeat();
  EXPECT_TRUE(hb.starts_with("event: heartbeat\ndata: {\"timestamp\":\"")) << hb;
  EXPECT_TRUE(hb.ends_with("Z\"}\n\n")) << hb;
  EXPECT_EQ(hb.find("id:"), std::string::npos);
}

TEST(PromptPreview, ShortPromptsWhole_LongOnesCutAtACharacter) {
  EXPECT_EQ(api::prompt_preview(""), "");
  EXPECT_EQ(api::prompt_preview("hello"), "hello");
  const std::string exact(api::kPromptPreviewChars, 'a');
  EXPECT_EQ(api::prompt_preview(exact), exact);
  EXPECT_EQ(api::prompt_preview(exact + "b"), exact + "\u2026");
  // Characters, not bytes: 2- and 4-byte characters are never split.
  std::string accents;
  for (std::size_t i = 0; i < 150; ++i) accents += "\u00e9";
  EXPECT_EQ(api::prompt_preview(accents), accents.substr(0, 2 * api::kPromptPreviewChars) + "\u2026");
  std::string emoji = "x";
  for (int i = 0; i < 120; ++i) emoji += "\U0001F600";
  const std::string cut = api::prompt_preview(emoji);
  EXPECT_EQ(cut, emoji.substr(0, 1 + 4 * (api::kPromptPreviewChars - 1)) + "\u2026");
}

TEST(PromptPreview, OnlyListItemsCarryIt) {
  jobs::Job j = sample(JobStatus::queued);
  const api::RetryAfter r{2, 5};
  EXPECT_FALSE(Json::parse(api::status_text(j, r)).contains("prompt_preview"));
  EXPECT_EQ(Json::parse(api::status_text(j, r, true))["prompt_preview"], "secret prompt");
}
