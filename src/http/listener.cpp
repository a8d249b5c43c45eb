// The HTTP server's listener: binding, the accept loop, the refusals over
// max_connections, running the event loop on io_threads threads and the graceful stop.
#include "server_impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <thread>

namespace runq::http {

namespace {
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

std::string endpoint_string(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6()) return fmt::format("[{}]:{}", addr.to_string(), ep.port());
  return fmt::format("{}:{}", addr.to_string(), ep.port());
}

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
}  // namespace

std::uint16_t Server::Impl::listen() {
  tcp::endpoint ep;
  beast::error_code ec;
  auto addr = asio::ip::make_address(opts.host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, opts.port);
  } else {  // a host name such as "localhost"
    tcp::resolver resolver(server_loop);
    auto results = resolver.resolve(opts.host, std::to_string(opts.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty())
      throw std::runtime_error(fmt::format("cannot resolve listen address '{}': {}", opts.host,
                                           ec ? ec.message() : "no address"));
    ep = results.begin()->endpoint();
  }
  try {
    acceptor.emplace(server_loop);
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

std::vector<std::unique_ptr<asio::io_context>> Server::Impl::make_loops(int n) {
  std::vector<std::unique_ptr<asio::io_context>> loops;
  for (int i = 0; i < std::max(n, 1); ++i) loops.push_back(std::make_unique<asio::io_context>(1));
  return loops;
}

void Server::Impl::run() {
  if (acceptor && acceptor->is_open() && !stopping) {
    auto on_done = [](std::exception_ptr e) { log_exception("accept loop", e); };
    asio::co_spawn(server_loop, accept_loop(this), on_done);
    auto on_sweep_done = [](std::exception_ptr e) { log_exception("deadline sweeper", e); };
    asio::co_spawn(server_loop, sweep_loop(this), on_sweep_done);
    for (std::size_t i = 1; i < loops.size(); ++i)
      keep_running.push_back(asio::make_work_guard(loops[i]->get_executor()));
  }
  auto run_loop = [](asio::io_context& loop) {
    for (;;) {
      try {
        loop.run();
        return;
      } catch (const std::exception& e) {  // a handler threw past us: log, keep serving
        spdlog::error("http: event loop: {}", e.what());
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < loops.size(); ++i)
    threads.emplace_back(run_loop, std::ref(*loops[i]));
  run_loop(*loops.front());
  for (auto& t : threads) t.join();
  spdlog::info("http: server stopped");
}

void Server::Impl::stop() {
  if (stopping.exchange(true)) return;
  asio::post(server_loop, [this] { do_stop(); });
}

// Each loop then returns from run() once it has nothing left to do.
void Server::Impl::stop_loops() {
  for (auto& guard : keep_running) guard.reset();
}

void Server::Impl::do_stop() {
  beast::error_code ec;
  if (acceptor) acceptor->close(ec);
  stop_loops();
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(conn_mu);
    for (auto& [ptr, weak] : conns)
      if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  spdlog::info("http: stopping; {} open connection(s)", live.size());
  for (auto& c : live) asio::post(c->loop, [c] { c->on_stop(); });
  if (live.empty()) {
    sweep_timer.cancel();  // the sweeper ends once stopping finds no connection
    return;
  }
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
  for (auto& c : live) asio::post(c->loop, [c] { c->abort(); });
  drain_timer.expires_after(kForceCloseGrace);
  drain_timer.async_wait([this](beast::error_code e) {
    if (e) return;
    spdlog::error("http: connections did not close; stopping the event loop");
    for (auto& loop : loops) loop->stop();
  });
}

// Every kSweepInterval: the connections whose I/O deadline has passed are told so on their
// loop (where on_deadline() checks again and closes the socket). Ends once the server
// is stopping and has no connection left.
awaitable<void> Server::Impl::sweep_loop(Impl* self) {
  std::vector<std::shared_ptr<Connection>> late;
  for (;;) {
    self->sweep_timer.expires_after(kSweepInterval);
    co_await self->sweep_timer.async_wait(kTuple);
    const auto now = Connection::now_ticks();
    {
      std::lock_guard lock(self->conn_mu);
      if (self->stopping && self->conns.empty()) co_return;
      for (auto& [ptr, weak] : self->conns)  // in the map, *ptr is alive (unregister)
        if (ptr->past_deadline(now))
          if (auto c = weak.lock()) late.push_back(std::move(c));
    }
    for (auto& c : late) asio::post(c->loop, [c] { c->on_deadline(); });
    late.clear();
  }
}

awaitable<void> Server::Impl::accept_loop(Impl* self) {
  asio::steady_timer backoff(self->server_loop);
  for (;;) {
    Loop loop = self->loops[self->next_loop++ % self->loops.size()]->get_executor();
    auto [ec, socket] = co_await self->acceptor->async_accept(loop, kTuple);
    if (self->stopping || !self->acceptor->is_open()) co_return;
    if (ec) {
      spdlog::warn("http: accept failed: {}", ec.message());
      backoff.expires_after(kAcceptRetryDelay);
      co_await backoff.async_wait(kTuple);
      continue;
    }
    if (self->at_capacity())
      self->start_refusal(tcp::socket(std::move(socket)), loop);
    else
      self->start_session(tcp::socket(std::move(socket)), loop);
  }
}

// Only the accept loop adds connections, so a check here cannot be overtaken by another
// accept; connections ending meanwhile only make room.
bool Server::Impl::at_capacity() {
  std::lock_guard lock(conn_mu);
  return conns.size() >= opts.max_connections;
}

void Server::Impl::start_refusal(tcp::socket socket, Loop loop) {
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
  asio::co_spawn(loop, refuse(this, std::move(socket)), on_done);
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

void Server::Impl::start_session(tcp::socket socket, Loop loop) {
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);  // answers are single writes: send at once
  auto ep = socket.remote_endpoint(ec);
  std::string remote = ec ? std::string("?") : endpoint_string(ep);
  auto c = std::make_shared<Connection>(std::move(socket), loop, std::move(remote));
  {
    std::lock_guard lock(conn_mu);
    conns.emplace(c.get(), c);
  }
  auto on_done = [](std::exception_ptr e) { log_exception("connection", e); };
  asio::co_spawn(loop, session(this, std::move(c)), on_done);
}

void Server::Impl::unregister(Connection* c) {
  bool last;
  {
    std::lock_guard lock(conn_mu);
    conns.erase(c);
    last = conns.empty();
  }
  if (last && stopping && !tearing_down)
    asio::post(server_loop, [this] {
      drain_timer.cancel();
      sweep_timer.cancel();
    });
}

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
