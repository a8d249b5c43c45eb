#pragma once
// Outbound HTTP/1.1 calls made by the server: to LLM endpoints and webhook receivers.
// http:// and https:// (TLS with certificate and host name verification). Blocking,
// for worker/dispatcher threads, and cancellable from any other thread.
#include "runq/http/message.hpp"

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace runq::http {

struct OutboundRequest {
  std::string method = "POST";
  std::string url;                    // "http://host[:port]/path?q" or "https://..."
  std::vector<Header> headers;        // Host, Content-Length, User-Agent are added
  std::string body;
  std::chrono::milliseconds connect_timeout{10'000};  // DNS + TCP + TLS handshake
  std::chrono::milliseconds idle_timeout{60'000};     // longest silence while reading
  std::chrono::milliseconds total_timeout{0};         // whole exchange; 0 = no limit
  std::size_t max_response_bytes = 64u << 20;         // a larger body is an error
  std::optional<std::string> ca_file;  // extra PEM bundle to trust (besides the system's)
  // If set, called with every address the host resolves to (a literal one too) before
  // connecting; a reason refuses the call (OutboundRefused). The connection goes to the
  // addresses checked, never to those of a second lookup, so DNS rebinding cannot slip
  // a private address past the check.
  std::function<std::optional<std::string>(const sockaddr&)> check_address;
};

struct OutboundResponse {
  int status = 0;
  std::vector<Header> headers;  // names lower-case
  std::string body;             // empty when the body went to on_body
  const std::string* header(std::string_view lower_name) const {
    for (const auto& h : headers)
      if (h.name == lower_name) return &h.value;
    return nullptr;
  }
};

// Could not connect, TLS failed, timed out, or the connection broke.
struct OutboundError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// check_address refused an address the host resolved to; trying again will not help.
struct OutboundRefused : OutboundError {
  using OutboundError::OutboundError;
};
// cancel() was called.
struct OutboundCancelled : OutboundError {
  using OutboundError::OutboundError;
};

// One call. perform() blocks until the response is complete; cancel() (any thread, any
// time, also before perform) makes it throw OutboundCancelled promptly.
class OutboundCall {
 public:
  explicit OutboundCall(OutboundRequest request);
  ~OutboundCall();
  OutboundCall(const OutboundCall&) = delete;
  OutboundCall& operator=(const OutboundCall&) = delete;

  // With on_body set and a 2xx status, the body is handed over chunk by chunk as it
  // arrives instead of being collected (for streamed LLM answers).
  OutboundResponse perform(const std::function<void(std::string_view)>& on_body = {});
  void cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runq::http
