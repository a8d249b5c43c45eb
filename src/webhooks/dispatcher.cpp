// Webhook delivery: one loop thread finds due deliveries in the store and hands them to
// a small pool of delivery threads; every attempt is recorded in the store, so what is
// pending survives a crash or stop and goes out after the next start.
#include "runq/webhooks/dispatcher.hpp"
#include "runq/util/json_text.hpp"

#include "runq/http/outbound.hpp"
#include "runq/util/time.hpp"
#include "runq/webhooks/signature.hpp"
#include "runq/webhooks/url_policy.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace runq::webhooks {

namespace {

constexpr std::int64_t kPollUs = 1'000'000;  // look at the store at least this often
constexpr auto kStopGrace = std::chrono::milliseconds(5000);  // in-flight POSTs at stop
constexpr char kUserAgent[] = "runq-webhooks/0.1";

// {"job_id","status","result","error","completed_at","duration_seconds"}
std::string delivery_body(const jobs::Job& job) {
  nlohmann::ordered_json b;
  b["job_id"] = job.id;
  b["status"] = std::string(jobs::to_string(job.status));
  if (job.status == jobs::JobStatus::succeeded && job.result)
    b["result"] = *job.result;
  else
    b["result"] = nullptr;
  b["error"] = job.error ? nlohmann::ordered_json(*job.error) : nlohmann::ordered_json();
  b["completed_at"] = job.completed_at_us
                          ? nlohmann::ordered_json(util::rfc3339(*job.completed_at_us))
                          : nlohmann::ordered_json();
  if (job.started_at_us && job.completed_at_us)
    b["duration_seconds"] =
        static_cast<double>(*job.completed_at_us - *job.started_at_us) / 1e6;
  else
    b["duration_seconds"] = nullptr;
  return util::json_text(b);
}

}  // namespace

struct Dispatcher::Impl {
  Impl(jobs::Store& s, DispatcherOptions o) : store(s), opt(std::move(o)) {
    if (opt.threads < 1) opt.threads = 1;
    if (opt.max_attempts < 1) opt.max_attempts = 1;
  }

  jobs::Store& store;
  DispatcherOptions opt;
  std::string key;  // HMAC key; unused when opt.secret is empty

  std::mutex mu;
  std::condition_variable loop_cv;  // loop: changed || stopping
  std::condition_variable work_cv;  // workers: queue not empty || stopping
  std::condition_variable idle_cv;  // stop(): busy == 0
  std::condition_variable stop_cv;  // stopping (pauses after errors)
  bool started = false;
  bool stopping = false;
  bool aborting = false;  // stop's grace is over: cancel calls, start none
  bool changed = false;   // a job ended or a delivery finished: look at the store again
  std::deque<jobs::WebhookDelivery> queue;
  std::unordered_set<std::string> in_flight;  // queued here or being delivered
  // Deliveries that ended while the loop was reading the store: that read may predate
  // their record and still show them due, so the loop skips them this once.
  std::unordered_set<std::string> ended_during_read;
  std::unordered_map<std::string, std::shared_ptr<http::OutboundCall>> calls;
  int busy = 0;  // workers inside deliver()
  std::mt19937_64 rng{std::random_device{}()};

  std::thread loop_thread;
  std::vector<std::thread> workers;

  void loop();
  void work();
  void deliver(const jobs::WebhookDelivery& d);
  std::chrono::milliseconds backoff(int attempts_before);
};

std::chrono::milliseconds Dispatcher::Impl::backoff(int attempts_before) {
  // base · 2^attempts, ±20% jitter (so retries of many jobs do not move in lockstep,
  // and each gap is still longer than the one before), capped at max_delay.
  const double exp = std::pow(2.0, std::min(attempts_before, 40));
  double ms = static_cast<double>(opt.base_delay.count()) * exp;
  double jitter;
  {
    std::lock_guard lock(mu);
    jitter = std::uniform_real_distribution<double>(0.8, 1.2)(rng);
  }
  ms = std::min(ms * jitter, static_cast<double>(opt.max_delay.count()));
  return std::chrono::milliseconds(static_cast<long long>(std::max(ms, 0.0)));
}

