#pragma once
// Private to http/: the server's shared state. One event loop (an io_context) per I/O
// thread, each run by that thread alone, so whatever runs on one loop runs one thing at a
// time without a strand. The acceptor, the deadline sweeper and stop() live on the first
// loop (listener.cpp); each connection is given a loop in turn and lives on it: one
// coroutine serving its requests strictly one after another: read -> handle -> write
// (session.cpp), which is also what keeps pipelined answers in order. Anything that
// comes from another thread (a Reply, an SSE notifier, stop()) is posted onto the
// connection's loop and wakes the coroutine by cancelling the timer it sleeps on. I/O
// deadlines are not timers: each connection stores its deadline, and one sweeper per
// server (every kSweepInterval) closes the sockets whose deadline has passed, so a
// request arms and cancels no timer.
#include "runq/http/server.hpp"

#include "response_head.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace runq::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
// An event loop's executor: a loop is run by one thread, so it serialises like a strand.
using Loop = asio::io_context::executor_type;
template <typename T>
using awaitable = asio::awaitable<T>;

// Boost 1.81 has no default completion token; errors come back as values, not throws.
inline constexpr asio::as_tuple_t<asio::use_awaitable_t<>> kTuple{};

// How often the sweeper looks for connections past their I/O deadline: the precision of
// every HTTP timeout (they are whole seconds).
inline constexpr std::chrono::milliseconds kSweepInterval{250};

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
  Connection(tcp::socket socket_, Loop loop_, std::string remote_)
      : loop(std::move(loop_)),
        socket(std::move(socket_)),
        wake(loop),
        remote(std::move(remote_)) {}

  Loop loop;
  tcp::socket socket;
  beast::flat_buffer buffer;  // reused for every request on this connection
  asio::steady_timer wake;    // the coroutine sleeps on it; cancel() wakes it up
  std::string remote;
  std::string out;            // reused for response heads and SSE chunk framing

  // Everything below is touched only on `loop`.
  std::uint64_t seq = 0;           // which request a Reply belongs to
  std::optional<Response> reply;   // set when the handler's answer arrives
  bool idle = false;               // waiting for the first byte of a request
  bool stopping = false;           // server stop: finish this request, then close
  bool aborted = false;            // stop deadline passed: give up at once
  bool notified = false;           // SSE notifier fired since the last poll
  std::atomic<bool> notify_pending{false};  // coalesces notifier posts (any thread)

  // The I/O deadline, in steady_clock ticks: set on the loop around each read or
  // write, read by the sweeper (any thread). An operation in flight past it ends when
  // the sweeper closes the socket.
  static constexpr std::int64_t kNoDeadline = INT64_MAX;
  std::atomic<std::int64_t> deadline{kNoDeadline};

  static std::int64_t now_ticks() {
    return std::chrono::steady_clock::now().time_since_epoch().count();
  }
  void expires_after(std::chrono::steady_clock::duration d) {
    deadline.store(now_ticks() + d.count(), std::memory_order_relaxed);
  }
  void expires_never() { deadline.store(kNoDeadline, std::memory_order_relaxed); }
  bool past_deadline(std::int64_t now) const {
    return deadline.load(std::memory_order_relaxed) <= now;
  }
  // On the loop, after a sweep saw the deadline pass: still past it (not re-armed in
  // between)? Then time out what is in flight, as a closed socket.
  void on_deadline() {
    if (!past_deadline(now_ticks())) return;
    beast::error_code ec;
    socket.close(ec);
  }

  void deliver(std::uint64_t s, Response r) {
    if (s != seq || reply) return;  // late answer to an earlier, already answered request
    reply = std::move(r);
    wake.cancel();
  }

  void on_stop() {
    stopping = true;
    wake.cancel();
    beast::error_code ec;
    if (idle) socket.cancel(ec);  // nothing in flight: stop waiting for a next request
  }

  void abort() {
    aborted = true;
    stopping = true;
    wake.cancel();
    beast::error_code ec;
    socket.close(ec);
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
    if (c->loop.running_in_this_thread()) {
      c->deliver(seq_, std::move(r));
      return;
    }
    asio::post(c->loop, [c, seq = seq_, r = std::move(r)]() mutable {
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
struct Server::Impl {
  Impl(ServerOptions o, Handler h) : opts(std::move(o)), handler(std::move(h)) {
    if (opts.io_threads < 1) opts.io_threads = 1;
  }

  ~Impl() {
    {
      std::lock_guard lock(life->mu);
      life->alive = false;
    }
    // Destroying the loops (below) destroys coroutine frames that never finished
    // (run() not called, or the loops stopped at the deadline); they unregister quietly.
    tearing_down = true;
  }

  std::uint16_t listen();
  void run();
  void stop();

  // Members are destroyed bottom-up: everything after `loops` goes before them, and the
  // registry outlives them because dying coroutine frames unregister themselves.
  ServerOptions opts;
  Handler handler;
  std::shared_ptr<Life> life = std::make_shared<Life>();
  std::atomic<bool> stopping{false};
  std::atomic<bool> tearing_down{false};
  mutable std::mutex conn_mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;
  std::atomic<std::size_t> refusing{0};  // 503s for max_connections in progress
  std::uint64_t refused_total = 0;       // server loop only
  std::optional<std::chrono::steady_clock::time_point> last_refuse_warn;  // server loop

  // One per I/O thread; each is told it has one thread (concurrency hint 1), which lets
  // Asio skip locking for what a loop posts to itself.
  std::vector<std::unique_ptr<asio::io_context>> loops = make_loops(opts.io_threads);
  Loop server_loop{loops.front()->get_executor()};  // acceptor, sweeper, stop, drain
  std::size_t next_loop = 0;                        // round robin, server loop only
  // Keep the other loops running while they have no connection, until stop().
  std::vector<asio::executor_work_guard<Loop>> keep_running;
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer drain_timer{server_loop};
  asio::steady_timer sweep_timer{server_loop};

 private:
  static std::vector<std::unique_ptr<asio::io_context>> make_loops(int n);
  void stop_loops();
  static awaitable<void> accept_loop(Impl* self);
  static awaitable<void> sweep_loop(Impl* self);
  void start_session(tcp::socket socket, Loop loop);
  bool at_capacity();
  void start_refusal(tcp::socket socket, Loop loop);
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

}  // namespace runq::http
