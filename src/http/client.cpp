// The CLI's small blocking HTTP client: a thin layer over OutboundCall, so runq has one
// HTTP client implementation. Connection failures become ConnectionError.
#include "runq/http/client.hpp"

#include "runq/http/outbound.hpp"
#include "runq/util/ascii.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace runq::http {
namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(30);
// Longest silence on an event stream. The server sends a heartbeat every 5 idle seconds,
// so this only ends a connection that is dead; `runq stream` then reconnects.
constexpr auto kStreamIdleTimeout = std::chrono::seconds(60);
constexpr std::size_t kMaxResponseBody = std::size_t(1) << 32;  // 4 GiB
constexpr const char* kUserAgent = "runq-cli/0.1";

bool has_header(const std::vector<Header>& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const Header& h) { return util::iequals(h.name, name); });
}

ClientResponse to_client_response(OutboundResponse&& r) {
  ClientResponse out;
  out.status = r.status;
  out.headers = std::move(r.headers);
  out.body = std::move(r.body);
  return out;
}

OutboundResponse perform(OutboundRequest req,
                         const std::function<void(std::string_view)>& on_body = {}) {
  OutboundCall call(std::move(req));  // std::invalid_argument for a malformed URL
  try {
    return call.perform(on_body);
  } catch (const OutboundError& e) {
    throw ConnectionError(e.what());
  }
}

}  // namespace

ClientResponse request(const std::string& method, const std::string& url,
                       const std::string& body, const std::vector<Header>& headers,
                       std::chrono::seconds timeout) {
  OutboundRequest req;
  req.method = method;
  req.url = url;
  req.headers.push_back({"User-Agent", kUserAgent});
  req.headers.insert(req.headers.end(), headers.begin(), headers.end());
  if (!has_header(headers, "accept")) req.headers.push_back({"Accept", "application/json"});
  const bool has_body =
      !body.empty() || util::iequals(method, "POST") || util::iequals(method, "PUT") ||
      util::iequals(method, "PATCH");
  if (has_body && !has_header(headers, "content-type"))
    req.headers.push_back({"Content-Type", "application/json"});
  req.body = body;
  req.connect_timeout = std::min<std::chrono::milliseconds>(timeout, kConnectTimeout);
  req.idle_timeout = timeout;
  req.max_response_bytes = kMaxResponseBody;
  return to_client_response(perform(std::move(req)));
}

ClientResponse stream(const std::string& url, const std::vector<Header>& headers,
                      const std::function<void(std::string_view)>& on_data) {
  OutboundRequest req;
  req.method = "GET";
  req.url = url;
  req.headers.push_back({"User-Agent", kUserAgent});
  req.headers.insert(req.headers.end(), headers.begin(), headers.end());
  if (!has_header(headers, "accept")) req.headers.push_back({"Accept", "text/event-stream"});
  req.headers.push_back({"Cache-Control", "no-cache"});
  req.connect_timeout = kConnectTimeout;
  req.idle_timeout = kStreamIdleTimeout;
  req.max_response_bytes = std::numeric_limits<std::size_t>::max();
  return to_client_response(perform(std::move(req), on_data));
}

}  // namespace runq::http
