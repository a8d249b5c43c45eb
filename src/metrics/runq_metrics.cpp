#include "runq/metrics/runq_metrics.hpp"

#include <string>

namespace runq::metrics {

namespace {

// Bucket bounds (seconds unless said otherwise).
constexpr double kHttpBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,   0.5,   1,      2.5,   5,    10,    30,    60};
constexpr double kJobBounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,   2.5,  5,    10,
                                 30,   60,   120, 300,  600, 1800, 3600, 21600, 86400};
constexpr double kStoreBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                   0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};
constexpr double kBatchBounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

constexpr std::string_view kMethodNames[] = {"GET", "POST", "DELETE", "OPTIONS", "other"};
// Every code runq's HTTP layer and API answer with; anything else counts as "other".
constexpr int kCodeValues[] = {100, 200, 201, 202, 204, 206, 301, 302, 304, 400,
                               401, 403, 404, 405, 408, 409, 411, 413, 414, 415,
                               422, 429, 431, 500, 501, 502, 503};
constexpr std::string_view kOutcomeNames[] = {"succeeded", "failed", "cancelled"};
constexpr std::string_view kStoreOpNames[] = {"insert_batch", "claim", "finish"};

}  // namespace

RunqMetrics::RunqMetrics() : queue_wait_(kJobBounds), batch_size_(kBatchBounds) {
  static_assert(std::size(kCodeValues) + 1 == kCodes);
  for (std::size_t i = 0; i < kOutcomes; ++i) duration_.emplace_back(kJobBounds);
  for (std::size_t i = 0; i < kStoreOps; ++i) store_.emplace_back(kStoreBounds);
  for (std::size_t i = 0; i < kRoutes; ++i) latency_.emplace_back(kHttpBounds);
}

void RunqMetrics::job_started(bool first_attempt, double queue_wait_s) {
  attempts_.inc();
  if (first_attempt) queue_wait_.observe(queue_wait_s < 0 ? 0 : queue_wait_s);
}

void RunqMetrics::job_finished(JobOutcome outcome, double run_s) {
  const auto i = static_cast<std::size_t>(outcome);
  finished_[i].inc();
  if (run_s >= 0) duration_[i].observe(run_s);
}

std::size_t RunqMetrics::method_index(std::string_view m) {
  for (std::size_t i = 0; i + 1 < kMethods; ++i)
    if (kMethodNames[i] == m) return i;
  return kMethods - 1;
}

std::size_t RunqMetrics::code_index(int status) {
  for (std::size_t i = 0; i < std::size(kCodeValues); ++i)
    if (kCodeValues[i] == status) return i;
  return kCodes - 1;
}

void RunqMetrics::http_request(RouteLabel route, std::string_view method, int status,
                               double seconds) {
  const std::size_t r = route.slot < kRoutes ? route.slot : kRoutes - 1;
  // Written once per slot in practice; the load keeps the cache line shared after that.
  if (route_labels_[r].load(std::memory_order_relaxed) != route.label)
    route_labels_[r].store(route.label, std::memory_order_release);
  requests_[(r * kMethods + method_index(method)) * kCodes + code_index(status)].inc();
  latency_[r].observe(seconds);
}

void RunqMetrics::http_rejected(int status) { rejected_[code_index(status)].inc(); }

