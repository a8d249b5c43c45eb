#pragma once
// A small blocking HTTP/1.1 client (plain http only), used by the CLI.
#include "runq/http/message.hpp"

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace runq::http {

struct ClientResponse {
  int status = 0;
  std::vector<Header> headers;  // names lower-case
  std::string body;
  const std::string* header(std::string_view lower_name) const {
    for (const auto& h : headers)
      if (h.name == lower_name) return &h.value;
    return nullptr;
  }
};

// Thrown when the server cannot be reached or the connection breaks.
struct ConnectionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `url` is absolute: "http://host:port/path?query".
ClientResponse request(const std::string& method, const std::string& url,
                       const std::string& body = {},
                       const std::vector<Header>& headers = {},
                       std::chrono::seconds timeout = std::chrono::seconds(75));

// GET `url` and hand the response body to `on_data` chunk by chunk as it arrives
// (for text/event-stream). Returns the status and headers when the body ends; for a
// non-2xx status the body is collected into the response instead.
ClientResponse stream(const std::string& url, const std::vector<Header>& headers,
                      const std::function<void(std::string_view)>& on_data);

}  // namespace runq::http
