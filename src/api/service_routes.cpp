// The service routes: /health, /stats, /metrics, /openapi.json.
#include "runq/api/router.hpp"

#include "responses.hpp"

#include "runq/api/json_render.hpp"
#include "runq/api/openapi.hpp"

namespace runq::api {

std::optional<http::Response> Router::health(Call& /*call*/) {
  const jobs::HealthStats h = service_.health();
  const bool unreachable =
      h.store_fault && h.store_fault->reason == jobs::FaultReason::unreachable;
  Json body = health_json(h);
  // For the dashboard: whether to ask for a key before it calls the API.
  body["auth_required"] = options_.keys && options_.keys->enabled();
  return json_response(unreachable ? 503 : 200, body);
}

// All of the server's numbers (not per key): an operator's view, behind a key like
// everything but /health.
std::optional<http::Response> Router::metrics(Call& /*call*/) {
  const jobs::HealthStats h = service_.health();
  metrics::RunqMetrics::Gauges g;
  g.queued = h.queued_jobs;
  g.running = h.running_jobs;
  g.max_concurrent = h.max_concurrent;
  if (options_.open_connections) g.open_connections = options_.open_connections();
  g.store_writable = !h.store_fault;
  http::Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics::runq().render(g);
  return r;
}

std::optional<http::Response> Router::openapi(Call& /*call*/) {
  http::Response r;
  r.body = std::string(openapi_json());
  return r;
}

std::optional<http::Response> Router::stats(Call& call) {
  return json_response(200, stats_json(service_.counts(call.caller), service_.health()));
}

}  // namespace runq::api
