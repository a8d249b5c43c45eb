// The route table, the one list of the API's routes, and the dispatch that reads it.
#include "runq/api/router.hpp"

#include "responses.hpp"

#include "runq/api/query.hpp"
#include "runq/util/ids.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <iterator>
#include <string_view>
#include <utility>

namespace runq::api {

// Rows in the order of their metrics slots; the slot after the last is "other".
const Router::Route Router::kRoutes[] = {
    // path                           GET                  POST             DELETE           key
    {"/health",                       &Router::health,     nullptr,         nullptr,         false},
    {"/stats",                        &Router::stats,      nullptr,         nullptr,         true},
    {"/metrics",                      &Router::metrics,    nullptr,         nullptr,         true},
    {"/openapi.json",                 &Router::openapi,    nullptr,         nullptr,         true},
    {"/api/v1/runs",                  &Router::list,       &Router::submit, nullptr,         true},
    {"/api/v1/runs/{job_id}",         &Router::get_status, nullptr,         &Router::remove, true},
    {"/api/v1/runs/{job_id}/result",  &Router::get_result, nullptr,         nullptr,         true},
    {"/api/v1/runs/{job_id}/cancel",  nullptr,             &Router::cancel, nullptr,         true},
    {"/api/v1/runs/{job_id}/stream",  &Router::stream,     nullptr,         nullptr,         true},
    // The dashboard (ui_routes.cpp): last, the API's routes are matched first.
    {"/",                             &Router::ui_redirect, nullptr,        nullptr,         false},
    {"/ui",                           &Router::ui_redirect, nullptr,        nullptr,         false},
    {"/ui/",                          &Router::ui_file,    nullptr,         nullptr,         false},
    {"/ui/{file}",                    &Router::ui_file,    nullptr,         nullptr,         false},
};
const std::size_t Router::kRouteCount = std::size(Router::kRoutes);

namespace {

constexpr std::string_view kOther = "other";

// The path's parameter (a job id) from the path: percent-decoded only when it needs it (the hot path doesn't).
std::string decode_id(std::string_view raw) {
  return raw.find('%') == std::string_view::npos ? std::string(raw) : percent_decode(raw, false);
}

}  // namespace

RouteMatch match_route(std::string_view path) {
  static_assert(std::size(Router::kRoutes) < metrics::kRoutes, "a slot per route, and other");
  static_assert(std::size(Router::kRoutes) < RouteMatch::kNone);
  // True if `path` fits the row's template: the same text, "{job_id}" standing for one
  // non-empty segment (its place in the path goes to `m`). Whole pieces are compared, the
  // template is not scanned per request.
  auto fits = [path](const Router::Route& route, RouteMatch& m) {
    if (!route.has_id) return path == route.path;
    const std::size_t fixed = route.prefix.size() + route.suffix.size();
    if (path.size() <= fixed || !path.starts_with(route.prefix) ||
        !path.ends_with(route.suffix))
      return false;
    const std::string_view id = path.substr(route.prefix.size(), path.size() - fixed);
    if (id.find('/') != std::string_view::npos) return false;
    m.id_begin = route.prefix.size();
    m.id_size = id.size();
    return true;
  };
  for (std::size_t r = 0; r < Router::kRouteCount; ++r) {
    RouteMatch m;
    if (fits(Router::kRoutes[r], m)) {
      m.route = static_cast<std::uint8_t>(r);
      return m;
    }
  }
  return {};
}

std::string_view route_template(const RouteMatch& match) {
  return match.found() ? Router::kRoutes[match.route].path : kOther;
}

metrics::RouteLabel metrics_route(const RouteMatch& match) {
  if (!match.found()) return {Router::kRouteCount, kOther.data()};
  return {match.route, Router::kRoutes[match.route].path.data()};  // a literal: NUL-terminated
}

Router::Handler Router::handler_of(const Route& route, std::string_view method) {
  if (method == "GET") return route.get;
  if (method == "POST") return route.post;
  if (method == "DELETE") return route.del;
  return nullptr;
}

std::string_view Router::allowed_methods(const Route& route) {
  // Indexed by GET | POST << 1 | DELETE << 2, listed in that order.
  static constexpr std::string_view kAllow[] = {
      "", "GET", "POST", "GET, POST", "DELETE", "GET, DELETE", "POST, DELETE", "GET, POST, DELETE"};
  return kAllow[(route.get ? 1 : 0) | (route.post ? 2 : 0) | (route.del ? 4 : 0)];
}

Router::Router(jobs::JobService& service, ApiOptions options)
    : service_(service),
      options_(std::move(options)),
      cors_(options_.cors_origins, options_.cors_max_age_s),
      guard_(options_.host_check, cors_) {}

void Router::handle(http::Request&& request, http::Reply reply) {
  const RouteMatch match = match_route(request.path);
  handle(std::move(request), match, std::move(reply));
}

void Router::handle(http::Request&& request, const RouteMatch& match, http::Reply reply) {
  if (auto refusal = guard_.check(request)) {
    reply(std::move(*refusal));
    return;
  }
  // An allowed browser origin gets the CORS headers on every answer, also those sent later.
  if (const std::string* origin = cors_.allowed_origin(request)) {
    reply = [reply = std::move(reply), origin = *origin](http::Response r) {
      Cors::decorate(r, origin);
      reply(std::move(r));
    };
  }
  // The answer to send now. A route that answers later hands `reply` on (leaves it empty).
  std::optional<http::Response> response;
  try {
    const Route* route = match.found() ? &kRoutes[match.route] : nullptr;
    // Every route but /health (and a CORS preflight, which browsers send without
    // credentials) needs a key when keys are on; the caller is then that key's owner.
    const bool preflight = route && cors_.is_preflight(request);
    const bool needs_key = options_.keys && options_.keys->enabled() &&
                           (!route || route->needs_key) && !preflight;
    Caller caller;
    if (needs_key) caller = options_.keys->authenticate(request);
    Handler handler = nullptr;
    if (preflight) {
      response = cors_.preflight(allowed_methods(*route));
    } else if (needs_key && !caller) {
      response = unauthorized();
    } else if (!route) {
      response = error_response(404, "Not Found");
    } else if (handler = handler_of(*route, request.method); !handler) {
      response = method_not_allowed(allowed_methods(*route));
    } else if (const std::string id = decode_id(match.id(request.path));
               route->job_param && match.id_size != 0 && !util::is_job_id(id)) {
      response = not_found_job(id);
    } else {
      Call call{request, id, caller, reply};
      response = (this->*handler)(call);
    }
  } catch (const jobs::StoreUnavailable& e) {
    // e.g. cancel or delete while the disk is full: 503, never 500.
    spdlog::warn("api: {} {}: {}", request.method, request.path, e.what());
    response = store_unavailable(e.detail());
  } catch (const std::exception& e) {
    spdlog::error("api: {} {} failed: {}", request.method, request.path, e.what());
    response = internal_error();
  } catch (...) {
    spdlog::error("api: {} {} failed with an unknown exception", request.method, request.path);
    response = internal_error();
  }
  if (!reply) return;  // a route handed it on: it answers
  reply(response ? std::move(*response) : internal_error());
}

}  // namespace runq::api
