// The HTTP/1.1 server: Beast parses requests, everything else (keep-alive, limits,
// timeouts, replies from other threads, SSE, graceful stop) is connection plumbing here.
//
// Shape: one acceptor coroutine on the server strand; one coroutine per connection on
// its own strand, serving requests strictly one after another (read -> handle -> write),
// which is also what keeps pipelined answers in order. Anything that comes from another
// thread (a Reply, an SSE notifier, stop()) is posted onto the connection's strand and
// wakes the coroutine by cancelling the timer it sleeps on.
#include "runq/http/server.hpp"

#include "request_parser.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <charconv>
#include <ctime>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace runq::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
template <typename T>
using awaitable = asio::awaitable<T>;

// Boost 1.81 has no default completion token; errors come back as values, not throws.
constexpr asio::as_tuple_t<asio::use_awaitable_t<>> kTuple{};

// After an error answer (400/413/431) the client may still be sending. Closing with
// unread bytes makes the kernel send a reset, which can destroy our answer before the
// client reads it; so we half-close, then read and discard this much, for this long.
constexpr std::chrono::seconds kLingerTime{1};
constexpr std::size_t kLingerBytes = 32 << 20;
// Bytes asked for when waiting for the start of a request (and when discarding).
constexpr std::size_t kReadChunk = 16 << 10;
// After stop()'s deadline connections are closed by force; if their coroutines still
// have not unwound after this much more, the loop is stopped outright.
constexpr std::chrono::seconds kForceCloseGrace{1};
// Back-off after a failed accept (e.g. out of file descriptors) so we don't spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// A connection refused for being over max_connections: its 503 gets this long to leave,
// then the socket is half-closed and whatever the client already sent is discarded for at
// most this long (so closing does not reset the 503 away), then it is closed.
constexpr std::chrono::milliseconds kRefuseWriteTimeout{1000};
constexpr std::chrono::milliseconds kRefuseLinger{250};
constexpr std::size_t kRefuseLingerBytes = 64 << 10;
// Refusals in progress beyond this are closed at once, without the 503 (a flood must not
// turn the refusals themselves into a file-descriptor sink).
constexpr std::size_t kMaxRefusing = 256;
// The "connection limit reached" warning is logged at most this often.
constexpr std::chrono::seconds kRefuseWarnInterval{10};

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// ---------------------------------------------------------------------------------
// Small helpers

std::string detail_body(std::string_view detail) {
  return nlohmann::json{{"detail", detail}}.dump();
}

Response error_response(int status, std::string_view detail) {
  Response r;
  r.status = status;
  r.body = detail_body(detail);
  return r;
}

Response internal_error() { return error_response(500, "Internal server error"); }

void log_exception(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("http: {}: {}", what, ex.what());
  } catch (...) {
    spdlog::error("http: {}: unknown exception", what);
  }
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
  return beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
         beast::iequals(name, "connection");
}

bool has_header(const std::vector<Header>& headers, std::string_view name) {
  for (const auto& h : headers)
    if (beast::iequals(h.name, name)) return true;
  return false;
}

bool status_has_no_body(int status) {
  return status / 100 == 1 || status == 204 || status == 304;
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

std::string endpoint_string(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6()) return fmt::format("[{}]:{}", addr.to_string(), ep.port());
  return fmt::format("{}:{}", addr.to_string(), ep.port());
}

// ---------------------------------------------------------------------------------
// Shared state

// Shared by the server and every Reply / notifier handed out, so that a late caller
// (after ~Server) finds the loop gone instead of posting into a destroyed io_context.
struct Life {
  std::mutex mu;
  bool alive = true;
};

// What to do with the socket once a request is over.
enum class Outcome {
  keep_alive,  // serve the next request
  close,       // half-close and close (discarding stray bytes if any are waiting)
  linger,      // we answered an error while the client may still be sending: drain
  drop,        // just close: timeout, reset, peer gone, forced stop
};

