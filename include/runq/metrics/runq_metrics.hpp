#pragma once
// runq's own metrics: one process-wide set, updated from the hot paths with relaxed
// atomics (no lock), rendered for GET /metrics. Gauges that are state elsewhere (queue
// depth, running jobs, open connections) are read at scrape time instead.
#include "runq/metrics/prometheus.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace runq::metrics {

// A route of the API as the metrics count it: a slot below kRoutes (one series per route,
// never one per path or job id) and the `route` label, a string literal such as
// "/api/v1/runs/{job_id}". The API's route table hands these out (api::metrics_route).
struct RouteLabel {
  std::size_t slot;
  const char* label;
};
inline constexpr std::size_t kRoutes = 16;

// How a job ended.
enum class JobOutcome { succeeded, failed, cancelled };
inline constexpr std::size_t kOutcomes = 3;

// The store operations whose latency is measured.
enum class StoreOp { insert_batch, claim, finish };
inline constexpr std::size_t kStoreOps = 3;

class RunqMetrics {
 public:
  RunqMetrics();

  // Jobs.
  void job_submitted(std::uint64_t n = 1) { submitted_.inc(n); }
  // A job was claimed for a run (an attempt); queue_wait_s only for its first start.
  void job_started(bool first_attempt, double queue_wait_s);
  void job_retried() { retries_.inc(); }
  // A job reached a terminal state; run_s: how long it ran (negative: it never ran).
  void job_finished(JobOutcome outcome, double run_s);

  // Store latency (seconds) and the size of a group-commit batch.
  void store_op(StoreOp op, double seconds) { store_[static_cast<std::size_t>(op)].observe(seconds); }
  void commit_batch(std::size_t jobs) { batch_size_.observe(static_cast<double>(jobs)); }

  // One answered HTTP request.
  void http_request(RouteLabel route, std::string_view method, int status, double seconds);
  // An answer the HTTP layer gave by itself (400, 413, 431; 503 over max connections).
  void http_rejected(int status);

  // Read at scrape time.
  struct Gauges {
    std::int64_t queued = 0;
    std::int64_t running = 0;
    std::int64_t max_concurrent = 0;
    std::int64_t open_connections = 0;
    bool store_writable = true;
  };
  std::string render(const Gauges& gauges) const;

  // For tests: the counters' current values.
  std::uint64_t submitted() const { return submitted_.value(); }
  std::uint64_t finished(JobOutcome o) const { return finished_[static_cast<std::size_t>(o)].value(); }

 private:
  static constexpr std::size_t kMethods = 5;  // GET, POST, DELETE, OPTIONS, other
  static constexpr std::size_t kCodes = 28;   // the codes runq answers with, then "other"
  static std::size_t method_index(std::string_view m);
  static std::size_t code_index(int status);

  Counter submitted_;
  std::array<Counter, kOutcomes> finished_;
  Counter attempts_;
  Counter retries_;
  std::deque<Histogram> duration_;  // per outcome
  Histogram queue_wait_;
  std::deque<Histogram> store_;     // per StoreOp
  Histogram batch_size_;
  std::array<Counter, kRoutes * kMethods * kCodes> requests_;
  std::deque<Histogram> latency_;   // per route slot
  // Each slot's label, set by its first request (a slot with no request is not rendered).
  std::array<std::atomic<const char*>, kRoutes> route_labels_{};
  std::array<Counter, kCodes> rejected_;
};

// The process's metrics.
RunqMetrics& runq();

}  // namespace runq::metrics
