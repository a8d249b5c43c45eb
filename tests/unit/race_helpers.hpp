#pragma once
// Helpers of the race tests: a one-shot gate for thread handshakes, an agent whose
// behaviour each job picks in its config, a real store, and submitting.
#include "runq/jobs/agent.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/store/sqlite_store.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace runq::racetest {

using namespace std::chrono_literals;

// Opens once; wait() returns true when it is open (false after `within`: a safety net).
class Gate {
 public:
  void open() {
    {
      std::lock_guard l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds within = 5000ms) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, within, [&] { return open_; });
  }
  bool is_open() {
    std::lock_guard l(mu_);
    return open_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// config "block": true      -> opens `started`, returns ok once `release` opens
// config "stop_with": "timed_out" | "shutdown"
//                           -> stops its own token that way (the timer or a stop
//                              firing just as the work ends), then returns ok
// config "wait_cancel": true -> returns ok once its token is stopped
// config "fail_first": true  -> the first attempt fails, later ones succeed
// otherwise                 -> ok, the prompt as result
class ScriptedAgent : public jobs::Agent {
 public:
  std::string id() const override { return "scripted"; }
  jobs::AgentResult run(const jobs::Job& job, jobs::CancelToken& token,
                          jobs::ProgressSink&) override {
    runs.fetch_add(1);
    const auto& c = job.config;
    if (c.value("block", false)) {
      started.open();
      release.wait();
    }
    if (c.contains("stop_with"))
      token.cancel(c["stop_with"] == "timed_out" ? jobs::StopReason::timed_out
                                                 : jobs::StopReason::shutdown);
    if (c.value("wait_cancel", false)) {
      started.open();
      while (!token.stopped()) token.sleep_for(std::chrono::seconds(5));
    }
    if (c.value("fail_first", false) && job.attempts == 1)
      return {false, {}, "first attempt fails", {}, nullptr};
    return {true, c.value("block", false) || c.contains("stop_with") ? "done" : job.prompt,
            {}, {}, nullptr};
  }

  std::atomic<int> runs{0};
  Gate started;
  Gate release;
};

// A fresh in-memory SQLite store (the real one).
inline std::unique_ptr<jobs::Store> memory_store() { return store::open_sqlite_store(":memory:"); }

// Polls `cond` (a state, not a timing) every millisecond, up to `within`.
template <class F>
bool eventually(F cond, std::chrono::milliseconds within = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Submits a job with `config` (what ScriptedAgent does with it) and waits for its outcome.
inline jobs::SubmitOutcome submit(jobs::JobService& s, nlohmann::json config,
                                  int max_retries = 0) {
  jobs::Job j;
  j.prompt = "p";
  j.config = std::move(config);
  j.max_retries = max_retries;
  std::promise<jobs::SubmitOutcome> p;
  auto f = p.get_future();
  s.submit(std::move(j), [&p](jobs::SubmitOutcome o) { p.set_value(std::move(o)); });
  return f.get();
}

}  // namespace runq::racetest
