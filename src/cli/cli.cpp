// The `runq` client commands: submit, status, result, cancel, delete, list, stream, wait.
#include "runq/cli/cli.hpp"

#include "runq/http/client.hpp"
#include "sse.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace runq::cli {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

constexpr const char* kDefaultApiUrl = "http://127.0.0.1:8005";
constexpr auto kRequestTimeout = std::chrono::seconds(75);
constexpr int kMaxLongPollSeconds = 60;          // the server's cap on ?wait=N
constexpr int kTtyLongPollSeconds = 1;           // short polls keep the progress line live
constexpr auto kMinPollInterval = std::chrono::milliseconds(250);
constexpr int kMaxStreamReconnects = 5;

// Bad usage found after CLI11 parsed the flags (bad JSON, bad K=V, bad URL).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown from the SSE sink to stop reading once the stream's final event is in.
struct StreamDone {};

struct Common {
  bool json = false;
  std::string api_url = kDefaultApiUrl;
  std::string api_key;
};

bool is_terminal(std::string_view status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void print_line(std::string_view text) {
  std::cout << text;
  if (text.empty() || text.back() != '\n') std::cout << '\n';
  std::cout.flush();
}

std::string string_or(const json& j, const char* key, std::string fallback = "-") {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string format_percentage(const json& status) {
  double pct = 0;
  if (status.is_object()) {
    auto p = status.find("progress");
    if (p != status.end() && p->is_object()) {
      auto v = p->find("percentage");
      if (v != p->end() && v->is_number()) pct = v->get<double>();
    }
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", std::floor(pct + 1e-9));
  return buf;
}

std::string current_step(const json& status) {
  if (!status.is_object()) return {};
  auto p = status.find("progress");
  if (p == status.end() || !p->is_object()) return {};
  return string_or(*p, "current_step", "");
}

// "run_x  running  30%  step"
std::string status_line(const json& status) {
  std::string line = string_or(status, "job_id") + "  " + string_or(status, "status") + "  " +
                     format_percentage(status);
  if (auto step = current_step(status); !step.empty()) line += "  " + step;
  const std::string st = string_or(status, "status", "");
  if (st == "failed" || st == "cancelled") {
    if (auto err = string_or(status, "error", ""); !err.empty()) line += "  error: " + err;
  }
  return line;
}

// Talks to the server; every path is relative to the API base URL.
class Api {
 public:
  explicit Api(const Common& c) : common_(c) {
    base_ = c.api_url;
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
    std::string scheme = base_.substr(0, 7);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (scheme != "http://" || base_.size() <= 7)
      throw UsageError("--api-url must be an http:// URL, got: " + c.api_url);
  }

  std::string url(const std::string& path) const { return base_ + path; }

  std::vector<http::Header> headers() const {
    std::vector<http::Header> h;
    if (!common_.api_key.empty()) h.push_back({"Authorization", "Bearer " + common_.api_key});
    return h;
  }

  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& body = {},
                            std::chrono::seconds timeout = kRequestTimeout) const {
    return http::request(method, url(path), body, headers(), timeout);
  }

  const std::string& base() const { return base_; }

 private:
  Common common_;
  std::string base_;
};

std::string job_path(const std::string& id) { return "/api/v1/runs/" + percent_encode(id); }

bool ok(const http::ClientResponse& r) { return r.status >= 200 && r.status < 300; }

// The server said no: its `detail` on stderr (and with --json its document on stdout).
int report_error(const http::ClientResponse& r, bool as_json) {
  const json body = json::parse(r.body, nullptr, false);
  if (as_json && !body.is_discarded() && !r.body.empty()) print_line(r.body);
  if (body.is_object() && body.contains("detail")) {
    const json& detail = body["detail"];
    if (detail.is_string()) {
      std::cerr << "runq: " << detail.get<std::string>() << '\n';
    } else if (detail.is_array()) {
      std::cerr << "runq: the server rejected the request (" << r.status << "):\n";
      for (const auto& e : detail) {
        std::string loc;
        if (e.is_object() && e.contains("loc") && e["loc"].is_array()) {
          for (const auto& part : e["loc"]) {
            if (!loc.empty()) loc += '.';
            loc += part.is_string() ? part.get<std::string>() : part.dump();
          }
        }
        std::cerr << "  " << (loc.empty() ? "" : loc + ": ") << string_or(e, "msg", e.dump())
                  << '\n';
      }
    } else {
      std::cerr << "runq: " << detail.dump() << '\n';
    }
    if (auto it = body.find("error"); it != body.end() && it->is_string())
      std::cerr << "runq: error: " << it->get<std::string>() << '\n';
  } else {
    std::cerr << "runq: the server answered " << r.status;
    if (!r.body.empty()) std::cerr << ": " << r.body;
    std::cerr << '\n';
  }
  return kExitRefused;
}

json parse_object(const http::ClientResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object())
    throw std::runtime_error("the server sent an unexpected answer: " + r.body.substr(0, 200));
  return j;
}

void print_result_text(const json& result_doc) {
  auto it = result_doc.find("result");
  if (it == result_doc.end() || it->is_null()) return;
  if (it->is_string()) print_line(it->get<std::string>());
  else print_line(it->dump());
}

// ---- progress line on a terminal ---------------------------------------------------

class ProgressLine {
 public:
  ProgressLine() : enabled_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressLine() { clear(); }
  bool enabled() const { return enabled_; }
  void show(const std::string& text) {
    if (!enabled_) return;
    std::cerr << "\r\033[2K" << text << std::flush;
    shown_ = true;
  }
  void clear() {
    if (enabled_ && shown_) std::cerr << "\r\033[2K" << std::flush;
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
};

// ---- wait ---------------------------------------------------------------------------

// Polls (long-poll) until the job is terminal or `timeout_s` (0 = forever) passes.
int wait_for_job(const Api& api, const std::string& id, double timeout_s, bool as_json) {
  ProgressLine progress;
  std::optional<Clock::time_point> deadline;
  if (timeout_s > 0)
    deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(timeout_s));
  const int poll_seconds = progress.enabled() ? kTtyLongPollSeconds : kMaxLongPollSeconds;

  http::ClientResponse last;
  json status;
  while (true) {
    int wait_s = poll_seconds;
    if (deadline) {
      const double remaining =
          std::chrono::duration<double>(*deadline - Clock::now()).count();
      if (remaining <= 0) {
        progress.clear();
        std::cerr << "runq: gave up waiting for " << id << " after " << timeout_s
                  << "s (status: " << string_or(status, "status", "unknown") << ")\n";
        return kExitRefused;
      }
      wait_s = std::min(wait_s, static_cast<int>(remaining));  // 0 when under a second
    }
    const auto started = Clock::now();
    last = api.call("GET", job_path(id) + "?wait=" + std::to_string(wait_s), {},
                    std::chrono::seconds(wait_s + 30));
    if (!ok(last)) {
      progress.clear();
      return report_error(last, as_json);
    }
    status = parse_object(last);
    const std::string st = string_or(status, "status", "");
    if (is_terminal(st)) break;
    progress.show(status_line(status));
    // A server that ignores ?wait answers at once: don't spin.
    auto pause = kMinPollInterval - (Clock::now() - started);
    if (deadline) pause = std::min<Clock::duration>(pause, *deadline - Clock::now());
    if (pause > Clock::duration::zero()) std::this_thread::sleep_for(pause);
  }
  progress.clear();

  const std::string st = string_or(status, "status", "");
  if (as_json) {
    print_line(last.body);
    return st == "succeeded" ? kExitOk : kExitRefused;
  }
  if (st == "succeeded") {
    auto r = api.call("GET", job_path(id) + "/result");
    if (!ok(r)) return report_error(r, false);
    print_result_text(parse_object(r));
    return kExitOk;
  }
  const std::string err = string_or(status, "error", "");
  if (st == "failed")
    std::cerr << "runq: job " << id << " failed" << (err.empty() ? "" : ": " + err) << '\n';
  else
    std::cerr << "runq: job " << id << " was cancelled" << (err.empty() ? "" : ": " + err)
              << '\n';
  return kExitRefused;
}

// ---- submit -------------------------------------------------------------------------

struct SubmitArgs {
  std::string prompt;
  std::string agent_file, agent_yaml, recipe, recipe_config, config, framework;
  int timeout = 0;
  std::string session_id, idempotency_key, idempotency_scope, webhook_url;
  int priority = 0;
  int max_retries = 0;
  std::vector<std::string> metadata;
  bool wait = false;
};

json parse_json_object_flag(const std::string& flag, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw UsageError(flag + " is not valid JSON: " + text);
  if (!j.is_object()) throw UsageError(flag + " must be a JSON object, got: " + text);
  return j;
}

int cmd_submit(const Common& common, const SubmitArgs& a, const CLI::App& sub) {
  auto given = [&](const char* name) { return sub.count(name) > 0; };
  json body = {{"prompt", a.prompt}};
  if (given("--agent-file")) body["agent_file"] = a.agent_file;
  if (given("--agent-yaml")) body["agent_yaml"] = a.agent_yaml;
  if (given("--recipe")) body["recipe_name"] = a.recipe;
  if (given("--recipe-config"))
    body["recipe_config"] = parse_json_object_flag("--recipe-config", a.recipe_config);
  if (given("--config")) body["config"] = parse_json_object_flag("--config", a.config);
  if (given("--framework")) body["framework"] = a.framework;
  if (given("--timeout")) body["timeout"] = a.timeout;
  if (given("--session-id")) body["session_id"] = a.session_id;
  if (given("--idempotency-key")) body["idempotency_key"] = a.idempotency_key;
  if (given("--idempotency-scope")) body["idempotency_scope"] = a.idempotency_scope;
  if (given("--webhook-url")) body["webhook_url"] = a.webhook_url;
  if (given("--priority")) body["priority"] = a.priority;
  if (given("--max-retries")) body["max_retries"] = a.max_retries;
  if (!a.metadata.empty()) {
    json md = json::object();
    for (const auto& kv : a.metadata) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw UsageError("--metadata takes KEY=VALUE, got: " + kv);
      md[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    body["metadata"] = std::move(md);
  }

  Api api(common);
  auto r = api.call("POST", "/api/v1/runs", body.dump());
  if (!ok(r)) return report_error(r, common.json);
  const json doc = parse_object(r);
  const std::string id = string_or(doc, "job_id", "");
  if (id.empty()) throw std::runtime_error("the server's answer has no job_id: " + r.body);
  if (!a.wait) {
    if (common.json) print_line(r.body);
    else print_line(id);
    return kExitOk;
  }
  if (!common.json && ::isatty(STDERR_FILENO) == 1) std::cerr << "submitted " << id << '\n';
  return wait_for_job(api, id, 0, common.json);
}

// ---- status, result, cancel, delete, list -------------------------------------------

int cmd_status(const Common& common, const std::string& id) {
  Api api(common);
  auto r = api.call("GET", job_path(id));
  if (!ok(r)) return report_error(r, common.json);
  if (common.json) print_line(r.body);
  else print_line(status_line(parse_object(r)));
  return kExitOk;
}

int cmd_result(const Common& common, const std::string& id) {
  Api api(common);
  auto r = api.call("GET", job_path(id) + "/result");
  if (!ok(r)) return report_error(r, common.json);
  if (common.json) print_line(r.body);
  else print_result_text(parse_object(r));
  return kExitOk;
}

int cmd_cancel(const Common& common, const std::string& id) {
  Api api(common);
  auto r = api.call("POST", job_path(id) + "/cancel");
  if (!ok(r)) return report_error(r, common.json);
  if (common.json) print_line(r.body);
  else print_line(status_line(parse_object(r)));
  return kExitOk;
}

int cmd_delete(const Common& common, const std::string& id) {
  Api api(common);
  auto r = api.call("DELETE", job_path(id));
  if (!ok(r)) return report_error(r, common.json);
  if (common.json) {
    if (!r.body.empty()) print_line(r.body);
  } else {
    print_line("deleted " + id);
  }
  return kExitOk;
}

struct ListArgs {
  std::string status, session_id;
  int page = 1, page_size = 20;
};

int cmd_list(const Common& common, const ListArgs& a, const CLI::App& sub) {
  std::string query;
  auto add = [&](const char* name, const std::string& value) {
    query += query.empty() ? '?' : '&';
    query += name;
    query += '=';
    query += percent_encode(value);
  };
  if (sub.count("--status")) add("status", a.status);
  if (sub.count("--session-id")) add("session_id", a.session_id);
  if (sub.count("--page")) add("page", std::to_string(a.page));
  if (sub.count("--page-size")) add("page_size", std::to_string(a.page_size));

  Api api(common);
  auto r = api.call("GET", "/api/v1/runs" + query);
  if (!ok(r)) return report_error(r, common.json);
  if (common.json) {
    print_line(r.body);
    return kExitOk;
  }
  const json doc = parse_object(r);
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"JOB_ID", "STATUS", "PROGRESS", "CREATED", "SESSION", "STEP"});
  if (auto it = doc.find("jobs"); it != doc.end() && it->is_array()) {
    for (const auto& job : *it) {
      std::string step = current_step(job);
      rows.push_back({string_or(job, "job_id"), string_or(job, "status"),
                      format_percentage(job), string_or(job, "created_at"),
                      string_or(job, "session_id"), step.empty() ? "-" : step});
    }
  }
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << '\n';
  }
  std::cout << out.str();
  const long long total = doc.value("total", 0LL);
  const long long page = doc.value("page", 1LL);
  const long long size = doc.value("page_size", 20LL);
  std::cout << "page " << page << ", " << (rows.size() - 1) << " shown of " << total
            << " total (page size " << size << ")\n";
  std::cout.flush();
  return kExitOk;
}