struct Connection {
  Connection(tcp::socket socket, Strand strand_, std::string remote_)
      : strand(std::move(strand_)),
        stream(std::move(socket)),
        wake(strand),
        remote(std::move(remote_)) {}

  Strand strand;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;  // reused for every request on this connection
  asio::steady_timer wake;    // the coroutine sleeps on it; cancel() wakes it up
  std::string remote;
  std::string out;            // reused for response heads and SSE chunk framing

  // Everything below is touched only on `strand`.
  std::uint64_t seq = 0;           // which request a Reply belongs to
  std::optional<Response> reply;   // set when the handler's answer arrives
  bool idle = false;               // waiting for the first byte of a request
  bool stopping = false;           // server stop: finish this request, then close
  bool aborted = false;            // stop deadline passed: give up at once
  bool notified = false;           // SSE notifier fired since the last poll
  std::atomic<bool> notify_pending{false};  // coalesces notifier posts (any thread)

  void deliver(std::uint64_t s, Response r) {
    if (s != seq || reply) return;  // late answer to an earlier, already answered request
    reply = std::move(r);
    wake.cancel();
  }

  void on_stop() {
    stopping = true;
    wake.cancel();
    if (idle) stream.cancel();  // nothing in flight: stop waiting for a next request
  }

  void abort() {
    aborted = true;
    stopping = true;
    wake.cancel();
    stream.close();
  }
};

// The state behind one Reply. Copies of the Reply share it; the first call wins, and if
// the last copy dies uncalled the client gets a 500 instead of waiting forever.
class ReplyState {
 public:
  ReplyState(std::weak_ptr<Connection> conn, std::shared_ptr<Life> life, std::uint64_t seq)
      : conn_(std::move(conn)), life_(std::move(life)), seq_(seq) {}

  ~ReplyState() {
    if (used_.exchange(true)) return;
    spdlog::error("http: request handler dropped its Reply without answering");
    send(internal_error());
  }

  void complete(Response r) {
    if (used_.exchange(true)) {
      spdlog::warn("http: Reply called after the request was already answered; ignored");
      return;
    }
    send(std::move(r));
  }

  // The server answered on its own (the handler threw): later calls are ignored.
  void abandon() { used_ = true; }

 private:
  void send(Response r) {
    std::lock_guard lock(life_->mu);
    if (!life_->alive) return;
    auto c = conn_.lock();
    if (!c) return;  // the connection is gone; nobody to answer
    // Called synchronously from inside the handler (the common case): no post needed.
    if (c->strand.running_in_this_thread()) {
      c->deliver(seq_, std::move(r));
      return;
    }
    asio::post(c->strand, [c, seq = seq_, r = std::move(r)]() mutable {
      c->deliver(seq, std::move(r));
    });
  }

  std::weak_ptr<Connection> conn_;
  std::shared_ptr<Life> life_;
  std::uint64_t seq_;
  std::atomic<bool> used_{false};
};

// Calls EventStream::close() however the streaming coroutine ends, including when its
// frame is destroyed with the io_context.
struct StreamCloser {
  std::shared_ptr<EventStream> stream;
  ~StreamCloser() {
    try {
      stream->close();
    } catch (const std::exception& e) {
      spdlog::warn("http: EventStream::close threw: {}", e.what());
    } catch (...) {
    }
  }
};

}  // namespace

// ---------------------------------------------------------------------------------

struct Server::Impl {
  Impl(ServerOptions o, Handler h) : opts(std::move(o)), handler(std::move(h)) {
    if (opts.io_threads < 1) opts.io_threads = 1;
  }

  ~Impl() {
    {
      std::lock_guard lock(life->mu);
      life->alive = false;
    }
    // Destroying the io_context (below) destroys coroutine frames that never finished
    // (run() not called, or the loop stopped at the deadline); they unregister quietly.
    tearing_down = true;
  }

  std::uint16_t listen();
  void run();
  void stop();

