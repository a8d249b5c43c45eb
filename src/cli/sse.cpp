#include "sse.hpp"

namespace runq::cli {

void SseParser::feed(std::string_view bytes, const Sink& sink) {
  buffer_.append(bytes);
  std::size_t start = 0;
  while (true) {
    const auto nl = buffer_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view text(buffer_.data() + start, nl - start);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    start = nl + 1;
    try {
      line(text, sink);
    } catch (...) {
      buffer_.erase(0, start);
      throw;
    }
  }
  buffer_.erase(0, start);
}

void SseParser::reset_partial() {
  buffer_.clear();
  current_ = SseEvent{};
  has_data_ = false;
  has_fields_ = false;
}

void SseParser::line(std::string_view text, const Sink& sink) {
  if (text.empty()) {  // end of an event
    if (has_fields_) {
      SseEvent ev = std::move(current_);
      if (ev.id) last_id_ = *ev.id;  // committed only once the event is complete
      current_ = SseEvent{};
      has_data_ = false;
      has_fields_ = false;
      sink(ev);
    }
    return;
  }
  if (text.front() == ':') return;  // a comment (keep-alive)
  std::string_view field = text, value;
  if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    field = text.substr(0, colon);
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) current_.data += '\n';
    current_.data.append(value);
    has_data_ = true;
    has_fields_ = true;
  } else if (field == "event") {
    current_.event = value.empty() ? "message" : std::string(value);
    has_fields_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      current_.id = std::string(value);
    }
    has_fields_ = true;
  }
  // "retry" and unknown fields are ignored.
}

}  // namespace runq::cli
