#include "runq/config/config.hpp"

#include "runq/util/ascii.hpp"

#include <CLI/CLI.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace runq::config {

namespace {

// "https://app.example.com", "http://localhost:3000" or "*": what a browser sends as
// Origin (scheme, host, optional port; no path).
std::string check_origin(const std::string& o) {
  if (o == "*") return {};
  std::string_view v = o;
  std::string_view rest;
  if (v.starts_with("http://")) rest = v.substr(7);
  else if (v.starts_with("https://")) rest = v.substr(8);
  else return "a CORS origin is http(s)://host[:port] or *, got " + o;
  if (rest.empty() || rest.find_first_of("/?# ") != std::string_view::npos)
    return "a CORS origin is http(s)://host[:port] (no path, no trailing slash), got " + o;
  return {};
}

bool valid_key(const std::string& key) {
  return !key.empty() &&
         std::all_of(key.begin(), key.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (util::iequals(h, "localhost")) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
    return false;
  }
  return false;  // a host name other than localhost: it may resolve to anything
}

std::optional<std::string> refuse_unprotected(const ServeConfig& cfg) {
  if (cfg.auth_enabled() || cfg.insecure_no_auth || is_loopback_host(cfg.host))
    return std::nullopt;
  return "refusing to serve " + cfg.host +
         " without API keys: anyone who can reach it could read and run jobs. Add "
         "--api-key KEY (or --api-keys-file FILE, or PRAISONAI_JOBS_API_KEY), bind to "
         "127.0.0.1, or pass --insecure-no-auth if the network itself is trusted.";
}

std::optional<int> parse_serve(const std::vector<std::string>& args, ServeConfig& out) {
  CLI::App app{"runq serve: run the job server", "runq serve"};
  app.option_defaults()->always_capture_default();

  app.add_option("--host", out.host, "Address to bind")->envname("RUNQ_HOST");
  app.add_option("--port", out.port, "Port to bind (0 picks a free one)")
      ->envname("RUNQ_PORT")
      ->check(CLI::Range(0, 65535));
  app.add_option("--db", out.db,
                 "SQLite database file (:memory: keeps nothing), or a PostgreSQL URI "
                 "(postgresql://user:pass@host:5432/db) shared by several runq nodes")
      ->envname("PRAISONAI_JOBS_DB_PATH");
  app.add_option("--db-pool", out.db_pool, "With PostgreSQL: connections this node keeps open")
      ->envname("RUNQ_DB_POOL")
      ->check(CLI::Range(1, 256));
  app.add_option("--node-name", out.node_name,
                 "This node's name in /health and on the jobs it runs (default hostname:pid)")
      ->envname("RUNQ_NODE_NAME");
  app.add_option("--lease-seconds", out.lease_seconds,
                 "With PostgreSQL: how long a node's claim on its running jobs outlives "
                 "its last renewal")
      ->envname("RUNQ_LEASE_SECONDS")
      ->check(CLI::Range(1, 86400));
  app.add_option("--max-concurrent", out.max_concurrent, "Jobs running at once")
      ->envname("PRAISONAI_MAX_CONCURRENT_JOBS")
      ->check(CLI::Range(1, 1024));
  app.add_option("--default-timeout", out.default_timeout,
                 "Running-time limit of a job that gives none (seconds)")
      ->envname("PRAISONAI_JOB_TIMEOUT")
      ->check(CLI::Range(1, 100'000'000));
  app.add_option("--max-timeout", out.max_timeout, "Largest timeout a job may ask for (seconds)")
      ->envname("RUNQ_MAX_TIMEOUT")
      ->check(CLI::Range(1, 100'000'000));
  app.add_option("--max-body", out.max_body, "Largest request body (bytes)")
      ->envname("RUNQ_MAX_BODY")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));
  app.add_option("--agent", out.agent, "What jobs run: echo, command or openai")
      ->envname("RUNQ_AGENT")
      ->check(CLI::IsMember({"echo", "command", "openai"}));
  app.add_option("--agent-command", out.agent_command,
                 "With --agent command: the program and its arguments (split like a shell "
                 "does, never run by one)")
      ->envname("RUNQ_AGENT_COMMAND");
  app.add_option("--kill-grace", out.kill_grace,
                 "Seconds between SIGTERM and SIGKILL when a command job is stopped")
      ->envname("RUNQ_KILL_GRACE")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--max-output", out.max_output,
                 "Largest result of a command job (bytes); more fails the job")
      ->envname("RUNQ_MAX_OUTPUT")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 32));
  app.add_option("--openai-base-url", out.openai_base_url,
                 "With --agent openai: base URL of an OpenAI-compatible API")
      ->envname("OPENAI_BASE_URL");
  app.add_option("--model", out.model, "With --agent openai: the default model")
      ->envname("OPENAI_MODEL_NAME");
  app.add_option("--ca-file", out.ca_file,
                 "PEM file of extra CA certificates to trust for outgoing HTTPS")
      ->envname("RUNQ_CA_FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--max-retries", out.max_retries,
                 "Most retries a job may ask for (its max_retries is cut to this)")
      ->envname("RUNQ_MAX_RETRIES")
      ->check(CLI::Range(0, jobs::defaults::kMaxRetries));
  app.add_option("--retry-delay", out.retry_delay,
                 "Backoff before a failed job's first retry (seconds; doubles each time)")
      ->envname("RUNQ_RETRY_DELAY")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--webhook-secret", out.webhook_secret,
                 "Key that signs webhooks (whsec_<base64> or plain text)")
      ->envname("RUNQ_WEBHOOK_SECRET");
  app.add_flag("--allow-private-webhooks", out.allow_private_webhooks,
               "Allow webhook URLs on loopback, private and link-local addresses")
      ->envname("RUNQ_ALLOW_PRIVATE_WEBHOOKS");
  app.add_option("--webhook-max-attempts", out.webhook_max_attempts,
                 "Delivery attempts of one webhook before it is given up")
      ->envname("RUNQ_WEBHOOK_MAX_ATTEMPTS")
      ->check(CLI::Range(1, 100));
  app.add_option("--check-db", out.check_db,
                 "PRAGMA quick_check of the database file on start: after-crash (the "
                 "default: only if the last run did not stop cleanly), full (always), off")
      ->envname("RUNQ_CHECK_DB")
      ->check(CLI::IsMember({"full", "after-crash", "off"}));
  app.add_option("--log-level", out.log_level, "trace, debug, info, warn, error")
      ->envname("RUNQ_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", out.log_format,
                 "text (one line per record) or json (one JSON object per line)")
      ->envname("RUNQ_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--access-log", out.access_log,
                 "on: one info line per HTTP request; off: none (job events and errors "
                 "are still logged)")
      ->envname("RUNQ_ACCESS_LOG")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--public-url", out.public_url,
                 "Base URL clients reach this server at (for poll_url behind a proxy)")
      ->envname("RUNQ_PUBLIC_URL");
  app.add_option("--io-threads", out.io_threads, "HTTP threads (0 = one per CPU this process may use: affinity mask, cgroup quota)")
      ->envname("RUNQ_IO_THREADS")
      ->check(CLI::Range(0, 256));

  app.add_option("--max-queued", out.max_queued,
                 "Most jobs waiting in the queue; beyond it a submit gets 429 with Retry-After")
      ->envname("RUNQ_MAX_QUEUED")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000'000}));
  app.add_option("--retention", out.retention,
                 "Seconds a finished job is kept before it is deleted (0 keeps forever)")
      ->envname("RUNQ_RETENTION")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{100} * 365 * 24 * 3600));
  app.add_option("--max-attempts", out.max_attempts,
                 "A job interrupted by a stop this many times fails instead of running "
                 "again (0 never gives up)")
      ->envname("RUNQ_MAX_ATTEMPTS")
      ->check(CLI::Range(0, 1000));
  app.add_option("--max-connections", out.max_connections,
                 "Most open connections; beyond it a new one gets a quick 503")
      ->envname("RUNQ_MAX_CONNECTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--max-header-bytes", out.max_header_bytes,
                 "Largest request line plus headers (bytes); beyond it 431")
      ->envname("RUNQ_MAX_HEADER_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20));
  app.add_option("--header-timeout", out.header_timeout,
                 "Seconds a client has to send a whole header block (slowloris guard)")
      ->envname("RUNQ_HEADER_TIMEOUT")
      ->check(CLI::Range(1, 3600));
  app.add_option("--idle-timeout", out.idle_timeout,
                 "Seconds an idle keep-alive connection stays open")
      ->envname("RUNQ_IDLE_TIMEOUT")
      ->check(CLI::Range(1, 86400));
  app.add_option("--body-timeout", out.body_timeout,
                 "Seconds a client has to send a whole request body")
      ->envname("RUNQ_BODY_TIMEOUT")
      ->check(CLI::Range(1, 3600));
  app.add_option("--write-timeout", out.write_timeout,
                 "Seconds a client has to take one response (or one SSE write)")
      ->envname("RUNQ_WRITE_TIMEOUT")
      ->check(CLI::Range(1, 3600));
  app.add_option("--drain-timeout", out.drain_timeout,
                 "On SIGTERM/SIGINT, seconds running jobs get to finish before they are "
                 "stopped and re-queued (0 stops them at once)")
      ->envname("RUNQ_DRAIN_TIMEOUT")
      ->check(CLI::Range(0, 86400));

  app.add_option("--api-key", out.api_keys,
                 "API key a client must send (Authorization: Bearer KEY or X-API-Key: KEY); "
                 "repeatable. PRAISONAI_JOBS_API_KEY adds one more")
      ->allow_extra_args(false);
  app.add_option("--api-keys-file", out.api_keys_file,
                 "File of API keys, one per line (# comments); re-read on SIGHUP")
      ->envname("RUNQ_API_KEYS_FILE")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure-no-auth", out.insecure_no_auth,
               "Serve a non-loopback address without API keys (anyone who can reach it "
               "can use it)");
  app.add_option("--allowed-host", out.allowed_hosts,
                 "Host name clients may reach a loopback server without keys by, besides "
                 "localhost and loopback addresses (repeatable; * allows any). Others get 421")
      ->envname("RUNQ_ALLOWED_HOSTS")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_option("--cors-origin", out.cors_origins,
                 "Browser origin allowed to call the API, e.g. https://app.example.com "
                 "(repeatable; * allows any). CORS is off without it")
      ->envname("RUNQ_CORS_ORIGINS")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::Validator(check_origin, "ORIGIN"));

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants it so
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // prints help (exit 0) or the error (non-zero)
  }
  if (out.public_url) {
    while (!out.public_url->empty() && out.public_url->back() == '/')
      out.public_url->pop_back();
  }
  if (const char* key = std::getenv("OPENAI_API_KEY")) out.openai_api_key = key;
  if (const char* key = std::getenv("PRAISONAI_JOBS_API_KEY"); key && *key)
    out.api_keys.emplace_back(key);
  for (const auto& key : out.api_keys) {
    if (!valid_key(key)) {
      std::cerr << "an API key must be non-empty printable ASCII without spaces\n";
      return 2;
    }
  }
  if (out.agent == "command" && out.agent_command.empty()) {
    std::cerr << "--agent command needs --agent-command 'PROGRAM ARGS...'\n";
    return 2;
  }
  if (out.default_timeout > out.max_timeout) {
    std::cerr << "--default-timeout (" << out.default_timeout
              << ") must not exceed --max-timeout (" << out.max_timeout << ")\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace runq::config