// ---- stream -------------------------------------------------------------------------

nlohmann::ordered_json event_to_json(const SseEvent& ev) {
  using ojson = nlohmann::ordered_json;
  ojson line = ojson::object();
  line["event"] = ev.event;
  if (!ev.id) {
    line["id"] = nullptr;
  } else {
    const std::string& id = *ev.id;
    const bool numeric = !id.empty() && id.size() <= 18 &&
                         std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) line["id"] = std::stoll(id);
    else line["id"] = id;
  }
  ojson data = ojson::parse(ev.data, nullptr, false);
  line["data"] = data.is_discarded() ? ojson(ev.data) : std::move(data);
  return line;
}

class StreamPrinter {
 public:
  explicit StreamPrinter(bool as_json) : as_json_(as_json) {}

  // Prints one event; returns the exit status once the stream's final event is in.
  std::optional<int> on_event(const SseEvent& ev) {
    ++events_;
    const auto line = event_to_json(ev);
    const json data = json::parse(line["data"].dump());
    std::optional<int> done;
    if (ev.event == "result") done = kExitOk;
    else if (ev.event == "error" || ev.event == "cancelled") done = kExitRefused;

    if (as_json_) {
      std::cout << line.dump() << '\n' << std::flush;
      if (done && *done != kExitOk) {
        if (ev.event == "error") std::cerr << "runq: job failed: " << string_or(data, "error", "") << '\n';
        else std::cerr << "runq: " << string_or(data, "message", "job was cancelled") << '\n';
      }
      return done;
    }
    if (ev.event == "status") {
      std::cerr << "status: " << string_or(data, "status") << '\n';
    } else if (ev.event == "progress") {
      std::string text = "progress: " + format_percentage(json{{"progress", data}});
      if (auto step = string_or(data, "step", ""); !step.empty()) text += "  " + step;
      std::cerr << text << '\n';
    } else if (ev.event == "output") {
      const std::string delta = string_or(data, "delta", "");
      std::cout << delta << std::flush;
      if (!delta.empty()) {
        printed_output_ = true;
        at_line_start_ = delta.back() == '\n';
      }
    } else if (ev.event == "result") {
      if (!printed_output_) {
        print_result_text(data.is_object() ? data : json::object());
      } else if (!at_line_start_) {
        std::cout << '\n' << std::flush;
      }
    } else if (ev.event == "error") {
      std::cerr << "runq: job failed: " << string_or(data, "error", "") << '\n';
    } else if (ev.event == "cancelled") {
      std::cerr << "runq: " << string_or(data, "message", "job was cancelled") << '\n';
    }
    // heartbeats and unknown events are not shown
    return done;
  }