  // Members are destroyed bottom-up: everything after `ioc` goes before it, and the
  // registry outlives it because dying coroutine frames unregister themselves.
  ServerOptions opts;
  Handler handler;
  std::shared_ptr<Life> life = std::make_shared<Life>();
  std::atomic<bool> stopping{false};
  std::atomic<bool> tearing_down{false};
  mutable std::mutex conn_mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;
  std::atomic<std::size_t> refusing{0};  // 503s for max_connections in progress
  std::uint64_t refused_total = 0;       // server strand only
  std::optional<std::chrono::steady_clock::time_point> last_refuse_warn;  // server strand

  asio::io_context ioc;
  Strand server_strand{asio::make_strand(ioc)};  // acceptor, stop, drain deadline
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer drain_timer{server_strand};

 private:
  static awaitable<void> accept_loop(Impl* self);
  void start_session(tcp::socket socket, Strand strand);
  bool at_capacity();
  void start_refusal(tcp::socket socket, Strand strand);
  static awaitable<void> refuse(Impl* self, tcp::socket socket);
  void unregister(Connection* c);
  void do_stop();
  void on_drain_deadline();

  // Per-connection coroutines. Parameters by value (g++ 12 coroutine trap).
  static awaitable<void> session(Impl* self, std::shared_ptr<Connection> c);
  static awaitable<Outcome> serve_one(Impl* self, std::shared_ptr<Connection> c, bool first);
  static awaitable<Outcome> answer_read_error(Impl* self, Connection* c, beast::error_code ec);
  static awaitable<Outcome> write_error(Impl* self, Connection* c, int status,
                                        std::string detail);
  static awaitable<Outcome> write_response(Impl* self, Connection* c, Response res,
                                           unsigned version, bool keep_alive, bool head);
  static awaitable<Outcome> write_stream(Impl* self, std::shared_ptr<Connection> c,
                                         Response res, unsigned version, bool keep_alive,
                                         bool head);
  static awaitable<bool> write_out(Impl* self, Connection* c);
  static awaitable<void> linger(Connection* c);
};

// ---------------------------------------------------------------------------------
// Listening, running, stopping

std::uint16_t Server::Impl::listen() {
  tcp::endpoint ep;
  beast::error_code ec;
  auto addr = asio::ip::make_address(opts.host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, opts.port);
  } else {  // a host name such as "localhost"
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(opts.host, std::to_string(opts.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty())
      throw std::runtime_error(fmt::format("cannot resolve listen address '{}': {}", opts.host,
                                           ec ? ec.message() : "no address"));
    ep = results.begin()->endpoint();
  }
  try {
    acceptor.emplace(ioc);
    acceptor->open(ep.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    acceptor->bind(ep);
    acceptor->listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    acceptor.reset();
    throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", opts.host, opts.port,
                                         e.code().message()));
  }
  auto port = acceptor->local_endpoint().port();
  spdlog::info("http: listening on {}", endpoint_string(acceptor->local_endpoint()));
  return port;
}

