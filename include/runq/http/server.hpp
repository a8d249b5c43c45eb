#pragma once
#include "runq/http/message.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace runq::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8005;               // 0 picks a free port
  int io_threads = 2;                      // threads running the event loop
  std::size_t max_body_bytes = 1 << 20;    // larger bodies get 413 without being read
  std::size_t max_header_bytes = 16 << 10; // a larger header block gets 431
  std::size_t max_connections = 10000;     // beyond it a new connection gets a quick 503
  std::chrono::seconds header_timeout{10}; // time to receive a whole header block
  std::chrono::seconds body_timeout{30};   // time to receive a whole body
  std::chrono::seconds idle_timeout{60};   // keep-alive connection with no request
  std::chrono::seconds write_timeout{30};  // time to send one response
  std::chrono::seconds heartbeat_interval{5};  // SSE idle heartbeat
  std::chrono::seconds shutdown_timeout{10};   // stop(): longest wait for in-flight requests
  // Called (on an io thread) with the status of each answer the server gives by itself,
  // without the handler: 400, 413, 431, and 503 over max_connections. May be empty.
  std::function<void(int status)> on_rejected;
};

// The HTTP/1.1 server: owns sockets, parsing, keep-alive, limits, timeouts and SSE
// streaming, and hands each request to `handler` as a plain Request.
class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the port actually bound. Throws on failure.
  std::uint16_t listen();
  // Runs the event loop on io_threads threads; returns after stop() once all
  // connections are closed.
  void run();
  // Stops accepting, lets in-flight requests finish, ends streams, closes idle
  // connections. Thread-safe; returns at once.
  void stop();
  // Connections open right now (thread-safe).
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runq::http
