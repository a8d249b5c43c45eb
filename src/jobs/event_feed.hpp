#pragma once
// Private to jobs/: with several nodes on one store, the events of the jobs this node
// runs go to the store, so that a stream or a ?wait= on any node sees them (and a stream
// resumes after a restart). A thread of its own writes them in batches (one write for
// whatever gathered while the previous one ran), so a job's worker never waits for it.
#include "runq/jobs/event_log.hpp"
#include "runq/jobs/store.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace runq::jobs {

class EventFeed {
 public:
  explicit EventFeed(Store& store);
  ~EventFeed();  // stop()
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;

  // Publishes the events of `log` (those in it already, then each as it comes) as attempt
  // `attempt` of job `id`, until it closes or unfollow(id).
  void follow(const std::string& id, int attempt, const std::shared_ptr<EventLog>& log);
  void unfollow(const std::string& id);
  // Tells the other nodes that `id` has news without an event of this node (a queued job
  // was cancelled, a job deleted).
  void touch(const std::string& id);
  // Writes what it holds (trying for a few seconds at most), then stops the thread.
  void stop();

 private:
  struct Followed {
    int attempt = 0;
    std::weak_ptr<EventLog> log;
    int handle = 0;
    std::int64_t sent = 0;  // the last event id handed to the thread
  };
  void collect(const std::string& id);  // a followed log got an event
  void run();

  Store& store_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Followed> followed_;
  std::vector<Store::PublishedEvent> events_;  // not written yet
  std::vector<std::string> changed_;
  bool stopping_ = false;
  std::thread thread_;  // last
};

}  // namespace runq::jobs
