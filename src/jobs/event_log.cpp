#include "runq/jobs/event_log.hpp"
#include "runq/util/json_text.hpp"

#include <nlohmann/json.hpp>

namespace runq::jobs {

void EventLog::append(std::string type, std::string data) {
  std::unique_lock lock(mu_);
  if (closed_) return;  // nothing follows the terminal event
  std::int64_t id = events_.empty() ? 1 : events_.back().id + 1;
  events_.push_back(Event{id, std::move(type), std::move(data)});
  notify_locked_copy(lock);
}

void EventLog::close_with(std::string type, std::string data) {
  std::unique_lock lock(mu_);
  if (closed_) return;
  std::int64_t id = events_.empty() ? 1 : events_.back().id + 1;
  events_.push_back(Event{id, std::move(type), std::move(data)});
  closed_ = true;
  notify_locked_copy(lock);
}

bool EventLog::append_copy(const Event& e) {
  std::unique_lock lock(mu_);
  if (closed_ || e.id != (events_.empty() ? 1 : events_.back().id + 1)) return false;
  events_.push_back(e);
  notify_locked_copy(lock);
  return true;
}

std::int64_t EventLog::last_id() const {
  std::lock_guard lock(mu_);
  return events_.empty() ? 0 : events_.back().id;
}

// Listeners run outside the lock so they may call since() without deadlocking.
void EventLog::notify_locked_copy(std::unique_lock<std::mutex>& lock) {
  if (listeners_.empty()) return;
  std::vector<std::function<void()>> fns;
  fns.reserve(listeners_.size());
  for (auto& [h, fn] : listeners_) fns.push_back(fn);
  lock.unlock();
  for (auto& fn : fns) fn();
}

std::vector<Event> EventLog::since(std::int64_t after_id, bool* closed) const {
  std::lock_guard lock(mu_);
  if (closed) *closed = closed_;
  std::vector<Event> out;
  // ids are 1..n in order, so the first event after `after_id` is at index after_id.
  std::size_t start = after_id < 0 ? 0 : static_cast<std::size_t>(after_id);
  for (std::size_t i = start; i < events_.size(); ++i) out.push_back(events_[i]);
  return out;
}

bool EventLog::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

int EventLog::listen(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  int handle = next_handle_++;
  listeners_.emplace(handle, std::move(fn));
  return handle;
}

void EventLog::unlisten(int handle) {
  std::lock_guard lock(mu_);
  listeners_.erase(handle);
}

// An empty type adds nothing: the events as they are.
std::string EventLog::to_json() const { return to_json_closed_with({}, {}); }

std::string EventLog::to_json_closed_with(const std::string& type,
                                          const std::string& data) const {
  std::lock_guard lock(mu_);
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : events_)
    arr.push_back({{"id", e.id}, {"event", e.type}, {"data", e.data}});
  if (!closed_ && !type.empty()) {
    std::int64_t id = events_.empty() ? 1 : events_.back().id + 1;
    arr.push_back({{"id", id}, {"event", type}, {"data", data}});
  }
  return util::json_text(arr);
}

std::shared_ptr<EventLog> EventLog::closed_from_json(const std::string& json) {
  auto log = std::make_shared<EventLog>();
  auto arr = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (arr.is_array()) {
    for (const auto& e : arr) {
      if (!e.is_object()) continue;
      log->events_.push_back(Event{e.value("id", std::int64_t{0}), e.value("event", ""),
                                   e.value("data", "")});
    }
  }
  log->closed_ = true;
  return log;
}

}  // namespace runq::jobs
