#include "runq/api/access_log.hpp"

#include "runq/metrics/runq_metrics.hpp"
#include "runq/util/log.hpp"

#include <atomic>
#include <chrono>
#include <random>

namespace runq::api {

namespace {
constexpr std::size_t kMaxRequestId = 128;
}

std::optional<std::string> sane_request_id(const std::string* header) {
  if (!header || header->empty() || header->size() > kMaxRequestId) return std::nullopt;
  for (char c : *header)
    if (c < 0x20 || c > 0x7e) return std::nullopt;
  return *header;
}

std::string new_request_id() {
  // A random per-process prefix and a counter: no CSPRNG call per request.
  static const std::uint32_t prefix = std::random_device{}();
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) + 1;
  char buf[8 + 1 + 16];
  auto hex = [](std::uint64_t v, char* at, int digits) {
    for (int i = digits - 1; i >= 0; --i, v >>= 4) at[i] = "0123456789abcdef"[v & 0xf];
  };
  hex(prefix, buf, 8);  // zero-padded, like {:08x}
  buf[8] = '-';
  int digits = 1;  // no padding, like {:x}
  while (digits < 16 && (n >> (4 * digits)) != 0) ++digits;
  hex(n, buf + 9, digits);
  return std::string(buf, 9 + static_cast<std::size_t>(digits));
}

http::Handler observed(RoutedHandler inner, bool access_log) {
  return [inner = std::move(inner), access_log](http::Request&& request, http::Reply reply) {
    const auto start = std::chrono::steady_clock::now();
    std::string id = sane_request_id(request.header("x-request-id")).value_or("");
    if (id.empty()) id = new_request_id();
    const RouteMatch match = match_route(request.path);
    auto done = [reply = std::move(reply), start, match, id, method = request.method,
                 remote = request.remote, access_log](http::Response r) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const int status = r.status;
      r.headers.push_back({"X-Request-ID", id});
      reply(std::move(r));  // answer first: the bookkeeping below need not delay it
      metrics::runq().http_request(metrics_route(match), method, status, seconds);
      if (!access_log) return;
      util::log::event(util::log::access_logger(), spdlog::level::info, "request",
                       {{"method", method},
                        {"route", route_template(match)},
                        {"status", status},
                        {"duration_ms", seconds * 1000.0},
                        {"request_id", id},
                        {"remote", remote}});
    };
    inner(std::move(request), match, std::move(done));
  };
}

http::Handler observed(http::Handler inner, bool access_log) {
  return observed(
      [inner = std::move(inner)](http::Request&& request, const RouteMatch&, http::Reply reply) {
        inner(std::move(request), std::move(reply));
      },
      access_log);
}

}  // namespace runq::api
