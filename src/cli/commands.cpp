// The `runq` client commands: submit, status, result, cancel, delete, list, stream, wait.
#include "commands.hpp"

#include "output.hpp"
#include "runq/http/client.hpp"
#include "runq/util/url.hpp"
#include "sse.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <thread>
#include <variant>

namespace runq::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kRequestTimeout = std::chrono::seconds(75);
constexpr int kMaxLongPollSeconds = 60;          // the server's cap on ?wait=N
constexpr int kTtyLongPollSeconds = 1;           // short polls keep the progress line live
constexpr auto kMinPollInterval = std::chrono::milliseconds(250);
constexpr int kMaxStreamReconnects = 5;

// Thrown from the SSE sink to stop reading once the stream's final event is in.
struct StreamDone {};

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

// Talks to the server; every path is relative to the API base URL.
class Api {
 public:
  explicit Api(const Common& c) : common_(c) {
    base_ = c.api_url;
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
    // Read as the HTTP client will read it; https is not offered (the server speaks http).
    const auto parsed = util::parse_url(base_);
    const auto* url = std::get_if<util::Url>(&parsed);
    if (!url || url->tls)
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

 private:
  Common common_;
  std::string base_;
};

std::string job_path(const std::string& id) { return "/api/v1/runs/" + percent_encode(id); }

bool ok(const http::ClientResponse& r) { return r.status >= 200 && r.status < 300; }

json parse_object(const http::ClientResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object())
    throw std::runtime_error("the server sent an unexpected answer: " + r.body.substr(0, 200));
  return j;
}

// One request whose answer is a JSON document: printed as is with --json, else through
// `print_human`.
int call_and_print(const Common& common, const std::string& method, const std::string& path,
                   void (*print_human)(const json& doc)) {
  Api api(common);
  auto r = api.call(method, path);
  if (!ok(r)) return report_error(r, common.json);
  if (common.json) print_line(r.body);
  else print_human(parse_object(r));
  return kExitOk;
}

void print_status_line(const json& status) { print_line(status_line(status)); }

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
  std::cerr << "runq: job " << id << (st == "failed" ? " failed" : " was cancelled")
            << (err.empty() ? "" : ": " + err) << '\n';
  return kExitRefused;
}

json parse_json_object_flag(const std::string& flag, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw UsageError(flag + " is not valid JSON: " + text);
  if (!j.is_object()) throw UsageError(flag + " must be a JSON object, got: " + text);
  return j;
}

// The submit request's body: the prompt plus every field whose flag was given.
json submit_body(const SubmitArgs& a, const Given& given) {
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
  return body;
}

}  // namespace

// ---- submit -------------------------------------------------------------------------

int cmd_submit(const Common& common, const SubmitArgs& a, const Given& given) {
  const json body = submit_body(a, given);
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

// ---- status, result, cancel, delete, list, wait -------------------------------------

int cmd_status(const Common& common, const std::string& id) {
  return call_and_print(common, "GET", job_path(id), print_status_line);
}

int cmd_result(const Common& common, const std::string& id) {
  return call_and_print(common, "GET", job_path(id) + "/result", print_result_text);
}

int cmd_cancel(const Common& common, const std::string& id) {
  return call_and_print(common, "POST", job_path(id) + "/cancel", print_status_line);
}

int cmd_delete(const Common& common, const std::string& id) {
  Api api(common);
  auto r = api.call("DELETE", job_path(id));
  if (!ok(r)) return report_error(r, common.json);
  if (!common.json) print_line("deleted " + id);
  else if (!r.body.empty()) print_line(r.body);  // a 204 has none
  return kExitOk;
}

int cmd_list(const Common& common, const ListArgs& a, const Given& given) {
  std::string query;
  auto add = [&](const char* name, const std::string& value) {
    query += query.empty() ? '?' : '&';
    query += name;
    query += '=';
    query += percent_encode(value);
  };
  if (given("--status")) add("status", a.status);
  if (given("--session-id")) add("session_id", a.session_id);
  if (given("--page")) add("page", std::to_string(a.page));
  if (given("--page-size")) add("page_size", std::to_string(a.page_size));
  return call_and_print(common, "GET", "/api/v1/runs" + query, print_job_table);
}

int cmd_wait(const Common& common, const std::string& id, double timeout_s) {
  return wait_for_job(Api(common), id, timeout_s, common.json);
}

// ---- stream -------------------------------------------------------------------------

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

}  // namespace runq::cli
