#include "runq/agents/echo_agent.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

using namespace runq;
using namespace std::chrono_literals;

namespace {
struct RecordingSink : jobs::ProgressSink {
  struct Step {
    double pct;
    std::optional<std::string> step;
    int done;
    std::optional<int> total;
  };
  std::vector<Step> steps;
  void progress(double pct, std::optional<std::string> step, int done,
                std::optional<int> total) override {
    steps.push_back({pct, std::move(step), done, total});
  }
  void output(std::string_view) override {}
};

jobs::Job job_with(nlohmann::json config, std::string prompt = "hello") {
  jobs::Job j;
  j.prompt = std::move(prompt);
  j.config = std::move(config);
  return j;
}
}  // namespace

TEST(EchoAgent, ResultIsThePromptExactly) {
  agents::EchoAgent agent;
  jobs::CancelToken token;
  RecordingSink sink;
  std::string prompt = "  multi\nline ✓ \"quoted\"\t";
  auto r = agent.run(job_with(nlohmann::json::object(), prompt), token, sink);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.output, prompt);
  EXPECT_TRUE(sink.steps.empty());
  EXPECT_EQ(agent.id(), "echo");
}

TEST(EchoAgent, FailWithFailsWithThatError) {
  agents::EchoAgent agent;
  jobs::CancelToken token;
  RecordingSink sink;
  auto r = agent.run(job_with({{"fail_with", "model exploded: ☹"}}), token, sink);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "model exploded: ☹");
}

TEST(EchoAgent, StepsReportProgressAcrossTheSleep) {
  agents::EchoAgent agent;
  jobs::CancelToken token;
  RecordingSink sink;
  auto start = std::chrono::steady_clock::now();
  auto r = agent.run(job_with({{"sleep_seconds", 0.2}, {"steps", 4}}), token, sink);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.ok);
  EXPECT_GE(took, 190ms);
  ASSERT_EQ(sink.steps.size(), 4u);
  EXPECT_DOUBLE_EQ(sink.steps[0].pct, 25.0);
  EXPECT_DOUBLE_EQ(sink.steps[3].pct, 100.0);
  EXPECT_EQ(sink.steps[1].step, "Step 2/4");
  EXPECT_EQ(sink.steps[3].done, 4);
  EXPECT_EQ(sink.steps[3].total, 4);
}

TEST(EchoAgent, CancelInterruptsTheSleepAtOnce) {
  agents::EchoAgent agent;
  jobs::CancelToken token;
  RecordingSink sink;
  auto start = std::chrono::steady_clock::now();
  auto fut = std::async(std::launch::async, [&] {
    return agent.run(job_with({{"sleep_seconds", 60}}), token, sink);
  });
  std::this_thread::sleep_for(30ms);
  token.cancel(jobs::StopReason::cancelled);
  auto r = fut.get();
  EXPECT_FALSE(r.ok);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(EchoAgent, IgnoresConfigValuesOfTheWrongType) {
  agents::EchoAgent agent;
  jobs::CancelToken token;
  RecordingSink sink;
  auto r = agent.run(job_with({{"sleep_seconds", "long"}, {"steps", "x"}, {"fail_with", 3}}),
                     token, sink);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.output, "hello");
}