void Server::Impl::run() {
  if (acceptor && acceptor->is_open() && !stopping) {
    auto on_done = [](std::exception_ptr e) { log_exception("accept loop", e); };
    asio::co_spawn(server_strand, accept_loop(this), on_done);
  }
  auto run_loop = [this] {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {  // a handler threw past us: log, keep serving
        spdlog::error("http: event loop: {}", e.what());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < opts.io_threads; ++i) threads.emplace_back(run_loop);
  run_loop();
  for (auto& t : threads) t.join();
  spdlog::info("http: server stopped");
}

void Server::Impl::stop() {
  if (stopping.exchange(true)) return;
  asio::post(server_strand, [this] { do_stop(); });
}

void Server::Impl::do_stop() {
  beast::error_code ec;
  if (acceptor) acceptor->close(ec);
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(conn_mu);
    for (auto& [ptr, weak] : conns)
      if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  spdlog::info("http: stopping; {} open connection(s)", live.size());
  for (auto& c : live) asio::post(c->strand, [c] { c->on_stop(); });
  if (live.empty()) return;
  // Bound the drain; unregister() cancels this timer when the last connection ends.
  drain_timer.expires_after(opts.shutdown_timeout);
  drain_timer.async_wait([this](beast::error_code e) {
    if (!e) on_drain_deadline();
  });
}

void Server::Impl::on_drain_deadline() {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(conn_mu);
    for (auto& [ptr, weak] : conns)
      if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  spdlog::warn("http: {} connection(s) still busy {}s after stop; closing them", live.size(),
               opts.shutdown_timeout.count());
  for (auto& c : live) asio::post(c->strand, [c] { c->abort(); });
  drain_timer.expires_after(kForceCloseGrace);
  drain_timer.async_wait([this](beast::error_code e) {
    if (e) return;
    spdlog::error("http: connections did not close; stopping the event loop");
    ioc.stop();
  });
}

awaitable<void> Server::Impl::accept_loop(Impl* self) {
  asio::steady_timer backoff(self->server_strand);
  for (;;) {
    auto strand = asio::make_strand(self->ioc);
    auto [ec, socket] = co_await self->acceptor->async_accept(strand, kTuple);
    if (self->stopping || !self->acceptor->is_open()) co_return;
    if (ec) {
      spdlog::warn("http: accept failed: {}", ec.message());
      backoff.expires_after(kAcceptRetryDelay);
      co_await backoff.async_wait(kTuple);
      continue;
    }
    if (self->at_capacity())
      self->start_refusal(tcp::socket(std::move(socket)), std::move(strand));
    else
      self->start_session(tcp::socket(std::move(socket)), std::move(strand));
  }
}

// Only the accept loop adds connections, so a check here cannot be overtaken by another
// accept; connections ending meanwhile only make room.
bool Server::Impl::at_capacity() {
  std::lock_guard lock(conn_mu);
  return conns.size() >= opts.max_connections;
}

void Server::Impl::start_refusal(tcp::socket socket, Strand strand) {
  ++refused_total;
  auto now = std::chrono::steady_clock::now();
  if (!last_refuse_warn || now - *last_refuse_warn >= kRefuseWarnInterval) {
    last_refuse_warn = now;
    spdlog::warn("http: connection limit ({}) reached; refusing new connections with 503 "
                 "({} refused so far)",
                 opts.max_connections, refused_total);
  }
  if (refusing.load() >= kMaxRefusing) {
    beast::error_code ec;
    socket.close(ec);
    return;
  }
  ++refusing;
  if (opts.on_rejected) opts.on_rejected(503);
  auto on_done = [](std::exception_ptr e) { log_exception("refused connection", e); };
  asio::co_spawn(strand, refuse(this, std::move(socket)), on_done);
}

// Over max_connections: a 503 at once, without reading the request, then close. Never
// registered as a connection; bounded by kRefuseWriteTimeout + kRefuseLinger.
awaitable<void> Server::Impl::refuse(Impl* self, tcp::socket socket) {
  struct Done {
    std::atomic<std::size_t>& n;
    ~Done() { --n; }
  } done{self->refusing};

  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  beast::tcp_stream stream(std::move(socket));
  Response r = error_response(503, "Too many connections");
  r.headers.push_back(Header{"Retry-After", "1"});
  std::string out;
  append_head(out, r, /*keep_alive=*/false, 11);
  fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n\r\n", r.body.size());
  out += r.body;
  stream.expires_after(kRefuseWriteTimeout);
  auto [wec, written] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
  if (!wec) {
    // Half-close, then discard what the client sent (briefly) so that closing with
    // unread bytes does not reset the connection before the client has read the 503.
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(kRefuseLinger);
    std::array<char, 4096> sink;
    std::size_t discarded = 0;
    while (discarded < kRefuseLingerBytes) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      discarded += n;
    }
  }
  stream.close();
}

