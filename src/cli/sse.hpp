#pragma once
// An incremental text/event-stream parser (the WHATWG rules the CLI needs).
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace runq::cli {

struct SseEvent {
  std::string event = "message";  // the `event:` field, "message" when absent
  std::optional<std::string> id;  // this event's own `id:` field, if it had one
  std::string data;               // `data:` lines joined with '\n'
};

class SseParser {
 public:
  using Sink = std::function<void(const SseEvent&)>;

  // Feeds bytes as they arrive; calls `sink` for each complete event. A partial line
  // or event is kept for the next call. Exceptions from `sink` propagate (the bytes
  // after that event stay buffered).
  void feed(std::string_view bytes, const Sink& sink);

  // The id of the last complete event that had one (for Last-Event-ID on reconnect).
  const std::string& last_event_id() const { return last_id_; }

  // Drops a partial event (after a reconnect).
  void reset_partial();

 private:
  void line(std::string_view text, const Sink& sink);

  std::string buffer_;
  SseEvent current_;
  bool has_data_ = false;
  bool has_fields_ = false;
  std::string last_id_;
};

}  // namespace runq::cli
