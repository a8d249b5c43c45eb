#pragma once
// What the commands print: the human lines and tables, the server's JSON documents,
// the server's refusals, the progress line and the event stream.
#include "runq/http/client.hpp"
#include "sse.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace runq::cli {

using json = nlohmann::json;

// `text` on stdout, with a newline unless it ends with one.
void print_line(std::string_view text);

// j[key] as text ("-" or `fallback` when missing or null; non-strings as JSON).
std::string string_or(const json& j, const char* key, std::string fallback = "-");

// "run_x  running  30%  step" (plus "  error: ..." for failed/cancelled jobs).
std::string status_line(const json& status);

// A job's result document: its `result`, as text when it is a string.
void print_result_text(const json& result_doc);

// The list answer as a table plus a "page N, M shown of T total" line.
void print_job_table(const json& list_doc);

// The server said no: its `detail` on stderr (and with --json its document on stdout).
// Returns kExitRefused.
int report_error(const http::ClientResponse& r, bool as_json);

// A status line redrawn in place on stderr, when stderr is a terminal.
class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine();
  bool enabled() const { return enabled_; }
  void show(const std::string& text);
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
};

// Prints a job's events: as JSON lines with --json, else output on stdout and the rest
// on stderr.
class StreamPrinter {
 public:
  explicit StreamPrinter(bool as_json) : as_json_(as_json) {}

  // Prints one event; returns the exit status once the stream's final event is in.
  std::optional<int> on_event(const SseEvent& ev);

  long events() const { return events_; }

 private:
  void show(const SseEvent& ev, const json& data);

  bool as_json_;
  long events_ = 0;
  bool printed_output_ = false;
  bool at_line_start_ = true;
};

}  // namespace runq::cli
