#include "response_head.hpp"

#include "runq/util/ascii.hpp"

#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <ctime>
#include <iterator>

namespace runq::http {

namespace {
namespace bhttp = boost::beast::http;

std::string detail_body(std::string_view detail) {
  return nlohmann::json{{"detail", detail}}.dump();
}

// A header from the api layer goes out verbatim; refuse anything that could split it.
bool header_is_safe(const Header& h) {
  if (h.name.empty()) return false;
  for (char ch : h.name)
    if (ch == ':' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') return false;
  for (char ch : h.value)
    if (ch == '\r' || ch == '\n') return false;
  return true;
}

// We own message framing: the api layer must not set these.
bool is_framing_header(std::string_view name) {
  return util::iequals(name, "content-length") || util::iequals(name, "transfer-encoding") ||
         util::iequals(name, "connection");
}

// The Date header value (RFC 9110 asks origin servers to send one), formatted at most
// once per second per thread.
std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local char text[40] = {};
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  }
  return text;
}

}  // namespace

Response error_response(int status, std::string_view detail) {
  Response r;
  r.status = status;
  r.body = detail_body(detail);
  return r;
}

Response internal_error() { return error_response(500, "Internal server error"); }

bool has_header(const std::vector<Header>& headers, std::string_view name) {
  for (const auto& h : headers)
    if (util::iequals(h.name, name)) return true;
  return false;
}

bool status_has_no_body(int status) {
  return status / 100 == 1 || status == 204 || status == 304;
}

// Status line, Server, Date, Content-Type, the api's headers and Connection; the caller adds
// the framing header (Content-Length or Transfer-Encoding) and the blank line.
void append_head(std::string& out, const Response& r, bool keep_alive, unsigned version) {
  auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
  if (!reason.empty() && reason.front() == '<') reason = {};  // "<unknown-status>"
  // Plain appends: this runs for every answer, and fmt's parsing showed in profiles.
  char code[12];
  char* code_end = std::to_chars(code, code + sizeof code, r.status).ptr;
  out += "HTTP/1.1 ";
  out.append(code, code_end);
  out += ' ';
  out.append(reason.data(), reason.size());
  out += "\r\nServer: runq\r\nDate: ";
  out += http_date();
  out += "\r\n";
  if (!r.content_type.empty()) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\n";
  }
  for (const auto& h : r.headers) {
    if (is_framing_header(h.name)) continue;
    if (!header_is_safe(h)) {
      spdlog::warn("http: dropping unsafe response header '{}'", h.name);
      continue;
    }
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (!keep_alive)
    out += "Connection: close\r\n";
  else if (version < 11)
    out += "Connection: keep-alive\r\n";  // HTTP/1.0 keeps alive only when told so
}

void append_chunk(std::string& out, std::string_view data, bool chunked) {
  if (data.empty()) return;  // an empty chunk would end a chunked body
  if (chunked) fmt::format_to(std::back_inserter(out), "{:x}\r\n", data.size());
  out += data;
  if (chunked) out += "\r\n";
}

}  // namespace runq::http