void Dispatcher::Impl::loop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    changed = false;
    // Ask for as many as there are workers: those in flight come back too (they are
    // still due in the store) and are skipped below. A store shared by several nodes
    // hands out each due delivery once (it is claimed for a while): ask for the free
    // workers only, or the rest would wait out the claim.
    const int free_workers = opt.threads - static_cast<int>(in_flight.size());
    const bool free = free_workers > 0;
    const int ask = store.shared() ? free_workers : opt.threads;
    ended_during_read.clear();
    lock.unlock();
    // While the store cannot be written (disk full, read-only) a delivery could not be
    // recorded and would be POSTed again and again: start none until it can. (They stay
    // due in the store; the poll below looks again.)
    const bool writable = !store.write_fault();

    std::vector<jobs::WebhookDelivery> due;
    std::optional<std::int64_t> next;
    bool store_ok = true;
    try {
      if (free && writable) due = store.due_webhooks(util::now_us(), ask);
      next = store.next_webhook_at();
    } catch (const std::exception& e) {
      spdlog::error("webhooks: cannot read pending deliveries: {}", e.what());
      store_ok = false;
    }

    lock.lock();
    int slots = opt.threads - static_cast<int>(in_flight.size());
    for (auto& d : due) {
      if (slots <= 0 || stopping) break;
      if (in_flight.count(d.job.id)) continue;  // still being delivered
      if (ended_during_read.count(d.job.id)) continue;  // stale: just recorded
      in_flight.insert(d.job.id);
      queue.push_back(std::move(d));
      --slots;
      work_cv.notify_one();
    }
    if (stopping) break;

    // Sleep until the next delivery is due, something changes, or the poll interval
    // is over (the poll also picks up deliveries written by another process).
    std::int64_t wait_us = kPollUs;
    if (store_ok && next) {
      const std::int64_t until = *next - util::now_us();
      if (until > 0) wait_us = std::min(wait_us, until);
      // Due now but not taken (no free worker, or in flight): wait for a change.
    }
    loop_cv.wait_for(lock, std::chrono::microseconds(wait_us),
                     [&] { return stopping || changed; });
  }
}

void Dispatcher::Impl::work() {
  std::unique_lock lock(mu);
  for (;;) {
    work_cv.wait(lock, [&] { return stopping || !queue.empty(); });
    if (stopping) return;  // what is still queued stays due in the store
    jobs::WebhookDelivery d = std::move(queue.front());
    queue.pop_front();
    ++busy;
    lock.unlock();
    bool broke = false;
    try {
      deliver(d);
    } catch (const std::exception& e) {  // e.g. the store could not record the attempt
      spdlog::error("webhooks: delivery for job {} failed unexpectedly: {}", d.job.id,
                    e.what());
      broke = true;
    }
    lock.lock();
    // It is still due in the store: pause before it can be picked up again, so that a
    // broken store does not turn into a tight loop of POSTs.
    if (broke) stop_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
    --busy;
    in_flight.erase(d.job.id);
    ended_during_read.insert(d.job.id);
    changed = true;
    loop_cv.notify_all();
    idle_cv.notify_all();
  }
}

