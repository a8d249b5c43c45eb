// A small blocking HTTP/1.1 client over Beast, for the CLI.
//
// Each call opens one connection, sends one request and reads one response. The
// operations are Beast's async ones driven to completion on a private io_context,
// because tcp_stream's expires_after() only bounds async operations.
#include "runq/http/client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace runq::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr auto kConnectTimeout = std::chrono::seconds(30);
constexpr auto kStreamHeaderTimeout = std::chrono::seconds(60);
constexpr std::uint64_t kMaxResponseBody = std::uint64_t(1) << 32;  // 4 GiB
constexpr const char* kUserAgent = "runq-cli/0.1";

struct ParsedUrl {
  std::string host;         // without brackets
  std::string port;         // digits
  std::string host_header;  // as written in the URL (host[:port])
  std::string target;       // "/path?query"
};

bool iprefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

ParsedUrl parse_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (!iprefix(url, scheme))
    throw std::invalid_argument("unsupported URL (only http:// is supported): " + url);
  std::string_view rest = std::string_view(url).substr(scheme.size());
  const auto end_of_authority = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end_of_authority);
  std::string_view path =
      end_of_authority == std::string_view::npos ? "" : rest.substr(end_of_authority);
  if (auto hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
  if (auto at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);

  ParsedUrl out;
  out.host_header = std::string(authority);
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("bad URL: " + url);
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw std::invalid_argument("bad URL: " + url);
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      out.host = std::string(authority.substr(0, colon));
      port = authority.substr(colon + 1);
    } else {
      out.host = std::string(authority);
    }
  }
  if (out.host.empty()) throw std::invalid_argument("bad URL (no host): " + url);
  if (port.empty()) {
    out.port = "80";
  } else {
    if (port.size() > 5) throw std::invalid_argument("bad URL (port): " + url);
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') throw std::invalid_argument("bad URL (port): " + url);
      value = value * 10 + unsigned(c - '0');
    }
    if (value == 0 || value > 65535) throw std::invalid_argument("bad URL (port): " + url);
    out.port = std::string(port);
  }
  if (path.empty()) out.target = "/";
  else if (path.front() == '?') out.target = "/" + std::string(path);
  else out.target = std::string(path);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One connection: blocking calls made of async operations run on a private context.
class Connection {
 public:
  explicit Connection(const ParsedUrl& url) : url_(url) {}
  ~Connection() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  void connect(std::chrono::steady_clock::duration timeout) {
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url_.host, url_.port, ec);
    if (ec) throw ConnectionError("cannot resolve " + url_.host + ": " + ec.message());
    stream_.expires_after(timeout);
    stream_.async_connect(endpoints,
                          [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
    drive();
    if (ec)
      throw ConnectionError("cannot connect to " + url_.host_header + ": " + ec.message());
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }

  template <class Message>
  void write(Message& msg, std::chrono::steady_clock::duration timeout) {
    beast::error_code ec;
    stream_.expires_after(timeout);
    bhttp::async_write(stream_, msg, [&ec](beast::error_code e, std::size_t) { ec = e; });
    drive();
    if (ec) fail("sending the request", ec);
  }

  template <class Parser>
  void read(Parser& parser, std::chrono::steady_clock::duration timeout) {
    beast::error_code ec;
    stream_.expires_after(timeout);
    bhttp::async_read(stream_, buffer_, parser,
                      [&ec](beast::error_code e, std::size_t) { ec = e; });
    drive();
    if (ec) fail("reading the response", ec);
  }

  template <class Parser>
  void read_header(Parser& parser, std::chrono::steady_clock::duration timeout) {
    beast::error_code ec;
    stream_.expires_after(timeout);
    bhttp::async_read_header(stream_, buffer_, parser,
                             [&ec](beast::error_code e, std::size_t) { ec = e; });
    drive();
    if (ec) fail("reading the response", ec);
  }

  // Reads whatever arrives next (no deadline) into the parser; `need_buffer` is not
  // an error.
  template <class Parser>
  void read_some(Parser& parser) {
    beast::error_code ec;
    stream_.expires_never();
    bhttp::async_read_some(stream_, buffer_, parser,
                           [&ec](beast::error_code e, std::size_t) { ec = e; });
    drive();
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) fail("reading the response", ec);
  }