std::string RunqMetrics::render(const Gauges& g) const {
  auto code_label = [](std::size_t c) {
    return c < std::size(kCodeValues) ? std::to_string(kCodeValues[c]) : std::string("other");
  };
  TextWriter w;
  w.family("runq_jobs_submitted_total", "counter", "Jobs accepted (202) and stored, replays not counted.");
  w.sample("runq_jobs_submitted_total", {}, static_cast<double>(submitted_.value()));

  w.family("runq_jobs_finished_total", "counter", "Jobs that reached a terminal state, by status.");
  for (std::size_t i = 0; i < kOutcomes; ++i)
    w.sample("runq_jobs_finished_total", {{"status", kOutcomeNames[i]}},
             static_cast<double>(finished_[i].value()));

  w.family("runq_jobs_queued", "gauge", "Jobs waiting in the queue.");
  w.sample("runq_jobs_queued", {}, static_cast<double>(g.queued));
  w.family("runq_jobs_running", "gauge", "Jobs running on a worker of this process.");
  w.sample("runq_jobs_running", {}, static_cast<double>(g.running));
  w.family("runq_workers", "gauge", "Worker threads (--max-concurrent).");
  w.sample("runq_workers", {}, static_cast<double>(g.max_concurrent));

  w.family("runq_job_attempts_total", "counter", "Job runs started (first runs and retries).");
  w.sample("runq_job_attempts_total", {}, static_cast<double>(attempts_.value()));
  w.family("runq_job_retries_total", "counter", "Failed attempts put back in the queue for a retry.");
  w.sample("runq_job_retries_total", {}, static_cast<double>(retries_.value()));

  w.family("runq_job_duration_seconds", "histogram",
           "Running time of finished jobs (completed_at - started_at), by status.");
  for (std::size_t i = 0; i < kOutcomes; ++i)
    w.histogram("runq_job_duration_seconds", {{"status", kOutcomeNames[i]}},
                duration_[i].snapshot());
  w.family("runq_job_queue_wait_seconds", "histogram",
           "Time from submit to the first start (started_at - created_at).");
  w.histogram("runq_job_queue_wait_seconds", {}, queue_wait_.snapshot());

  w.family("runq_http_requests_total", "counter",
           "HTTP requests answered by the API, by method, route template and status code.");
  for (std::size_t r = 0; r < kRoutes; ++r) {
    const char* route = route_labels_[r].load(std::memory_order_acquire);
    if (!route) continue;  // never requested
    for (std::size_t m = 0; m < kMethods; ++m)
      for (std::size_t c = 0; c < kCodes; ++c) {
        const auto n = requests_[(r * kMethods + m) * kCodes + c].value();
        if (n == 0) continue;
        const std::string code = code_label(c);
        w.sample("runq_http_requests_total",
                 {{"method", kMethodNames[m]}, {"route", route}, {"code", code}},
                 static_cast<double>(n));
      }
  }
  w.family("runq_http_request_duration_seconds", "histogram",
           "Time from a whole request read to its answer (SSE: to the start of the stream), "
           "by route template.");
  for (std::size_t r = 0; r < kRoutes; ++r) {
    const char* route = route_labels_[r].load(std::memory_order_acquire);
    if (!route) continue;
    auto snap = latency_[r].snapshot();
    if (snap.count == 0) continue;
    w.histogram("runq_http_request_duration_seconds", {{"route", route}}, snap);
  }
  w.family("runq_http_rejected_total", "counter",
           "Requests the HTTP layer answered by itself (400 malformed, 413 body too large, "
           "431 headers too large, 503 too many connections), by status code.");
  for (std::size_t c = 0; c < kCodes; ++c) {
    const auto n = rejected_[c].value();
    if (n == 0) continue;
    const std::string code = code_label(c);
    w.sample("runq_http_rejected_total", {{"code", code}}, static_cast<double>(n));
  }
  w.family("runq_http_open_connections", "gauge", "Open client connections.");
  w.sample("runq_http_open_connections", {}, static_cast<double>(g.open_connections));

  w.family("runq_store_operation_duration_seconds", "histogram",
           "Durable store writes: a group-commit batch (insert_batch), claiming the next job "
           "(claim), recording a job's end (finish).");
  for (std::size_t i = 0; i < kStoreOps; ++i)
    w.histogram("runq_store_operation_duration_seconds", {{"op", kStoreOpNames[i]}},
                store_[i].snapshot());
  w.family("runq_store_commit_batch_jobs", "histogram", "Submits stored per group-commit transaction.");
  w.histogram("runq_store_commit_batch_jobs", {}, batch_size_.snapshot());
  w.family("runq_store_writable", "gauge", "1 while the job store can be written, 0 during a storage fault.");
  w.sample("runq_store_writable", {}, g.store_writable ? 1 : 0);
  return w.text();
}

RunqMetrics& runq() {
  // Never destroyed: threads that outlive main (detached workers, a fuzzer's service)
  // may still count while static destructors run.
  static RunqMetrics* instance = new RunqMetrics;
  return *instance;
}

}  // namespace runq::metrics