void Dispatcher::Impl::deliver(const jobs::WebhookDelivery& d) {
  const jobs::Job& job = d.job;
  const int attempt = d.attempts + 1;
  std::optional<std::string> failure;
  bool refused = false;  // by the URL policy: the same URL would be refused again

  if (!job.webhook_url || job.webhook_url->empty()) {
    failure = "no webhook_url";
  } else if (!opt.allow_private) {
    // The policy may have changed since submit (a restart without the flag).
    failure = refuse_url(*job.webhook_url, false);
    refused = failure.has_value();
  }

  if (!failure) {
    const std::string body = delivery_body(job);
    const std::string msg_id = "msg_" + job.id;
    const long long ts = util::now_us() / 1'000'000;
    http::OutboundRequest req;
    req.method = "POST";
    req.url = *job.webhook_url;
    req.body = body;
    req.headers.push_back({"Content-Type", "application/json"});
    req.headers.push_back({"webhook-id", msg_id});
    req.headers.push_back({"webhook-timestamp", std::to_string(ts)});
    if (!opt.secret.empty())
      req.headers.push_back({"webhook-signature", sign(key, msg_id, ts, body)});
    req.headers.push_back({"User-Agent", kUserAgent});
    req.connect_timeout = std::min(opt.request_timeout, std::chrono::milliseconds(10'000));
    req.idle_timeout = opt.request_timeout;
    req.total_timeout = opt.request_timeout;
    req.max_response_bytes = 1u << 20;
    // A host name is resolved here, on this thread, and each of its addresses is
    // checked before the connection goes to it (submit only checked the URL's text).
    if (!opt.allow_private)
      req.check_address = [](const sockaddr& a) { return refuse_address(a); };

    std::shared_ptr<http::OutboundCall> call;
    try {
      call = std::make_shared<http::OutboundCall>(std::move(req));
    } catch (const std::exception& e) {  // a URL the client cannot use
      failure = e.what();
    }
    bool cancelled = false;
    if (call) {
      {
        std::lock_guard lock(mu);
        if (aborting) return;  // stopping: not attempted, still due in the store
        calls[job.id] = call;
      }
      try {
        // The answer's body is not needed: discard it as it arrives.
        const http::OutboundResponse resp = call->perform([](std::string_view) {});
        if (resp.status < 200 || resp.status > 299)
          failure = "receiver answered HTTP " + std::to_string(resp.status);
      } catch (const http::OutboundCancelled&) {
        cancelled = true;
      } catch (const http::OutboundRefused& e) {
        failure = e.what();
        refused = true;
      } catch (const std::exception& e) {
        failure = e.what();
      }
      std::lock_guard lock(mu);
      calls.erase(job.id);
    }
    // Cut off by stop(): not recorded, so it is delivered (again) after the next start;
    // the receiver can tell by the unchanged webhook-id.
    if (cancelled) return;
  }

  if (!failure) {
    store.webhook_attempted(job.id, true, std::nullopt);
    spdlog::debug("webhooks: delivered for job {} (attempt {})", job.id, attempt);
  } else if (refused) {
    // Not retried: the policy would refuse it again (a name that resolves to a private
    // address is as likely an attack, DNS rebinding, as a passing misconfiguration).
    store.webhook_attempted(job.id, false, std::nullopt);
    spdlog::warn("webhooks: not delivering for job {} (attempt {}), refused by the URL "
                 "policy, not retried: {}",
                 job.id, attempt, *failure);
  } else if (attempt >= opt.max_attempts) {
    store.webhook_attempted(job.id, false, std::nullopt);
    spdlog::warn("webhooks: giving up on job {} after {} attempts: {}", job.id, attempt,
                 *failure);
  } else {
    const auto delay = backoff(d.attempts);
    store.webhook_attempted(job.id, false, util::now_us() + delay.count() * 1000);
    spdlog::info("webhooks: delivery for job {} failed (attempt {}/{}): {}; next try in "
                 "{:.1f}s",
                 job.id, attempt, opt.max_attempts, *failure,
                 static_cast<double>(delay.count()) / 1000.0);
  }
}

Dispatcher::Dispatcher(jobs::Store& store, DispatcherOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->started) return;
  if (!impl_->opt.secret.empty())
    impl_->key = signing_key(impl_->opt.secret);  // throws on a bad whsec_ secret
  impl_->started = true;
  impl_->loop_thread = std::thread([this] { impl_->loop(); });
  for (int i = 0; i < impl_->opt.threads; ++i)
    impl_->workers.emplace_back([this] { impl_->work(); });
}

void Dispatcher::stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->started || impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->loop_cv.notify_all();
  impl_->work_cv.notify_all();
  impl_->stop_cv.notify_all();
  if (impl_->loop_thread.joinable()) impl_->loop_thread.join();
  {
    // Deliveries in flight may finish (each is bounded by request_timeout anyway)...
    std::unique_lock lock(impl_->mu);
    const auto grace = std::min(impl_->opt.request_timeout, kStopGrace);
    impl_->idle_cv.wait_for(lock, grace, [&] { return impl_->busy == 0; });
    // ...then the rest are cut off; they stay due in the store.
    impl_->aborting = true;
    if (impl_->busy > 0)
      spdlog::info("webhooks: {} delivery(ies) still in flight at stop are cut off; they "
                   "go out after the next start",
                   impl_->busy);
    for (auto& [id, call] : impl_->calls) call->cancel();
  }
  for (auto& t : impl_->workers)
    if (t.joinable()) t.join();
}

void Dispatcher::notify() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->changed = true;
  }
  impl_->loop_cv.notify_all();
}

}  // namespace runq::webhooks
