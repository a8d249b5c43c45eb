// What the client commands print.
#include "output.hpp"

#include "common.hpp"

#include "runq/util/utf8.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <vector>

namespace runq::cli {
namespace {

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

// A list item's prompt_preview on one line of at most `max_chars` characters: whitespace
// and control characters (a prompt's escape sequences must not reach the terminal) become
// one space.
std::string one_line_prompt(const json& job, std::size_t max_chars = 40) {
  const std::string preview = string_or(job, "prompt_preview", "");
  std::string out;
  std::size_t chars = 0;
  std::size_t i = 0;
  while (i < preview.size() && chars < max_chars) {
    const auto c = static_cast<unsigned char>(preview[i]);
    const std::size_t n = std::max<std::size_t>(1, util::utf8_sequence_length(preview, i));
    if (c < 0x20 || c == 0x7f || c == ' ') {
      if (!out.empty() && out.back() != ' ') {
        out += ' ';
        ++chars;
      }
    } else {
      out.append(preview, i, n);
      ++chars;
    }
    i += n;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (i < preview.size()) out += "\u2026";  // more than fits
  return out.empty() ? "-" : out;
}

// One entry of a 422's detail list: "  body.timeout: message".
void print_validation_error(const json& e) {
  std::string loc;
  if (e.is_object() && e.contains("loc") && e["loc"].is_array()) {
    for (const auto& part : e["loc"]) {
      if (!loc.empty()) loc += '.';
      loc += part.is_string() ? part.get<std::string>() : part.dump();
    }
  }
  std::cerr << "  " << (loc.empty() ? "" : loc + ": ") << string_or(e, "msg", e.dump()) << '\n';
}

// An event as one JSON line: {"event":..., "id": number|string|null, "data": ...}.
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

}  // namespace

void print_line(std::string_view text) {
  std::cout << text;
  if (text.empty() || text.back() != '\n') std::cout << '\n';
  std::cout.flush();
}

std::string string_or(const json& j, const char* key, std::string fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

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

void print_result_text(const json& result_doc) {
  auto it = result_doc.find("result");
  if (it == result_doc.end() || it->is_null()) return;
  if (it->is_string()) print_line(it->get<std::string>());
  else print_line(it->dump());
}

void print_job_table(const json& doc) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"JOB_ID", "STATUS", "PROGRESS", "CREATED", "SESSION", "STEP", "PROMPT"});
  if (auto it = doc.find("jobs"); it != doc.end() && it->is_array()) {
    for (const auto& job : *it) {
      std::string step = current_step(job);
      rows.push_back({string_or(job, "job_id"), string_or(job, "status"),
                      format_percentage(job), string_or(job, "created_at"),
                      string_or(job, "session_id"), step.empty() ? "-" : step,
                      one_line_prompt(job)});
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
}

int report_error(const http::ClientResponse& r, bool as_json) {
  const json body = json::parse(r.body, nullptr, false);
  if (as_json && !body.is_discarded() && !r.body.empty()) print_line(r.body);
  if (body.is_object() && body.contains("detail")) {
    const json& detail = body["detail"];
    if (detail.is_string()) {
      std::cerr << "runq: " << detail.get<std::string>() << '\n';
    } else if (detail.is_array()) {
      std::cerr << "runq: the server rejected the request (" << r.status << "):\n";
      for (const auto& e : detail) print_validation_error(e);
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

// ---- progress line on a terminal ---------------------------------------------------

ProgressLine::ProgressLine() : enabled_(::isatty(STDERR_FILENO) == 1) {}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::show(const std::string& text) {
  if (!enabled_) return;
  std::cerr << "\r\033[2K" << text << std::flush;
  shown_ = true;
}

void ProgressLine::clear() {
  if (enabled_ && shown_) std::cerr << "\r\033[2K" << std::flush;
  shown_ = false;
}

// ---- the event stream --------------------------------------------------------------

std::optional<int> StreamPrinter::on_event(const SseEvent& ev) {
  ++events_;
  const auto line = event_to_json(ev);
  const json data = json::parse(line["data"].dump());
  if (as_json_) std::cout << line.dump() << '\n' << std::flush;
  else show(ev, data);

  if (ev.event == "result") return kExitOk;
  if (ev.event == "error") {
    std::cerr << "runq: job failed: " << string_or(data, "error", "") << '\n';
    return kExitRefused;
  }
  if (ev.event == "cancelled") {
    std::cerr << "runq: " << string_or(data, "message", "job was cancelled") << '\n';
    return kExitRefused;
  }
  return std::nullopt;
}

// Without --json: status and progress on stderr, the job's output (or its result when
// it streamed no output) on stdout. Heartbeats and unknown events are not shown.
void StreamPrinter::show(const SseEvent& ev, const json& data) {
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
  }
}

}  // namespace runq::cli