void Server::Impl::start_session(tcp::socket socket, Strand strand) {
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);  // answers are single writes: send at once
  auto ep = socket.remote_endpoint(ec);
  std::string remote = ec ? std::string("?") : endpoint_string(ep);
  auto c = std::make_shared<Connection>(std::move(socket), strand, std::move(remote));
  {
    std::lock_guard lock(conn_mu);
    conns.emplace(c.get(), c);
  }
  auto on_done = [](std::exception_ptr e) { log_exception("connection", e); };
  asio::co_spawn(strand, session(this, std::move(c)), on_done);
}

void Server::Impl::unregister(Connection* c) {
  bool last;
  {
    std::lock_guard lock(conn_mu);
    conns.erase(c);
    last = conns.empty();
  }
  if (last && stopping && !tearing_down)
    asio::post(server_strand, [this] { drain_timer.cancel(); });
}

// ---------------------------------------------------------------------------------
// One connection

awaitable<void> Server::Impl::session(Impl* self, std::shared_ptr<Connection> c) {
  struct Registration {
    Impl* self;
    Connection* c;
    ~Registration() { self->unregister(c); }
  } registration{self, c.get()};

  Outcome outcome = Outcome::close;
  for (bool first = true; !c->stopping; first = false) {
    outcome = co_await serve_one(self, c, first);
    if (outcome != Outcome::keep_alive) break;
  }

  beast::error_code ec;
  if (outcome == Outcome::drop || c->aborted) {
    c->stream.close();
    co_return;
  }
  // Half-close first so the client sees our complete answer and the end of it; then
  // read away anything still arriving so closing does not turn into a reset.
  c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  bool unread = c->buffer.size() > 0 || c->stream.socket().available(ec) > 0;
  if (outcome == Outcome::linger || unread) co_await linger(c.get());
  c->stream.close();
}

awaitable<void> Server::Impl::linger(Connection* c) {
  c->stream.expires_after(kLingerTime);
  c->buffer.clear();
  std::size_t discarded = 0;
  while (discarded < kLingerBytes && !c->aborted) {
    auto [ec, n] = co_await c->stream.async_read_some(c->buffer.prepare(kReadChunk), kTuple);
    if (ec) break;  // end of stream (the client read our answer), timeout, reset
    discarded += n;
  }
}

awaitable<Outcome> Server::Impl::serve_one(Impl* self, std::shared_ptr<Connection> c,
                                           bool first) {
  const auto& opts = self->opts;

  // 1. Wait for the first byte. This is the idle phase of a keep-alive connection: stop()
  //    may cancel it, and its timeout is a quiet close, not an error.
  if (c->buffer.size() == 0) {
    c->stream.expires_after(first ? opts.header_timeout : opts.idle_timeout);
    c->idle = true;
    auto [ec, n] = co_await c->stream.async_read_some(c->buffer.prepare(kReadChunk), kTuple);
    c->idle = false;
    if (ec == asio::error::eof) co_return Outcome::close;
    if (ec) co_return Outcome::drop;
    c->buffer.commit(n);
    if (!first) c->stream.expires_after(opts.header_timeout);
  } else {
    c->stream.expires_after(opts.header_timeout);  // a pipelined request: already here
  }

  // 2. The header block, within header_timeout of its first byte (slowloris).
  detail::RequestParser parser;  // fresh per request
  detail::apply_limits(parser, RequestLimits{opts.max_header_bytes, opts.max_body_bytes});
  {
    auto [ec, n] = co_await bhttp::async_read_header(c->stream, c->buffer, parser, kTuple);
    if (ec) co_return co_await answer_read_error(self, c.get(), ec);
  }

  // 3. The body, if any.
  const unsigned version = parser.get().version();
  bool keep_alive = parser.get().keep_alive();
  const bool head = parser.get().method() == bhttp::verb::head;
  if (!parser.is_done()) {
    if (detail::expects_continue(parser)) {
      c->stream.expires_after(opts.write_timeout);
      auto [ec, n] = co_await asio::async_write(c->stream, asio::buffer(kContinue), kTuple);
      if (ec) co_return Outcome::drop;
    }
    c->stream.expires_after(opts.body_timeout);
    auto [ec, n] = co_await bhttp::async_read(c->stream, c->buffer, parser, kTuple);
    if (ec) co_return co_await answer_read_error(self, c.get(), ec);
  }
  c->stream.expires_never();  // no I/O deadline while the handler works

  // 4. Hand the request over and wait for its Reply, which may come from any thread.
  std::string log_line;
  if (spdlog::should_log(spdlog::level::debug))
    log_line = fmt::format("{} {} {}", c->remote,
                           std::string_view(parser.get().method_string()),
                           std::string_view(parser.get().target()));
  {
    auto state = std::make_shared<ReplyState>(c, self->life, ++c->seq);
    c->reply.reset();
    Reply reply = [state](Response r) { state->complete(std::move(r)); };
    try {
      self->handler(detail::to_request(parser, c->remote), std::move(reply));
    } catch (const std::exception& e) {
      state->abandon();
      spdlog::error("http: request handler threw: {}", e.what());
      if (!c->reply) c->reply = internal_error();
    } catch (...) {
      state->abandon();
      spdlog::error("http: request handler threw an unknown exception");
      if (!c->reply) c->reply = internal_error();
    }
  }  // if the handler kept no copy of the Reply and never called it: 500 right here
  while (!c->reply && !c->aborted) {
    c->wake.expires_at(asio::steady_timer::time_point::max());
    co_await c->wake.async_wait(kTuple);  // woken by deliver(), stop or abort
  }
  if (c->aborted) co_return Outcome::drop;
  Response res = std::move(*c->reply);
  c->reply.reset();
  if (!log_line.empty()) spdlog::debug("http: {} -> {}", log_line, res.status);

  // 5. The answer.
  keep_alive = keep_alive && !c->stopping;
  if (res.stream)
    co_return co_await write_stream(self, c, std::move(res), version, keep_alive, head);
  co_return co_await write_response(self, c.get(), std::move(res), version, keep_alive, head);
}

