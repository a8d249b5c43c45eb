#include "runq/jobs/event_log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>

using runq::jobs::EventLog;

TEST(EventLog, IdsCountUpFromOne) {
  EventLog log;
  log.append("status", R"({"status":"running"})");
  log.append("progress", R"({"percentage":50.0})");
  bool closed = true;
  auto all = log.since(0, &closed);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, 1);
  EXPECT_EQ(all[1].id, 2);
  EXPECT_EQ(all[1].type, "progress");
  EXPECT_FALSE(closed);
}

TEST(EventLog, SinceSkipsWhatTheClientHas) {
  EventLog log;
  for (int i = 0; i < 5; ++i) log.append("progress", "{}");
  auto rest = log.since(3, nullptr);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].id, 4);
  EXPECT_TRUE(log.since(5, nullptr).empty());
  EXPECT_TRUE(log.since(99, nullptr).empty());
  EXPECT_EQ(log.since(-7, nullptr).size(), 5u);
}

TEST(EventLog, NothingFollowsTheTerminalEvent) {
  EventLog log;
  log.append("status", "{}");
  log.close_with("result", R"({"result":"x"})");
  log.append("progress", "{}");
  log.close_with("error", "{}");
  bool closed = false;
  auto all = log.since(0, &closed);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all.back().type, "result");
  EXPECT_TRUE(closed);
}

TEST(EventLog, ListenersHearAppendsUntilRemoved) {
  EventLog log;
  std::atomic<int> heard{0};
  int h = log.listen([&] { heard++; });
  log.append("a", "{}");
  log.close_with("b", "{}");
  EXPECT_EQ(heard.load(), 2);
  log.unlisten(h);
  EventLog other;
  int h2 = other.listen([&] { heard++; });
  other.unlisten(h2);
  other.append("a", "{}");
  EXPECT_EQ(heard.load(), 2);
}

TEST(EventLog, JsonRoundTripKeepsIdsAndCloses) {
  EventLog log;
  log.append("status", R"({"status":"running"})");
  log.append("progress", R"({"percentage":10.0})");
  auto json = log.to_json_closed_with("result", R"({"result":"hi"})");
  auto parsed = nlohmann::json::parse(json);
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[2]["id"], 3);
  EXPECT_FALSE(log.closed()) << "to_json_closed_with only describes";

  auto replay = EventLog::closed_from_json(json);
  bool closed = false;
  auto events = replay->since(1, &closed);
  EXPECT_TRUE(closed);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, "result");
  EXPECT_EQ(events[1].data, R"({"result":"hi"})");
  EXPECT_EQ(nlohmann::json::parse(log.to_json()).size(), 2u);
}

TEST(EventLog, GarbageJsonGivesAnEmptyClosedLog) {
  auto log = EventLog::closed_from_json("not json");
  EXPECT_TRUE(log->closed());
  EXPECT_TRUE(log->since(0, nullptr).empty());
}
