// api::Router::handle with any method, target, headers and body, against a real
// JobService (SQLite in memory, the echo agent, two workers), as the server calls it.
//
// Input, HTTP-like so seeds are readable: "METHOD TARGET\n", then "name: value\n" header
// lines, then an empty line, then the body (the rest, any bytes). "{id}" in the target
// stands for the last job this process submitted, so status/result/cancel/delete/stream
// reach real jobs too.
//
// Checked: exactly one reply, within a bound; a status code that is not 500 (the store is
// in memory: a 500 here is a request the router did not expect); JSON bodies that parse;
// streams that can be polled and closed.
#include "runq/agents/echo_agent.hpp"
#include "runq/api/router.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/store/sqlite_store.hpp"

#include "fuzz_check.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

using namespace runq;
using namespace std::chrono_literals;

namespace {

// The longest a reply may take: ?wait= is capped at 1 s below, a submit waits for one
// group commit.
constexpr auto kReplyDeadline = 20s;

struct Env {
  std::unique_ptr<jobs::Store> store;
  agents::EchoAgent agent;
  std::unique_ptr<jobs::JobService> service;
  std::unique_ptr<api::Router> router;
  std::mutex mu;
  std::string last_id = "run_0000000000000000";
};

// Never destroyed; its workers are stopped at exit (LLVMFuzzerInitialize).
Env& env() {
  static Env* e = [] {
    auto* e = new Env;
    e->store = store::open_sqlite_store(":memory:");
    jobs::ServiceOptions so;
    so.max_concurrent = 2;
    so.default_timeout_s = 2;  // an echo job asking to sleep long is cut short
    so.max_timeout_s = 5;
    so.retry_base_delay = 10ms;
    so.retry_max_delay = 100ms;
    e->service = std::make_unique<jobs::JobService>(*e->store, e->agent, so);
    e->service->start();
    api::ApiOptions ao;
    ao.max_wait_s = 1;
    ao.allow_private_webhooks = true;  // no DNS look-ups of fuzzed host names
    e->router = std::make_unique<api::Router>(*e->service, ao);
    return e;
  }();
  return *e;
}

// One request's reply: who called it, how often, and whether it was dropped uncalled.
struct Probe {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  bool dropped = false;
  std::optional<http::Response> response;
};

// Shared by every copy of the Reply: its destructor runs when the last copy is gone.
struct ReplyGuard {
  explicit ReplyGuard(std::shared_ptr<Probe> p) : probe(std::move(p)) {}
  ReplyGuard(const ReplyGuard&) = delete;
  ReplyGuard& operator=(const ReplyGuard&) = delete;
  std::shared_ptr<Probe> probe;
  ~ReplyGuard() {
    std::lock_guard lock(probe->mu);
    if (probe->calls == 0) probe->dropped = true;
    probe->cv.notify_all();
  }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

http::Request make_request(std::string_view in) {
  http::Request req;
  auto eol = in.find('\n');
  std::string_view line = in.substr(0, eol);
  in = eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);
  auto sp = line.find(' ');
  req.method = std::string(line.substr(0, sp));
  std::string target(sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1));
  if (auto at = target.find("{id}"); at != std::string::npos) {
    std::lock_guard lock(env().mu);
    target.replace(at, 4, env().last_id);
  }
  req.target = target;
  auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  while (!in.empty()) {
    eol = in.find('\n');
    line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);
    if (line.empty()) break;
    auto colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    req.headers.push_back({lower(name), std::string(value)});
  }
  req.body = std::string(in);
  req.remote = "fuzz";
  return req;
}

void drain_stream(http::EventStream& stream) {
  stream.set_notifier([] {});
  for (int i = 0; i < 64; ++i)
    if (!stream.poll()) break;
  (void)stream.finished();
  (void)stream.heartbeat();
  stream.close();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  env();
  // libFuzzer ends with exit(): stop the workers before static destructors (spdlog's
  // registry among them) run under a job that is still finishing.
  std::atexit([] { env().service->stop(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Env& e = env();
  http::Request req = make_request(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string method = req.method, path = req.path;

  auto probe = std::make_shared<Probe>();
  {
    auto guard = std::make_shared<ReplyGuard>(probe);
    e.router->handle(std::move(req), [probe, guard](http::Response r) {
      std::lock_guard lock(probe->mu);
      if (++probe->calls == 1) probe->response = std::move(r);
      probe->cv.notify_all();
    });
  }
  std::unique_lock lock(probe->mu);
  const bool answered = probe->cv.wait_for(lock, kReplyDeadline, [&] {
    return probe->calls > 0 || probe->dropped;
  });
  FUZZ_CHECK(answered, "no reply to %s %s within the deadline", method.c_str(), path.c_str());
  FUZZ_CHECK(!probe->dropped || probe->calls > 0, "reply dropped uncalled: %s %s",
             method.c_str(), path.c_str());
  FUZZ_CHECK(probe->calls == 1, "reply called %d times", probe->calls);
  http::Response r = std::move(*probe->response);
  lock.unlock();

  FUZZ_CHECK(r.status >= 200 && r.status <= 599, "status %d", r.status);
  FUZZ_CHECK(r.status != 500, "500 for %s %s: %s", method.c_str(), path.c_str(), r.body.c_str());
  if (r.stream) {
    drain_stream(*r.stream);
  } else if (r.content_type == "application/json" && !r.body.empty()) {
    FUZZ_CHECK(nlohmann::json::accept(r.body), "invalid JSON body: %s", r.body.c_str());
  }
  if (r.status == 202 && method == "POST") {
    auto body = nlohmann::json::parse(r.body);
    std::lock_guard id_lock(e.mu);
    e.last_id = body.at("job_id").get<std::string>();
  }
  return 0;
}
