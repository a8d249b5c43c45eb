#include "event_feed.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace runq::jobs {

namespace {
// A batch the store refused (the database unreachable) is tried again this often, this
// many times (about 10 s), then dropped: the jobs' ends still store their whole history.
constexpr auto kRetryPause = std::chrono::milliseconds(200);
constexpr int kMaxTries = 50;
constexpr int kTriesWhenStopping = 3;
// A write waits this long for more to gather, and for short jobs to end: the events of a
// job that has ended are not written at all (its end stored its whole history), only its
// news. Well within the 100 ms in which other nodes' streams must see an event.
constexpr auto kGather = std::chrono::milliseconds(20);
}  // namespace

EventFeed::EventFeed(Store& store) : store_(store) {
  thread_ = std::thread([this] { run(); });
}

EventFeed::~EventFeed() { stop(); }

void EventFeed::follow(const std::string& id, int attempt, const std::shared_ptr<EventLog>& log) {
  std::lock_guard lock(mu_);
  Followed& f = followed_[id];
  if (auto old = f.log.lock()) old->unlisten(f.handle);
  // A log seen before (an earlier attempt here, or one copied from another node) is sent
  // whole again: the store keeps the first copy of each event.
  f = Followed{attempt, log, 0, 0};
  f.handle = log->listen([this, id] {
    std::lock_guard lock(mu_);
    collect(id);
  });
  collect(id);
}

void EventFeed::unfollow(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = followed_.find(id);
  if (it == followed_.end()) return;
  if (auto log = it->second.log.lock()) log->unlisten(it->second.handle);
  followed_.erase(it);
}

void EventFeed::touch(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    changed_.push_back(id);
  }
  cv_.notify_one();
}

// With mu_ held: serializes the listeners of one log, so each event is taken once, in order.
void EventFeed::collect(const std::string& id) {
  auto it = followed_.find(id);
  if (it == followed_.end()) return;
  Followed& f = it->second;
  auto log = f.log.lock();
  if (!log) {
    followed_.erase(it);
    return;
  }
  bool closed = false;
  std::vector<Event> fresh = log->since(f.sent, &closed);
  for (auto& e : fresh) {
    f.sent = e.id;
    events_.push_back({id, f.attempt, std::move(e)});
  }
  if (!fresh.empty() || closed) changed_.push_back(id);
  if (closed) {
    // Ended, and stored whole (the end is written before the log closes): the events not
    // written yet are not needed any more.
    std::erase_if(events_, [&](const Store::PublishedEvent& e) { return e.job_id == id; });
    log->unlisten(f.handle);
    followed_.erase(it);
  }
  cv_.notify_one();
}

void EventFeed::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, f] : followed_)
      if (auto log = f.log.lock()) log->unlisten(f.handle);
    followed_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EventFeed::run() {
  std::unique_lock lock(mu_);
  int failures = 0;
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !events_.empty() || !changed_.empty(); });
    if (events_.empty() && changed_.empty()) return;  // stopping, and all written
    cv_.wait_for(lock, kGather, [this] { return stopping_; });
    std::vector<Store::PublishedEvent> events;
    std::vector<std::string> changed;
    events.swap(events_);
    changed.swap(changed_);
    lock.unlock();
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    bool written = true;
    try {
      store_.publish(events, changed);
    } catch (const std::exception& e) {
      written = false;
      if (failures == 0) spdlog::warn("cannot publish job events to the other nodes: {}", e.what());
    }
    lock.lock();
    if (written) {
      failures = 0;
      continue;
    }
    if (++failures >= (stopping_ ? kTriesWhenStopping : kMaxTries)) {
      spdlog::warn("dropped {} job events for the other nodes after {} tries (the jobs' "
                   "ends still store their whole history)",
                   events.size(), failures);
      failures = 0;
      continue;
    }
    // Put back in front of what came meanwhile, and pause.
    events.insert(events.end(), std::make_move_iterator(events_.begin()),
                  std::make_move_iterator(events_.end()));
    events_.swap(events);
    changed.insert(changed.end(), changed_.begin(), changed_.end());
    changed_.swap(changed);
    cv_.wait_for(lock, kRetryPause, [this] { return stopping_; });
  }
}

}  // namespace runq::jobs
