#pragma once
#include "runq/jobs/store.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace runq::webhooks {

struct DispatcherOptions {
  // --webhook-secret: "whsec_<base64>" means the key is the decoded bytes, anything
  // else is the key as it is. Empty: deliveries are sent unsigned.
  std::string secret;
  int max_attempts = 12;                          // then the delivery is given up
  std::chrono::milliseconds base_delay{1000};     // backoff before the 2nd attempt
  std::chrono::milliseconds max_delay{600'000};   // backoff cap (10 min)
  std::chrono::milliseconds request_timeout{10'000};  // one POST, connect to last byte
  int threads = 2;                                // deliveries in flight at once
  bool allow_private = false;  // deliver to loopback/private/link-local addresses
};

// Delivers the webhooks of finished jobs: POSTs {"job_id","status","result","error",
// "completed_at","duration_seconds"} signed the Standard Webhooks way, retries non-2xx
// and failures with exponential backoff, and records every attempt in the store — so
// deliveries pending at a crash or stop go out after the next start. Never runs on a
// job worker's thread.
class Dispatcher {
 public:
  Dispatcher(jobs::Store& store, DispatcherOptions options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void start();
  void stop();  // waits for deliveries in flight (bounded by request_timeout)
  // A job has ended: look for due deliveries now rather than at the next poll.
  void notify();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runq::webhooks