awaitable<Outcome> Server::Impl::answer_read_error(Impl* self, Connection* c,
                                                   beast::error_code ec) {
  if (ec == bhttp::error::end_of_stream) co_return Outcome::close;  // clean close between requests
  switch (detail::classify_read_error(ec)) {
    case ParseError::header_too_large:
      co_return co_await write_error(self, c, 431, "Request header fields too large");
    case ParseError::body_too_large:
      co_return co_await write_error(
          self, c, 413,
          fmt::format("Request body too large (limit {} bytes)", self->opts.max_body_bytes));
    case ParseError::bad_request:
      spdlog::debug("http: bad request from {}: {}", c->remote, ec.message());
      co_return co_await write_error(self, c, 400, "Bad request");
    case ParseError::none:
    case ParseError::incomplete:
      break;
  }
  // Timeout, reset, the peer closing mid-message, stop(): nobody to answer.
  spdlog::debug("http: read from {} ended: {}", c->remote, ec.message());
  co_return Outcome::drop;
}

awaitable<Outcome> Server::Impl::write_error(Impl* self, Connection* c, int status,
                                             std::string detail) {
  if (self->opts.on_rejected) self->opts.on_rejected(status);
  auto outcome = co_await write_response(self, c, error_response(status, detail), 11,
                                         /*keep_alive=*/false, /*head=*/false);
  co_return outcome == Outcome::drop ? Outcome::drop : Outcome::linger;
}

awaitable<bool> Server::Impl::write_out(Impl* self, Connection* c) {
  c->stream.expires_after(self->opts.write_timeout);
  auto [ec, n] = co_await asio::async_write(c->stream, asio::buffer(c->out), kTuple);
  c->out.clear();
  if (ec) spdlog::debug("http: write to {} failed: {}", c->remote, ec.message());
  co_return !ec;
}

