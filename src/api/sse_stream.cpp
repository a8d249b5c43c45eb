#include "runq/api/sse_stream.hpp"

#include "runq/util/time.hpp"

#include <nlohmann/json.hpp>

namespace runq::api {

std::string format_sse(const jobs::Event& e) {
  std::string out;
  out.reserve(e.type.size() + e.data.size() + 40);
  out += "event: ";
  out += e.type;
  out += "\nid: ";
  out += std::to_string(e.id);
  out += '\n';
  std::string_view data = e.data;
  for (;;) {
    auto nl = data.find_first_of("\r\n");
    out += "data: ";
    out += data.substr(0, nl);
    out += '\n';
    if (nl == std::string_view::npos) break;
    if (data[nl] == '\r' && nl + 1 < data.size() && data[nl + 1] == '\n') ++nl;
    data.remove_prefix(nl + 1);
  }
  out += '\n';
  return out;
}

std::string format_heartbeat(std::int64_t now_us) {
  nlohmann::json data = {{"timestamp", util::rfc3339(now_us)}};
  return "event: heartbeat\ndata: " + data.dump() + "\n\n";
}

std::int64_t parse_last_event_id(const std::string* header) {
  if (!header) return 0;
  std::string_view v = *header;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.size() > 18) return 0;
  std::int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

JobEventStream::JobEventStream(std::shared_ptr<jobs::EventLog> log, std::int64_t after_id)
    : log_(std::move(log)), last_id_(after_id) {}

JobEventStream::~JobEventStream() { close(); }

std::optional<std::string> JobEventStream::poll() {
  std::lock_guard lock(mu_);
  if (finished_ || closed_) return std::nullopt;
  bool log_closed = false;
  auto events = log_->since(last_id_, &log_closed);
  if (log_closed) finished_ = true;  // since() gave everything there will ever be
  if (events.empty()) return std::nullopt;
  std::string out;
  for (const auto& e : events) out += format_sse(e);
  last_id_ = events.back().id;
  return out;
}

bool JobEventStream::finished() {
  std::lock_guard lock(mu_);
  if (finished_ || closed_) return true;
  bool log_closed = false;
  if (!log_->closed()) return false;
  auto events = log_->since(last_id_, &log_closed);
  if (log_closed && events.empty()) finished_ = true;
  return finished_;
}

std::string JobEventStream::heartbeat() { return format_heartbeat(util::now_us()); }

void JobEventStream::set_notifier(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  if (listen_handle_ != 0) log_->unlisten(listen_handle_);
  listen_handle_ = log_->listen(std::move(notify));
}

void JobEventStream::close() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  if (listen_handle_ != 0) {
    log_->unlisten(listen_handle_);
    listen_handle_ = 0;
  }
}

}  // namespace runq::api