 private:
  void drive() {
    ioc_.restart();
    ioc_.run();
  }

  [[noreturn]] void fail(const char* what, const beast::error_code& ec) {
    std::string why = ec == bhttp::error::end_of_stream ? "connection closed by the server"
                                                         : ec.message();
    throw ConnectionError(std::string("error ") + what + " from " + url_.host_header + ": " +
                          why);
  }

  ParsedUrl url_;
  asio::io_context ioc_{1};
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
};

template <class Fields>
void copy_headers(const Fields& fields, ClientResponse& out) {
  for (const auto& f : fields)
    out.headers.push_back(Header{lower(f.name_string()), std::string(f.value())});
}

void set_request_headers(bhttp::request<bhttp::string_body>& req, const ParsedUrl& url,
                         const std::vector<Header>& headers) {
  req.set(bhttp::field::host, url.host_header);
  req.set(bhttp::field::user_agent, kUserAgent);
  for (const auto& h : headers) req.set(h.name, h.value);
}

}  // namespace

ClientResponse request(const std::string& method, const std::string& url,
                       const std::string& body, const std::vector<Header>& headers,
                       std::chrono::seconds timeout) {
  const ParsedUrl parsed = parse_url(url);
  bhttp::request<bhttp::string_body> req;
  const auto verb = bhttp::string_to_verb(method);
  if (verb == bhttp::verb::unknown) req.method_string(method);
  else req.method(verb);
  req.target(parsed.target);
  req.version(11);
  set_request_headers(req, parsed, headers);
  if (req.find(bhttp::field::accept) == req.end())
    req.set(bhttp::field::accept, "application/json");
  const bool has_body = !body.empty() || verb == bhttp::verb::post ||
                        verb == bhttp::verb::put || verb == bhttp::verb::patch;
  if (has_body) {
    if (req.find(bhttp::field::content_type) == req.end())
      req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();

  Connection conn(parsed);
  conn.connect(std::min<std::chrono::steady_clock::duration>(timeout, kConnectTimeout));
  conn.write(req, timeout);

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  if (verb == bhttp::verb::head) parser.skip(true);
  conn.read(parser, timeout);

  auto& msg = parser.get();
  ClientResponse out;
  out.status = static_cast<int>(msg.result_int());
  copy_headers(msg, out);
  out.body = std::move(msg.body());
  return out;
}

ClientResponse stream(const std::string& url, const std::vector<Header>& headers,
                      const std::function<void(std::string_view)>& on_data) {
  const ParsedUrl parsed = parse_url(url);
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, parsed.target, 11};
  set_request_headers(req, parsed, headers);
  if (req.find(bhttp::field::accept) == req.end())
    req.set(bhttp::field::accept, "text/event-stream");
  req.set(bhttp::field::cache_control, "no-cache");
  req.prepare_payload();

  Connection conn(parsed);
  conn.connect(kConnectTimeout);
  conn.write(req, kStreamHeaderTimeout);

  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);
  conn.read_header(parser, kStreamHeaderTimeout);

  ClientResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  copy_headers(parser.get(), out);
  const bool success = out.status >= 200 && out.status < 300;

  char buf[16384];
  while (!parser.is_done()) {
    auto& body = parser.get().body();
    body.data = buf;
    body.size = sizeof buf;
    conn.read_some(parser);
    const std::size_t n = sizeof buf - parser.get().body().size;
    if (n == 0) continue;
    if (success) on_data(std::string_view(buf, n));
    else out.body.append(buf, n);
  }
  return out;
}

}  // namespace runq::http
