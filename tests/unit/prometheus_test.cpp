// Tests of the Prometheus text rendering: counters, histograms (cumulative buckets, +Inf,
// _sum/_count), label and HELP escaping, value formatting; and runq's metric set.
#include "runq/metrics/prometheus.hpp"
#include "runq/metrics/runq_metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

using namespace runq::metrics;

namespace {

// Routes as the API's route table hands them to the metrics (slot, label).
constexpr RouteLabel kRuns{4, "/api/v1/runs"};
constexpr RouteLabel kRun{5, "/api/v1/runs/{job_id}"};
constexpr RouteLabel kOther{9, "other"};
constexpr double kBounds[] = {0.1, 1, 10};
}

TEST(Prometheus, CounterCounts) {
  Counter c;
  c.inc();
  c.inc(4);
  EXPECT_EQ(c.value(), 5u);
}

TEST(Prometheus, HistogramBucketsAreCumulativeWithInf) {
  Histogram h(kBounds);
  for (double v : {0.05, 0.1, 0.5, 5.0, 50.0, 100.0}) h.observe(v);
  auto s = h.snapshot();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 2u);  // le 0.1: 0.05 and 0.1 (le is "less or equal")
  EXPECT_EQ(s.cumulative[1], 3u);  // le 1
  EXPECT_EQ(s.cumulative[2], 4u);  // le 10
  EXPECT_EQ(s.cumulative[3], 6u);  // +Inf
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 0.05 + 0.1 + 0.5 + 5.0 + 50.0 + 100.0);

}

TEST(Prometheus, HistogramTextExact) {
  Histogram h(kBounds);
  h.observe(0.5);
  h.observe(20);
  TextWriter w;
  w.histogram("x_seconds", {{"op", "a"}}, h.snapshot());
  EXPECT_EQ(w.text(),
            "x_seconds_bucket{op=\"a\",le=\"0.1\"} 0\n"
            "x_seconds_bucket{op=\"a\",le=\"1\"} 1\n"
            "x_seconds_bucket{op=\"a\",le=\"10\"} 1\n"
            "x_seconds_bucket{op=\"a\",le=\"+Inf\"} 2\n"
            "x_seconds_sum{op=\"a\"} 20.5\n"
            "x_seconds_count{op=\"a\"} 2\n");
  TextWriter bare;
  bare.histogram("y", {}, Histogram(kBounds).snapshot());
  EXPECT_NE(bare.text().find("y_bucket{le=\"+Inf\"} 0\n"), std::string::npos);
  EXPECT_NE(bare.text().find("y_sum 0\ny_count 0\n"), std::string::npos);
}

TEST(Prometheus, ConcurrentObservationsAllCounted) {
  Histogram h(kBounds);
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        h.observe(0.5);
        c.inc();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.snapshot().count, 40000u);
  EXPECT_DOUBLE_EQ(h.snapshot().sum, 20000.0);
  EXPECT_EQ(c.value(), 40000u);
}

TEST(Prometheus, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_help("back\\slash\nnew \"quotes\" stay"), "back\\\\slash\\nnew \"quotes\" stay");
  TextWriter w;
  w.family("m_total", "counter", "Line one\nline two");
  w.sample("m_total", {{"route", "/a\"b"}, {"code", "200"}}, 3);
  EXPECT_EQ(w.text(),
            "# HELP m_total Line one\\nline two\n"
            "# TYPE m_total counter\n"
            "m_total{route=\"/a\\\"b\",code=\"200\"} 3\n");
}

TEST(Prometheus, ValuesFormatted) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(-1.5), "-1.5");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(RunqMetrics, RendersEveryFamilyAndBoundedRoutes) {
  RunqMetrics m;
  m.job_submitted(3);
  m.job_started(true, 0.2);
  m.job_finished(JobOutcome::succeeded, 1.5);
  m.job_finished(JobOutcome::cancelled, -1);  // never ran: counted, no duration
  m.http_request(kRun, "GET", 200, 0.002);
  m.http_request(kOther, "PUT", 404, 0.001);
  m.http_rejected(413);
  m.store_op(StoreOp::claim, 0.001);
  RunqMetrics::Gauges g;
  g.queued = 7;
  g.running = 2;
  g.open_connections = 4;
  const std::string text = m.render(g);
  for (const char* want : {
           "runq_jobs_submitted_total 3\n",
           "runq_jobs_finished_total{status=\"succeeded\"} 1\n",
           "runq_jobs_finished_total{status=\"failed\"} 0\n",
           "runq_jobs_finished_total{status=\"cancelled\"} 1\n",
           "runq_jobs_queued 7\n",
           "runq_jobs_running 2\n",
           "runq_job_attempts_total 1\n",
           "runq_job_duration_seconds_count{status=\"succeeded\"} 1\n",
           "runq_job_duration_seconds_count{status=\"cancelled\"} 0\n",
           "runq_job_queue_wait_seconds_count 1\n",
           "runq_http_requests_total{method=\"GET\",route=\"/api/v1/runs/{job_id}\",code=\"200\"} 1\n",
           "runq_http_requests_total{method=\"other\",route=\"other\",code=\"404\"} 1\n",
           "runq_http_request_duration_seconds_count{route=\"/api/v1/runs/{job_id}\"} 1\n",
           "runq_http_rejected_total{code=\"413\"} 1\n",
           "runq_http_open_connections 4\n",
           "runq_store_operation_duration_seconds_count{op=\"claim\"} 1\n",
           "runq_store_operation_duration_seconds_count{op=\"insert_batch\"} 0\n",
           "runq_store_writable 1\n",
       })
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  // Every sample line belongs to a family announced with # TYPE before it.
  std::string family;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.starts_with("# TYPE ")) {
      family = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (line.starts_with("#")) continue;
    EXPECT_TRUE(line.starts_with(family)) << line << " outside " << family;
  }
  // A code runq never answers with is "other", not a new series per value.
  m.http_request(kRuns, "GET", 299, 0.001);
  EXPECT_NE(m.render(g).find("route=\"/api/v1/runs\",code=\"other\"} 1"), std::string::npos);
}
