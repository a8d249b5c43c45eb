#pragma once
// Plain HTTP request/response types: what the api layer sees. No Beast here.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runq::http {

struct Header {
  std::string name;  // lower-case in a Request; as written in a Response
  std::string value;
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/api/v1/runs?page=2"
  std::string path;    // target before '?', not percent-decoded
  std::string query;   // after '?', not decoded ("" if none)
  std::vector<Header> headers;
  std::string body;
  std::string remote;  // peer address, for logs

  // First header with this lower-case name, or nullptr.
  const std::string* header(std::string_view lower_name) const {
    for (const auto& h : headers)
      if (h.name == lower_name) return &h.value;
    return nullptr;
  }
};

// A body that is produced over time (Server-Sent Events). The server pulls from it on
// the connection's own executor; the producer only calls the notifier.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Bytes ready to send now, or nullopt if nothing is ready.
  virtual std::optional<std::string> poll() = 0;
  // True once poll() will never return data again (the stream is complete).
  virtual bool finished() = 0;
  // Bytes to send after `heartbeat_interval` with nothing to send (keeps proxies open).
  virtual std::string heartbeat() = 0;
  // `notify` may be called from any thread whenever poll() may have new data or the
  // stream has finished. Set once, before the first poll().
  virtual void set_notifier(std::function<void()> notify) = 0;
  // The client went away or the server is stopping: release what the stream holds.
  virtual void close() = 0;
};

struct Response {
  int status = 200;
  std::vector<Header> headers;  // extra headers: Location, Retry-After, Allow, ...
  std::string content_type = "application/json";
  std::string body;
  // When set, the response is streamed: headers go out at once, then stream chunks,
  // until the stream finishes or the client leaves. `body` is ignored.
  std::shared_ptr<EventStream> stream;
};

// Completes a request. Call exactly once, from any thread.
using Reply = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Reply)>;

}  // namespace runq::http