awaitable<Outcome> Server::Impl::write_response(Impl* self, Connection* c, Response res,
                                                unsigned version, bool keep_alive, bool head) {
  c->out.clear();
  append_head(c->out, res, keep_alive, version);
  const bool no_body = status_has_no_body(res.status);
  if (!no_body) fmt::format_to(std::back_inserter(c->out), "Content-Length: {}\r\n", res.body.size());
  c->out += "\r\n";

  // Head and body leave in one gather write.
  std::string_view body = (no_body || head) ? std::string_view() : std::string_view(res.body);
  std::array<asio::const_buffer, 2> buffers{asio::buffer(c->out), asio::buffer(body)};
  c->stream.expires_after(self->opts.write_timeout);
  auto [ec, n] = co_await asio::async_write(c->stream, buffers, kTuple);
  c->out.clear();
  if (ec) {
    spdlog::debug("http: write to {} failed: {}", c->remote, ec.message());
    co_return Outcome::drop;
  }
  co_return keep_alive ? Outcome::keep_alive : Outcome::close;
}

// Server-Sent Events (or any EventStream): the head at once, then whatever the stream
// has, as chunks (HTTP/1.1) or a close-delimited body (HTTP/1.0), with a heartbeat after
// heartbeat_interval of silence, until the stream finishes, the client leaves or the
// server stops.
awaitable<Outcome> Server::Impl::write_stream(Impl* self, std::shared_ptr<Connection> c,
                                              Response res, unsigned version, bool keep_alive,
                                              bool head) {
  StreamCloser closer{res.stream};
  EventStream& events = *res.stream;
  const bool chunked = version >= 11;
  if (!chunked) keep_alive = false;  // the end of the body is the end of the connection

  {
    auto life = self->life;
    std::weak_ptr<Connection> weak = c;
    auto notify = [life, weak] {
      std::lock_guard lock(life->mu);
      if (!life->alive) return;
      auto conn = weak.lock();
      if (!conn || conn->notify_pending.exchange(true)) return;  // one post is enough
      asio::post(conn->strand, [conn] {
        conn->notify_pending = false;
        conn->notified = true;
        conn->wake.cancel();
      });
    };
    events.set_notifier(std::move(notify));
  }

  c->out.clear();
  append_head(c->out, res, keep_alive, version);
  if (!has_header(res.headers, "cache-control")) c->out += "Cache-Control: no-cache\r\n";
  if (chunked) c->out += "Transfer-Encoding: chunked\r\n";
  c->out += "\r\n";
  if (head) {
    if (chunked) c->out += "0\r\n\r\n";
    const bool written = co_await write_out(self, c.get());
    if (!written) co_return Outcome::drop;
    co_return keep_alive ? Outcome::keep_alive : Outcome::close;
  }

  for (;;) {
    c->notified = false;
    while (auto piece = events.poll()) append_chunk(c->out, *piece, chunked);
    const bool done = events.finished();
    // Poll once more in case the producer pushed its last data between our poll() and
    // finished() (a stream that says "finished" while data is still queued).
    if (done)
      while (auto piece = events.poll()) append_chunk(c->out, *piece, chunked);
    const bool ending = done || c->stopping;
    if (ending && chunked) c->out += "0\r\n\r\n";
    if (!c->out.empty() && !co_await write_out(self, c.get())) co_return Outcome::drop;
    if (c->aborted) co_return Outcome::drop;
    if (ending) break;
    if (c->notified || c->stopping) continue;  // woken while we were writing

    c->wake.expires_after(self->opts.heartbeat_interval);
    auto [ec] = co_await c->wake.async_wait(kTuple);
    if (c->aborted) co_return Outcome::drop;
    if (ec || c->notified || c->stopping) continue;  // woken: poll again
    append_chunk(c->out, events.heartbeat(), chunked);  // silent too long: sent next round
  }
  co_return keep_alive && !c->stopping ? Outcome::keep_alive : Outcome::close;
}

// ---------------------------------------------------------------------------------

Server::Server(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

std::uint16_t Server::listen() { return impl_->listen(); }

void Server::run() { impl_->run(); }

void Server::stop() { impl_->stop(); }

std::size_t Server::open_connections() const {
  std::lock_guard lock(impl_->conn_mu);
  return impl_->conns.size();
}

}  // namespace runq::http