  long events() const { return events_; }

 private:
  bool as_json_;
  long events_ = 0;
  bool printed_output_ = false;
  bool at_line_start_ = true;
};

int cmd_stream(const Common& common, const std::string& id) {
  Api api(common);
  SseParser parser;
  StreamPrinter printer(common.json);
  int exit_code = kExitOk;
  int reconnects = 0;
  while (true) {
    auto headers = api.headers();
    if (!parser.last_event_id().empty())
      headers.push_back({"Last-Event-ID", parser.last_event_id()});
    try {
      auto r = http::stream(api.url(job_path(id) + "/stream"), headers,
                            [&](std::string_view bytes) {
                              parser.feed(bytes, [&](const SseEvent& ev) {
                                if (auto done = printer.on_event(ev)) {
                                  exit_code = *done;
                                  throw StreamDone{};
                                }
                              });
                            });
      if (!ok(r)) return report_error(r, common.json);
      // The body ended without a final event: the connection was cut.
      if (printer.events() == 0 || ++reconnects > kMaxStreamReconnects) {
        std::cerr << "runq: the event stream ended before the job finished\n";
        return kExitRefused;
      }
    } catch (const StreamDone&) {
      return exit_code;
    } catch (const http::ConnectionError&) {
      if (printer.events() == 0 || ++reconnects > kMaxStreamReconnects) throw;
    }
    parser.reset_partial();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// ---- the command line ---------------------------------------------------------------

// Each command has its own Common: CLI11 fills an option's environment default even for
// commands that were not given, so sharing one variable would let RUNQ_API_URL win
// over --api-url.
Common& add_common(CLI::App* sub, std::deque<Common>& storage) {
  Common& c = storage.emplace_back();
  sub->add_flag("--json", c.json, "Print the server's JSON document on stdout");
  sub->add_option("--api-url", c.api_url, "Base URL of the runq server")
      ->envname("RUNQ_API_URL")
      ->default_str(kDefaultApiUrl);
  sub->add_option("--api-key", c.api_key, "API key sent as a Bearer token")
      ->envname("RUNQ_API_KEY");
  return c;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"runq: an async-job HTTP server and its client", "runq"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "runq 0.1.0");
  app.footer(
      "Run `runq serve --help` for the server's flags, `runq <command> --help` for a "
      "command's.\nExit status: 0 success, 1 the server said no (or the job failed or was "
      "cancelled under wait), 2 bad usage, 3 server unreachable.");

  std::deque<Common> commons;
  std::vector<std::pair<CLI::App*, Common*>> command_common;
  auto add_common_to = [&](CLI::App* sub) { command_common.emplace_back(sub, &add_common(sub, commons)); };
  std::string id;
  int rc = kExitOk;

  auto* serve = app.add_subcommand("serve", "Run the runq HTTP server (see runq serve --help)");
  serve->allow_extras();
  serve->prefix_command();

  SubmitArgs submit_args;
  auto* submit = app.add_subcommand("submit", "Submit a job; prints its id");
  submit->add_option("prompt", submit_args.prompt, "The input the agent works on")->required();
  submit->add_option("--agent-file", submit_args.agent_file, "Agent file, passed to the agent");
  submit->add_option("--agent-yaml", submit_args.agent_yaml, "Agent YAML, passed to the agent");
  submit->add_option("--recipe", submit_args.recipe, "Recipe name (recipe_name)");
  submit->add_option("--recipe-config", submit_args.recipe_config, "Recipe config (JSON object)");
  submit->add_option("--config", submit_args.config,
                     "Agent config (JSON object), e.g. '{\"sleep_seconds\": 2, \"steps\": 4}'");
  submit->add_option("--framework", submit_args.framework, "Framework (default praisonai)");
  submit->add_option("--timeout", submit_args.timeout, "Seconds of running time allowed");
  submit->add_option("--session-id", submit_args.session_id, "Session id (a list filter)");
  submit->add_option("--idempotency-key", submit_args.idempotency_key,
                     "Submitting again with this key returns the first job");
  submit->add_option("--idempotency-scope", submit_args.idempotency_scope,
                     "none, session or global")
      ->check(CLI::IsMember({"none", "session", "global"}));
  submit->add_option("--webhook-url", submit_args.webhook_url, "URL POSTed when the job ends");
  submit->add_option("--priority", submit_args.priority, "-100..100, higher runs first");
  submit->add_option("--max-retries", submit_args.max_retries, "Re-run a failed job (0..10)");
  submit->add_option("--metadata", submit_args.metadata, "KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  submit->add_flag("--wait", submit_args.wait,
                   "Wait until the job ends, then print its result (like `runq wait`)");
  add_common_to(submit);

  auto add_id_command = [&](const char* name, const char* help) {
    auto* sub = app.add_subcommand(name, help);
    sub->add_option("id", id, "The job id (run_...)")->required();
    add_common_to(sub);
    return sub;
  };
  auto* status = add_id_command("status", "Show a job's status");
  auto* result = add_id_command("result", "Print a succeeded job's result");
  auto* cancel = add_id_command("cancel", "Cancel a queued or running job");
  auto* del = add_id_command("delete", "Delete a finished job");
  auto* stream = add_id_command("stream", "Follow a job's events until it ends");
  double wait_timeout = 0;
  auto* wait = add_id_command("wait", "Wait until a job ends; print its result");
  wait->add_option("--timeout", wait_timeout, "Give up after this many seconds (default: never)")
      ->check(CLI::NonNegativeNumber);

  ListArgs list_args;
  auto* list = app.add_subcommand("list", "List jobs, newest first");
  list->add_option("--status", list_args.status,
                   "queued, running, succeeded, failed or cancelled");
  list->add_option("--session-id", list_args.session_id, "Only this session's jobs");
  list->add_option("--page", list_args.page, "Page number (from 1)");
  list->add_option("--page-size", list_args.page_size, "Jobs per page (1..100)");
  add_common_to(list);

  if (argc < 2) {
    std::cerr << app.help();
    return kExitUsage;
  }
  if (const std::string_view command = argv[1]; !command.empty() && command.front() != '-') {
    bool known = false;
    for (const auto& [name, sub] : std::initializer_list<std::pair<std::string_view, CLI::App*>>{
             {"serve", serve}, {"submit", submit}, {"status", status}, {"result", result},
             {"cancel", cancel}, {"delete", del}, {"stream", stream}, {"wait", wait},
             {"list", list}})
      known = known || (name == command && sub);
    if (!known) {
      std::cerr << "runq: unknown command '" << command << "'\nRun `runq --help` for the commands.\n";
      return kExitUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  Common common;
  for (const auto& [sub, c] : command_common)
    if (sub->parsed()) common = *c;

  try {
    if (*serve) {
      std::cerr << "runq: `serve` is handled by the server entry point\n";
      rc = kExitUsage;
    } else if (*submit) {
      rc = cmd_submit(common, submit_args, *submit);
    } else if (*status) {
      rc = cmd_status(common, id);
    } else if (*result) {
      rc = cmd_result(common, id);
    } else if (*cancel) {
      rc = cmd_cancel(common, id);
    } else if (*del) {
      rc = cmd_delete(common, id);
    } else if (*list) {
      rc = cmd_list(common, list_args, *list);
    } else if (*stream) {
      rc = cmd_stream(common, id);
    } else if (*wait) {
      rc = wait_for_job(Api(common), id, wait_timeout, common.json);
    }
  } catch (const UsageError& e) {
    std::cerr << "runq: " << e.what() << '\n';
    return kExitUsage;
  } catch (const std::invalid_argument& e) {
    std::cerr << "runq: " << e.what() << '\n';
    return kExitUsage;
  } catch (const http::ConnectionError& e) {
    std::cerr << "runq: cannot reach the runq server at " << common.api_url << ": " << e.what()
              << '\n';
    return kExitUnreachable;
  } catch (const std::exception& e) {
    std::cerr << "runq: " << e.what() << '\n';
    return kExitRefused;
  }
  return rc;
}

}  // namespace runq::cli
