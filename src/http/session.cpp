// One HTTP connection: reads requests with Beast (a fresh parser and a deadline per
// phase), hands each to the handler, writes the answer or streams it (SSE), keeps the
// connection alive or closes it cleanly.
#include "request_parser.hpp"
#include "server_impl.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

namespace runq::http {

namespace {
namespace bhttp = boost::beast::http;

// After an error answer (400/413/431) the client may still be sending. Closing with
// unread bytes makes the kernel send a reset, which can destroy our answer before the
// client reads it; so we half-close, then read and discard this much, for this long.
constexpr std::chrono::seconds kLingerTime{1};
constexpr std::size_t kLingerBytes = 32 << 20;
// Bytes asked for when waiting for the start of a request (and when discarding).
constexpr std::size_t kReadChunk = 16 << 10;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
}  // namespace

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
    c->socket.close(ec);
    co_return;
  }
  // Half-close first so the client sees our complete answer and the end of it; then
  // read away anything still arriving so closing does not turn into a reset.
  c->socket.shutdown(tcp::socket::shutdown_send, ec);
  bool unread = c->buffer.size() > 0 || c->socket.available(ec) > 0;
  if (outcome == Outcome::linger || unread) co_await linger(c.get());
  c->socket.close(ec);
}

awaitable<void> Server::Impl::linger(Connection* c) {
  c->expires_after(kLingerTime);
  c->buffer.clear();
  std::size_t discarded = 0;
  while (discarded < kLingerBytes && !c->aborted) {
    auto [ec, n] = co_await c->socket.async_read_some(c->buffer.prepare(kReadChunk), kTuple);
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
    c->expires_after(first ? opts.header_timeout : opts.idle_timeout);
    c->idle = true;
    auto [ec, n] = co_await c->socket.async_read_some(c->buffer.prepare(kReadChunk), kTuple);
    c->idle = false;
    if (ec == asio::error::eof) co_return Outcome::close;
    if (ec) co_return Outcome::drop;
    c->buffer.commit(n);
    if (!first) c->expires_after(opts.header_timeout);
  } else {
    c->expires_after(opts.header_timeout);  // a pipelined request: already here
  }

  // 2. The header block, within header_timeout of its first byte (slowloris).
  detail::RequestParser parser;  // fresh per request
  detail::apply_limits(parser, RequestLimits{opts.max_header_bytes, opts.max_body_bytes});
  {
    auto [ec, n] = co_await bhttp::async_read_header(c->socket, c->buffer, parser, kTuple);
    if (ec) co_return co_await answer_read_error(self, c.get(), ec);
  }

  // 3. The body, if any.
  const unsigned version = parser.get().version();
  bool keep_alive = parser.get().keep_alive();
  const bool head = parser.get().method() == bhttp::verb::head;
  if (!parser.is_done()) {
    if (detail::expects_continue(parser)) {
      c->expires_after(opts.write_timeout);
      auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(kContinue), kTuple);
      if (ec) co_return Outcome::drop;
    }
    c->expires_after(opts.body_timeout);
    auto [ec, n] = co_await bhttp::async_read(c->socket, c->buffer, parser, kTuple);
    if (ec) co_return co_await answer_read_error(self, c.get(), ec);
  }
  c->expires_never();  // no I/O deadline while the handler works

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
  c->expires_after(self->opts.write_timeout);
  auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(c->out), kTuple);
  c->expires_never();
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
  c->expires_after(self->opts.write_timeout);
  auto [ec, n] = co_await asio::async_write(c->socket, buffers, kTuple);
  c->expires_never();
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
      asio::post(conn->loop, [conn] {
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

}  // namespace runq::http
