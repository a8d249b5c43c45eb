// runq: `runq serve` runs the job server; every other command is the client (cli/).
#include "runq/agents/factory.hpp"
#include "runq/api/access_log.hpp"
#include "runq/api/auth.hpp"
#include "runq/api/router.hpp"
#include "runq/cli/cli.hpp"
#include "runq/config/config.hpp"
#include "runq/http/server.hpp"
#include "runq/jobs/job_service.hpp"
#include "runq/metrics/runq_metrics.hpp"
#include "runq/store/postgres_store.hpp"
#include "runq/store/sqlite_store.hpp"
#include "runq/util/cpus.hpp"
#include "runq/util/log.hpp"
#include "runq/util/url.hpp"
#include "runq/webhooks/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace {

// Exit status after a second stop signal (128 + SIGINT, as shells report an interrupt).
constexpr int kExitInterrupted = 130;

// --node-name's default: hostname:pid (unique on a machine at any one time).
std::string default_node_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "runq");
  return std::string(host) + ":" + std::to_string(getpid());
}

int serve(const runq::config::ServeConfig& cfg) {
  runq::util::log::setup(
      cfg.log_format == "json" ? runq::util::log::Format::json : runq::util::log::Format::text,
      cfg.log_level);

  // Signals are taken by one thread with sigwait, so block them everywhere first
  // (threads started below inherit the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // Safe defaults: an address others can reach is not served without keys.
  if (auto refusal = runq::config::refuse_unprotected(cfg)) {
    std::cerr << "runq: " << *refusal << "\n";
    return 1;
  }
  // The keys of --api-key, PRAISONAI_JOBS_API_KEY and --api-keys-file (re-read on
  // SIGHUP). Only their hashes are kept; no key is ever logged.
  auto all_keys = [&cfg]() {
    std::vector<std::string> keys = cfg.api_keys;
    if (cfg.api_keys_file) {
      auto from_file = runq::api::read_keys_file(*cfg.api_keys_file);
      keys.insert(keys.end(), from_file.begin(), from_file.end());
    }
    return keys;
  };
  std::shared_ptr<runq::api::ApiKeys> api_keys;
  try {
    api_keys = std::make_shared<runq::api::ApiKeys>(cfg.auth_enabled(), all_keys());
  } catch (const std::exception& e) {
    std::cerr << "runq: " << e.what() << "\n";
    return 1;
  }
  if (!cfg.auth_enabled()) {
    if (!runq::config::is_loopback_host(cfg.host))
      spdlog::warn("--insecure-no-auth: serving {} WITHOUT API keys: anyone who can reach "
                   "this address can submit, read, cancel and delete every job",
                   cfg.host);
  } else {
    if (cfg.insecure_no_auth)
      spdlog::warn("--insecure-no-auth has no effect: API keys are configured");
    if (api_keys->size() == 0)
      spdlog::warn("no API key in {}: every request but /health is refused until a "
                   "reload (SIGHUP) adds one",
                   cfg.api_keys_file.value_or("?"));
    else
      spdlog::info("API keys required ({} configured)", api_keys->size());
  }

  const bool postgres = runq::store::is_postgres_uri(cfg.db);
  const std::string node_name = cfg.node_name.empty() ? default_node_name() : cfg.node_name;
  // What the log may say of --db: a URI's password never appears.
  const std::string db_shown = postgres ? runq::store::redact_password(cfg.db) : cfg.db;
  std::unique_ptr<runq::jobs::Store> store;
  try {
    using runq::store::StartupCheck;
    const StartupCheck check = cfg.check_db == "off"           ? StartupCheck::off
                               : cfg.check_db == "after-crash" ? StartupCheck::after_crash
                                                               : StartupCheck::full;
    if (postgres)
      store = runq::store::open_postgres_store(
          {cfg.db, cfg.db_pool, node_name, cfg.lease_seconds, cfg.max_attempts});
    else
      store = runq::store::open_sqlite_store(cfg.db, check);
  } catch (const runq::store::DamagedDatabase& e) {
    spdlog::critical("{}", e.what());
    std::cerr << "runq: " << e.what() << "\n";  // also when logging is turned off
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("cannot open the job store: {}", e.what());
    return 1;
  }

  std::unique_ptr<runq::jobs::Agent> agent;
  try {
    agent = runq::agents::make_agent(cfg);
  } catch (const std::exception& e) {
    spdlog::critical("bad agent configuration: {}", e.what());
    return 2;
  }

  runq::webhooks::DispatcherOptions webhook_options;
  webhook_options.secret = cfg.webhook_secret;
  webhook_options.max_attempts = cfg.webhook_max_attempts;
  webhook_options.allow_private = cfg.allow_private_webhooks;
  runq::webhooks::Dispatcher webhooks(*store, webhook_options);

  runq::jobs::ServiceOptions service_options;
  service_options.max_concurrent = cfg.max_concurrent;
  service_options.default_timeout_s = cfg.default_timeout;
  service_options.max_timeout_s = cfg.max_timeout;
  service_options.max_retries_cap = cfg.max_retries;
  service_options.retry_base_delay =
      std::chrono::milliseconds(static_cast<long long>(cfg.retry_delay * 1000));
  service_options.max_queued = cfg.max_queued;
  service_options.retention_s = cfg.retention;
  service_options.max_attempts = cfg.max_attempts;
  service_options.on_job_end = [&webhooks](const std::string&) { webhooks.notify(); };
  if (postgres) service_options.node_name = node_name;
  runq::jobs::JobService service(*store, *agent, service_options);

  runq::api::ApiOptions api_options;
  api_options.public_url = cfg.public_url;
  api_options.allow_private_webhooks = cfg.allow_private_webhooks;
  api_options.keys = api_keys;
  api_options.cors_origins = cfg.cors_origins;
  // Against DNS rebinding: a loopback server without keys answers only to its own names.
  api_options.host_check.enabled =
      runq::config::is_loopback_host(cfg.host) && !cfg.auth_enabled();
  api_options.host_check.allowed = cfg.allowed_hosts;
  if (cfg.public_url) {
    const auto url = runq::util::parse_url(*cfg.public_url);
    if (const auto* u = std::get_if<runq::util::Url>(&url))
      api_options.host_check.allowed.push_back(u->host);
  }
  runq::http::Server* server_ptr = nullptr;  // set below; /metrics reads its connections
  api_options.open_connections = [&server_ptr]() -> std::int64_t {
    return server_ptr ? static_cast<std::int64_t>(server_ptr->open_connections()) : 0;
  };
  runq::api::Router router(service, api_options);
  // Request ids, access log and HTTP metrics around every answer of the router.
  runq::http::Handler handler = runq::api::observed(
      [&router](runq::http::Request&& req, const runq::api::RouteMatch& match,
                runq::http::Reply reply) { router.handle(std::move(req), match, std::move(reply)); },
      cfg.access_log == "on");

  runq::http::ServerOptions http_options;
  http_options.host = cfg.host;
  http_options.port = static_cast<std::uint16_t>(cfg.port);
  http_options.max_body_bytes = cfg.max_body;
  http_options.max_header_bytes = cfg.max_header_bytes;
  http_options.max_connections = cfg.max_connections;
  http_options.header_timeout = std::chrono::seconds(cfg.header_timeout);
  http_options.idle_timeout = std::chrono::seconds(cfg.idle_timeout);
  http_options.body_timeout = std::chrono::seconds(cfg.body_timeout);
  http_options.write_timeout = std::chrono::seconds(cfg.write_timeout);
  // 0: one per CPU this process may use (affinity mask, cgroup quota), not the host's.
  http_options.io_threads = cfg.io_threads > 0 ? cfg.io_threads : runq::util::usable_cpus();
  http_options.on_rejected = [](int status) { runq::metrics::runq().http_rejected(status); };
  runq::http::Server server(http_options, std::move(handler));
  server_ptr = &server;

  std::uint16_t port = 0;
  try {
    webhooks.start();
    service.start();
    port = server.listen();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  spdlog::info("runq {} listening on http://{}:{} (store {}: {}, agent {}, {} workers, {} I/O {})",
               RUNQ_VERSION, cfg.host.find(':') != std::string::npos ? "[" + cfg.host + "]" : cfg.host,
               port, store->kind(), db_shown, agent->id(), cfg.max_concurrent,
               http_options.io_threads, http_options.io_threads == 1 ? "thread" : "threads");

  // First SIGTERM/SIGINT: graceful stop. Submits get 503, the listener closes, in-flight
  // requests finish and SSE streams end (server.stop), running jobs get --drain-timeout.
  // A second signal exits at once: everything acknowledged is already on disk, and jobs
  // still running are re-queued by the next start.
  //
  // SIGHUP re-reads --api-keys-file and keeps waiting (at any stage): a file that can't be
  // read, or has a bad line, leaves the keys as they were.
  std::atomic<bool> exiting{false};
  auto reload_keys = [&] {
    if (!cfg.api_keys_file) {
      spdlog::info("SIGHUP: no --api-keys-file to reload");
      return;
    }
    try {
      api_keys->replace(all_keys());
      spdlog::info("SIGHUP: reloaded {}: {} API key(s) configured", *cfg.api_keys_file,
                   api_keys->size());
    } catch (const std::exception& e) {
      spdlog::error("SIGHUP: {}; keeping the {} API key(s) configured before", e.what(),
                    api_keys->size());
    }
  };
  // Waits for SIGTERM/SIGINT (or the wake-up of the exit path), reloading on SIGHUP.
  auto wait_stop_signal = [&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig != SIGHUP || exiting) return sig;
      reload_keys();
    }
  };
  std::thread signal_waiter([&] {
    int sig = wait_stop_signal();
    if (exiting) return;
    spdlog::info("{}: shutting down; running jobs get up to {} s to finish (a second signal "
                 "exits at once)",
                 strsignal(sig), cfg.drain_timeout);
    service.begin_stop();
    server.stop();
    sig = wait_stop_signal();
    if (exiting) return;
    spdlog::warn("{} again: exiting now; {} running job(s) will run again after restart",
                 strsignal(sig), service.running());
    spdlog::default_logger()->flush();
    std::_Exit(kExitInterrupted);
  });
  server.run();  // returns once the server stopped (or failed)
  service.begin_stop();
  if (int n = service.running(); n > 0) {
    spdlog::info("draining: waiting for {} running job(s)", n);
    if (service.drain(std::chrono::seconds(cfg.drain_timeout)))
      spdlog::info("drained: every running job finished");
    else
      spdlog::warn("drain timeout ({} s): stopping {} job(s) still running; they are "
                   "re-queued for the next start",
                   cfg.drain_timeout, service.running());
  }
  service.stop();
  exiting = true;
  pthread_kill(signal_waiter.native_handle(), SIGTERM);  // ends its sigwait
  signal_waiter.join();
  webhooks.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) {
    runq::config::ServeConfig cfg;
    std::vector<std::string> args(argv + 2, argv + argc);
    if (auto code = runq::config::parse_serve(args, cfg)) return *code;
    const int code = serve(cfg);
    runq::util::log::shutdown();  // the last access lines (batched)
    return code;
  }
  return runq::cli::run(argc, argv);
}
