// The route table as the access log and the metrics see it: what a path matches, where
// its job id is, and the labels (byte for byte what dashboards and alerts query).
#include "runq/api/router.hpp"

#include <gtest/gtest.h>

#include <string>

using runq::api::match_route;
using runq::api::metrics_route;
using runq::api::route_template;

namespace {

std::string label(std::string_view path) { return std::string(route_template(match_route(path))); }

}  // namespace

TEST(Routes, EveryTemplate) {
  EXPECT_EQ(label("/health"), "/health");
  EXPECT_EQ(label("/stats"), "/stats");
  EXPECT_EQ(label("/metrics"), "/metrics");
  EXPECT_EQ(label("/openapi.json"), "/openapi.json");
  EXPECT_EQ(label("/api/v1/runs"), "/api/v1/runs");
  EXPECT_EQ(label("/api/v1/runs/run_0123456789ab"), "/api/v1/runs/{job_id}");
  EXPECT_EQ(label("/api/v1/runs/run_0123456789ab/result"), "/api/v1/runs/{job_id}/result");
  EXPECT_EQ(label("/api/v1/runs/run_0123456789ab/cancel"), "/api/v1/runs/{job_id}/cancel");
  EXPECT_EQ(label("/api/v1/runs/run_0123456789ab/stream"), "/api/v1/runs/{job_id}/stream");
}

TEST(Routes, TheJobIdIsOneNonEmptySegment) {
  const std::string path = "/api/v1/runs/x%20y/result";
  const auto m = match_route(path);
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id(path), "x%20y");  // raw: the router decodes it
  EXPECT_EQ(match_route("/api/v1/runs").id("/api/v1/runs"), "");
  EXPECT_EQ(match_route("/api/v1/runs/r").id("/api/v1/runs/r"), "r");
  for (const char* other : {"", "/api/v1/runs/", "/api/v1/runs//result", "/api/v1/runsX",
                            "/api/v1/runs/a/b", "/api/v1/runs/a/b/result", "/api/v1/runs/a/",
                            "/api/v1/runs/a/result/", "/health/", "/HEALTH", "/api/v1/run",
                            "/api/v1/runs/a/resultx", "/nowhere/run_0123456789ab"})
    EXPECT_FALSE(match_route(other).found()) << other;
  EXPECT_EQ(label("/nowhere"), "other");
}

TEST(Routes, MetricsSlotsAreDistinctAndLabelled) {
  const char* paths[] = {"/health", "/stats", "/metrics", "/openapi.json", "/api/v1/runs",
                         "/api/v1/runs/r", "/api/v1/runs/r/result", "/api/v1/runs/r/cancel",
                         "/api/v1/runs/r/stream", "/", "/ui", "/ui/", "/ui/app.js",
                         "/nowhere"};
  std::size_t slot = 0;
  for (const char* p : paths) {
    const auto m = match_route(p);
    const auto r = metrics_route(m);
    EXPECT_EQ(r.slot, slot++) << p;
    EXPECT_EQ(std::string(r.label), std::string(route_template(m))) << p;
  }
}
