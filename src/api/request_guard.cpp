#include "runq/api/request_guard.hpp"

#include "responses.hpp"

#include "runq/util/ascii.hpp"
#include "runq/util/ip_address.hpp"

#include <algorithm>
#include <utility>

namespace runq::api {

std::string host_name(std::string_view host) {
  std::string_view name = host;
  if (name.starts_with('[')) {
    const auto end = name.find(']');
    name = end == std::string_view::npos ? name.substr(1) : name.substr(1, end - 1);
  } else if (const auto colon = name.find(':'); colon != std::string_view::npos &&
                                                name.find(':', colon + 1) == std::string_view::npos) {
    name = name.substr(0, colon);  // one ':': a port (a bare IPv6 address has several)
  }
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!out.empty() && out.back() == '.') out.pop_back();  // "localhost." is localhost
  return out;
}

bool is_loopback_name(const std::string& name) {
  if (name == "localhost" || name.ends_with(".localhost")) return true;
  const auto address = util::literal_address(name);
  return address && util::classify_address(reinterpret_cast<const sockaddr&>(*address)) ==
                        util::AddressClass::loopback;
}

RequestGuard::RequestGuard(HostCheck hosts, const Cors& cors)
    : hosts_(std::move(hosts)), cors_(cors) {
  for (auto& h : hosts_.allowed) h = h == "*" ? h : host_name(h);
}

bool RequestGuard::host_allowed(std::string_view host_header) const {
  const std::string name = host_name(host_header);
  if (is_loopback_name(name)) return true;
  return std::any_of(hosts_.allowed.begin(), hosts_.allowed.end(),
                     [&](const std::string& a) { return a == "*" || a == name; });
}

bool RequestGuard::cross_origin_write(const http::Request& request) const {
  if (request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS")
    return false;
  if (cors_.allowed_origin(request)) return false;
  // Sec-Fetch-Site is set by the browser and cannot be forged by a page.
  if (const std::string* site = request.header("sec-fetch-site"))
    return *site != "same-origin" && *site != "none";
  // Older browsers: the Origin's host[:port] against the Host the request was sent to.
  const std::string* origin = request.header("origin");
  if (!origin) return false;
  const std::string* host = request.header("host");
  const auto sep = origin->find("://");
  return !host || sep == std::string::npos ||
         !util::iequals(std::string_view(*origin).substr(sep + 3), *host);
}

std::optional<http::Response> RequestGuard::check(const http::Request& request) const {
  if (hosts_.enabled) {
    // No Host at all is an HTTP/1.0 client's request, never a browser's.
    const std::string* host = request.header("host");
    if (host && !host_allowed(*host)) return error_response(421, "Misdirected Request");
  }
  if (cross_origin_write(request))
    return error_response(403, "Cross-origin request refused (see --cors-origin)");
  return std::nullopt;
}

}  // namespace runq::api
