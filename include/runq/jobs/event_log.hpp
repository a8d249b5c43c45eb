#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace runq::jobs {

// One Server-Sent Event of a job: `status`, `progress`, `output`, `result`, `error`,
// `cancelled`. `data` is a JSON document as text. Ids count up from 1 per job.
struct Event {
  std::int64_t id = 0;
  std::string type;
  std::string data;
};

// The ordered events of one job. Appended by the worker, read by any number of
// streams; closed after the terminal event.
class EventLog {
 public:
  // Appends an event with the next id and wakes the listeners.
  void append(std::string type, std::string data);
  // Appends the terminal event and closes the log.
  void close_with(std::string type, std::string data);
  // Appends a copy of another node's event if it is the next one (its id is the last
  // id + 1); false (nothing appended) otherwise. Repeating a copy is harmless.
  bool append_copy(const Event& e);
  // The id of the last event (0: none).
  std::int64_t last_id() const;

  // Events with id > after_id; sets `closed` to whether the log is closed.
  std::vector<Event> since(std::int64_t after_id, bool* closed) const;
  bool closed() const;

  // fn is called (on the appending thread) after every append and on close.
  int listen(std::function<void()> fn);
  void unlisten(int handle);

  // JSON array [{"id","event","data"}] for storing with a finished job, and back.
  std::string to_json() const;
  // to_json() as it will be once close_with(type, data) has been called.
  std::string to_json_closed_with(const std::string& type, const std::string& data) const;
  static std::shared_ptr<EventLog> closed_from_json(const std::string& json);

 private:
  void notify_locked_copy(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::vector<Event> events_;
  bool closed_ = false;
  int next_handle_ = 1;
  std::map<int, std::function<void()>> listeners_;
};

}  // namespace runq::jobs
