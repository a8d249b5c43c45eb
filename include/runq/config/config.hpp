#pragma once
#include "runq/jobs/defaults.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace runq::config {

// Everything `runq serve` can be told. Flags win over environment variables, which
// win over these defaults.
struct ServeConfig {
  std::string host = "127.0.0.1";           // --host, RUNQ_HOST
  int port = 8005;                          // --port, RUNQ_PORT (0 = any free port)
  std::string db = "runq.db";               // --db, PRAISONAI_JOBS_DB_PATH (":memory:",
                                            // or a postgresql:// URI)
  int db_pool = 8;                          // --db-pool, RUNQ_DB_POOL (PostgreSQL connections)
  std::string node_name;                    // --node-name, RUNQ_NODE_NAME ("" = hostname:pid)
  int lease_seconds = 30;                   // --lease-seconds, RUNQ_LEASE_SECONDS (PostgreSQL)
  int max_concurrent = jobs::defaults::kMaxConcurrent;  // --max-concurrent, PRAISONAI_MAX_CONCURRENT_JOBS
  int default_timeout = jobs::defaults::kTimeoutS;      // --default-timeout, PRAISONAI_JOB_TIMEOUT
  int max_timeout = jobs::defaults::kMaxTimeoutS;       // --max-timeout, RUNQ_MAX_TIMEOUT
  std::size_t max_body = 1 << 20;           // --max-body, RUNQ_MAX_BODY (bytes)
  std::string agent = "echo";               // --agent, RUNQ_AGENT: echo|command|openai
  std::string agent_command;                // --agent-command, RUNQ_AGENT_COMMAND
  double kill_grace = 5.0;                  // --kill-grace, RUNQ_KILL_GRACE (seconds)
  std::size_t max_output = 16u << 20;       // --max-output, RUNQ_MAX_OUTPUT (bytes)
  std::string openai_base_url = "https://api.openai.com/v1";  // --openai-base-url, OPENAI_BASE_URL
  std::string openai_api_key;               // OPENAI_API_KEY (environment only)
  std::string model = "gpt-4o-mini";        // --model, OPENAI_MODEL_NAME
  std::optional<std::string> ca_file;       // --ca-file, RUNQ_CA_FILE (extra trusted CAs)
  int max_retries = jobs::defaults::kMaxRetries;        // --max-retries, RUNQ_MAX_RETRIES (cap per job)
  double retry_delay = 1.0;                 // --retry-delay, RUNQ_RETRY_DELAY (seconds)
  std::string webhook_secret;               // --webhook-secret, RUNQ_WEBHOOK_SECRET
  bool allow_private_webhooks = false;      // --allow-private-webhooks
  int webhook_max_attempts = 12;            // --webhook-max-attempts
  std::string log_level = "info";           // --log-level, RUNQ_LOG_LEVEL
  std::string log_format = "text";          // --log-format, RUNQ_LOG_FORMAT: text|json
  std::string check_db = "after-crash";     // --check-db, RUNQ_CHECK_DB: full|after-crash|off
  std::string access_log = "on";            // --access-log, RUNQ_ACCESS_LOG: on|off
  std::optional<std::string> public_url;    // --public-url, RUNQ_PUBLIC_URL
  int io_threads = 0;                       // --io-threads, RUNQ_IO_THREADS (0 = cores)
  std::int64_t max_queued = jobs::defaults::kMaxQueued;  // --max-queued, RUNQ_MAX_QUEUED (429 beyond)
  std::int64_t retention = jobs::defaults::kRetentionS;  // --retention, RUNQ_RETENTION (s; 0 = forever)
  int max_attempts = jobs::defaults::kMaxAttempts;      // --max-attempts, RUNQ_MAX_ATTEMPTS (0 = no limit)
  std::size_t max_connections = 10000;      // --max-connections, RUNQ_MAX_CONNECTIONS (503 beyond)
  std::size_t max_header_bytes = 16384;     // --max-header-bytes, RUNQ_MAX_HEADER_BYTES (431 beyond)
  int header_timeout = 10;                  // --header-timeout, RUNQ_HEADER_TIMEOUT (s)
  int idle_timeout = 60;                    // --idle-timeout, RUNQ_IDLE_TIMEOUT (s)
  int body_timeout = 30;                    // --body-timeout, RUNQ_BODY_TIMEOUT (s)
  int write_timeout = 30;                   // --write-timeout, RUNQ_WRITE_TIMEOUT (s)
  int drain_timeout = 30;                   // --drain-timeout, RUNQ_DRAIN_TIMEOUT (s)
  // --api-key (repeatable) and PRAISONAI_JOBS_API_KEY (one more). Never logged.
  std::vector<std::string> api_keys;
  std::optional<std::string> api_keys_file;  // --api-keys-file, RUNQ_API_KEYS_FILE (SIGHUP reloads)
  bool insecure_no_auth = false;            // --insecure-no-auth: allow a non-loopback bind without keys
  std::vector<std::string> allowed_hosts;   // --allowed-host (repeatable), RUNQ_ALLOWED_HOSTS (comma-separated)
  std::vector<std::string> cors_origins;    // --cors-origin (repeatable), RUNQ_CORS_ORIGINS (comma-separated)

  // Whether API keys are required: a key was given or a keys file is configured (an
  // empty file then lets nobody in until a reload adds keys).
  bool auth_enabled() const { return !api_keys.empty() || api_keys_file.has_value(); }
};

// True for an address that only this machine can reach: 127.0.0.0/8, ::1 (also
// ::ffff:127.x.y.z) and "localhost". Anything else — 0.0.0.0, ::, a LAN address, a
// host name — is reachable from elsewhere.
bool is_loopback_host(const std::string& host);

// The message of the refusal to serve a non-loopback address without keys, or nullopt
// if `cfg` may start (loopback, keys configured, or --insecure-no-auth).
std::optional<std::string> refuse_unprotected(const ServeConfig& cfg);

// Parses the arguments after `serve`. On --help or a bad flag it prints the message
// and returns the exit code to use; otherwise returns nullopt and fills `out`.
std::optional<int> parse_serve(const std::vector<std::string>& args, ServeConfig& out);

}  // namespace runq::config
