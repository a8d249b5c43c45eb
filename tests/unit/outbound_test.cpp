// Tests of runq::http::OutboundCall against a tiny loopback server written with plain
// POSIX sockets (and raw OpenSSL for the TLS cases), so the bytes on the wire are
// scripted by hand and no parser is shared with the code under test.
#include "runq/http/client.hpp"
#include "runq/http/outbound.hpp"
#include "runq/util/ip_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace rh = runq::http;

// ---------------------------------------------------------------------------------
// One accepted connection, plain or TLS.

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;

  bool send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ssl ? SSL_write(ssl, data.data() + off, int(data.size() - off))
                      : ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += std::size_t(n);
    }
    return true;
  }
  ssize_t recv(char* buf, std::size_t n) {
    return ssl ? SSL_read(ssl, buf, int(n)) : ::recv(fd, buf, n, 0);
  }
  // Waits up to `timeout` for the peer to close the connection (EOF or error).
  bool wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[256];
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, 20);
      if (r > 0) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
      }
    }
    return false;
  }
};

std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

// ---------------------------------------------------------------------------------
// A loopback server: accepts connections one after the other, reads the request (head
// and Content-Length body), records it, then lets the test's handler answer.

class TestServer {
 public:
  using Handler = std::function<void(Conn&, const std::string& request)>;

  // With read_first false the handler runs at once, before any request is read.
  explicit TestServer(Handler handler, SSL_CTX* tls = nullptr, bool v6 = false,
                      bool read_first = true)
      : handler_(std::move(handler)), tls_(tls), read_first_(read_first) {
    listen_fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) {
      sockaddr_in6 addr{};
      addr.sin6_family = AF_INET6;
      addr.sin6_addr = in6addr_loopback;
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(listen_fd_);
        throw std::runtime_error("bind ::1 failed");
      }
      socklen_t len = sizeof addr;
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin6_port);
    } else {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw std::runtime_error("bind failed");
      socklen_t len = sizeof addr;
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    }
    ::listen(listen_fd_, 16);
    thread_ = std::thread([this] { loop(); });
  }

  ~TestServer() {
    stop_.store(true);
    thread_.join();
    ::close(listen_fd_);
  }

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/", const std::string& scheme = "http",
                  const std::string& host = "127.0.0.1") const {
    return scheme + "://" + host + ":" + std::to_string(port_) + path;
  }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int accepted() const { return accepted_.load(); }
  std::string server_name() const {
    std::lock_guard lock(mu_);
    return server_name_;
  }

 private:
  void loop() {
    while (!stop_.load()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      accepted_.fetch_add(1);
      Conn conn{fd, nullptr};
      if (tls_) {
        conn.ssl = SSL_new(tls_);
        SSL_set_fd(conn.ssl, fd);
        if (SSL_accept(conn.ssl) != 1) {  // the client refused our certificate, e.g.
          SSL_free(conn.ssl);
          ::close(fd);
          continue;
        }
        if (const char* sni = SSL_get_servername(conn.ssl, TLSEXT_NAMETYPE_host_name)) {
          std::lock_guard lock(mu_);
          server_name_ = sni;
        }
      }
      std::string request;
      if (!read_first_) {
        handler_(conn, request);
      } else if (read_request(conn, request)) {
        {
          std::lock_guard lock(mu_);
          requests_.push_back(request);
        }
        handler_(conn, request);
      }
      if (conn.ssl) {
        SSL_shutdown(conn.ssl);
        SSL_free(conn.ssl);
      }
      ::close(fd);
    }
  }

  static bool read_request(Conn& conn, std::string& out) {
    char buf[4096];
    std::size_t head_end;
    while ((head_end = out.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = conn.recv(buf, sizeof buf);
      if (n <= 0) return false;
      out.append(buf, std::size_t(n));
    }
    std::size_t length = 0;
    std::string lower_head = out.substr(0, head_end);
    for (auto& c : lower_head) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (auto pos = lower_head.find("\r\ncontent-length:"); pos != std::string::npos)
      length = std::stoul(lower_head.substr(pos + 17));
    while (out.size() < head_end + 4 + length) {
      ssize_t n = conn.recv(buf, sizeof buf);
      if (n <= 0) return false;
      out.append(buf, std::size_t(n));
    }
    return true;
  }

  Handler handler_;
  SSL_CTX* tls_;
  bool read_first_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::string server_name_;
  std::thread thread_;
};

// A port where nothing listens.
std::uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

rh::OutboundRequest get(const std::string& url) {
  rh::OutboundRequest r;
  r.method = "GET";
  r.url = url;
  return r;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_TRUE(contains((haystack), (needle))) << (haystack) << "\n  lacks: " << (needle)

// ---------------------------------------------------------------------------------
// Plain HTTP

TEST(Outbound, ContentLengthBodyAndTheRequestOnTheWire) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Thing: Yes\r\n\r\nhello");
  });
  rh::OutboundRequest req;
  req.method = "POST";
  req.url = server.url("/v1/chat?x=1&y=2#frag");
  req.headers = {{"Authorization", "Bearer k"}, {"Content-Type", "application/json"}};
  req.body = R"({"a":1})";
  rh::OutboundCall call(req);
  auto r = call.perform();
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "hello");
  ASSERT_NE(r.header("x-thing"), nullptr);
  EXPECT_EQ(*r.header("x-thing"), "Yes");

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const std::string& wire = reqs[0];
  EXPECT_EQ(wire.rfind("POST /v1/chat?x=1&y=2 HTTP/1.1\r\n", 0), 0u) << wire;
  EXPECT_CONTAINS(wire, "\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n");
  EXPECT_CONTAINS(wire, "\r\nUser-Agent: runq/0.1\r\n");
  EXPECT_CONTAINS(wire, "\r\nContent-Length: 7\r\n");
  EXPECT_CONTAINS(wire, "\r\nAuthorization: Bearer k\r\n");
  EXPECT_EQ(wire.substr(wire.size() - 7), R"({"a":1})");
}

TEST(Outbound, ChunkedBody) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(chunk("Hello, "));
    std::this_thread::sleep_for(20ms);
    c.send(chunk("chunked ") + chunk("world"));
    c.send("0\r\n\r\n");
  });
  rh::OutboundCall call(get(server.url("/x")));
  auto r = call.perform();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello, chunked world");
}

TEST(Outbound, CloseDelimitedBody) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ");
    std::this_thread::sleep_for(20ms);
    c.send("the close");
  });
  rh::OutboundCall call(get(server.url()));
  auto r = call.perform();
  EXPECT_EQ(r.body, "until the close");
}

TEST(Outbound, OnBodyGetsChunksAsTheyArrive) {
  std::atomic<bool> last_sent{false};
  TestServer server([&](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; ++i) {
      c.send(chunk("part" + std::to_string(i) + ";"));
      std::this_thread::sleep_for(60ms);
    }
    last_sent.store(true);
    c.send("0\r\n\r\n");
  });
  std::vector<std::string> pieces;
  bool first_before_last = false;
  rh::OutboundCall call(get(server.url()));
  auto r = call.perform([&](std::string_view data) {
    if (pieces.empty()) first_before_last = !last_sent.load();
    pieces.emplace_back(data);
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(first_before_last);
  EXPECT_GE(pieces.size(), 3u);  // streamed, not collected
  std::string joined;
  for (auto& p : pieces) joined += p;
  EXPECT_EQ(joined, "part0;part1;part2;part3;part4;");
}

TEST(Outbound, ErrorStatusBodyIsCollectedNotStreamed) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy");
  });
  bool called = false;
  rh::OutboundCall call(get(server.url()));
  auto r = call.perform([&](std::string_view) { called = true; });
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "busy");
  ASSERT_NE(r.header("retry-after"), nullptr);
  EXPECT_EQ(*r.header("retry-after"), "7");
  EXPECT_FALSE(called);
}

TEST(Outbound, ExceptionFromOnBodyPropagates) {
  struct Stop {};
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("a"));
    c.wait_closed(2s);
  });
  rh::OutboundCall call(get(server.url()));
  EXPECT_THROW(call.perform([](std::string_view) { throw Stop{}; }), Stop);
}

TEST(Outbound, Ipv6Literal) {
  std::unique_ptr<TestServer> server;
  try {
    server = std::make_unique<TestServer>(
        [](Conn& c, const std::string&) {
          c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6");
        },
        nullptr, true);
  } catch (const std::exception&) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  rh::OutboundCall call(get(server->url("/six", "http", "[::1]")));
  auto r = call.perform();
  EXPECT_EQ(r.body, "v6");
  auto reqs = server->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_CONTAINS(reqs[0], "\r\nHost: [::1]:" + std::to_string(server->port()) + "\r\n");
}

TEST(Outbound, BadUrlIsInvalidArgument) {
  EXPECT_THROW(rh::OutboundCall(get("ftp://example.com/")), std::invalid_argument);
  EXPECT_THROW(rh::OutboundCall(get("http://:80/")), std::invalid_argument);
  EXPECT_THROW(rh::OutboundCall(get("http://host:99999/")), std::invalid_argument);
  EXPECT_THROW(rh::OutboundCall(get("http://[::1/")), std::invalid_argument);
}

// check_address is asked about every address the host NAME resolved to, and the call
// connects only after it said yes: a refusal is OutboundRefused, with no connection.
TEST(Outbound, CheckAddressSeesTheResolvedAddresses) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  std::vector<std::string> seen;
  auto req = get(server.url("/", "http", "localhost"));
  req.check_address = [&seen](const sockaddr& a) -> std::optional<std::string> {
    seen.push_back(runq::util::address_text(a));
    return std::nullopt;
  };
  rh::OutboundCall call(req);
  EXPECT_EQ(call.perform().body, "ok");
  EXPECT_NE(std::find(seen.begin(), seen.end(), "127.0.0.1"), seen.end());
}

TEST(Outbound, CheckAddressRefusalMeansNoConnection) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  auto req = get(server.url("/", "http", "localhost"));
  req.check_address = [](const sockaddr& a) -> std::optional<std::string> {
    if (runq::util::classify_address(a) == runq::util::AddressClass::global) return std::nullopt;
    return "not public";
  };
  rh::OutboundCall call(req);
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundRefused& e) {
    EXPECT_CONTAINS(std::string(e.what()), "not connecting to localhost:");
    EXPECT_CONTAINS(std::string(e.what()), "not public");
  }
  EXPECT_EQ(server.accepted(), 0);
}

// ---------------------------------------------------------------------------------
// Failures and limits

TEST(Outbound, ConnectRefused) {
  const auto port = closed_port();
  rh::OutboundCall call(get("http://127.0.0.1:" + std::to_string(port) + "/"));
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundCancelled&) {
    FAIL() << "not a cancel";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "connect to 127.0.0.1:" + std::to_string(port));
    EXPECT_CONTAINS(std::string(e.what()), "refused");
  }
}

TEST(Outbound, UnknownHost) {
  rh::OutboundCall call(get("http://no-such-host.invalid/"));
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "resolve no-such-host.invalid");
  }
}

// A listening socket whose accept queue is full: Linux drops further SYNs, so a
// connect to it hangs (until the client gives up).
class Blackhole {
 public:
  Blackhole() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listen_fd_, 0);
    for (int i = 0; i < 4; ++i) {  // fill the queue (non-blocking connects)
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(fd);
    }
    std::this_thread::sleep_for(50ms);
  }
  ~Blackhole() {
    for (int fd : fillers_) ::close(fd);
    ::close(listen_fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> fillers_;
};

TEST(Outbound, ConnectTimeout) {
  Blackhole hole;
  auto req = get(hole.url());
  req.connect_timeout = 300ms;
  rh::OutboundCall call(req);
  const auto start = Clock::now();
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "connect to 127.0.0.1:");
    EXPECT_CONTAINS(std::string(e.what()), "timed out after 300 ms (connect timeout)");
  }
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST(Outbound, IdleTimeout) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome");
    c.wait_closed(3s);
  });
  auto req = get(server.url());
  req.idle_timeout = 200ms;
  rh::OutboundCall call(req);
  const auto start = Clock::now();
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "idle timeout");
  }
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST(Outbound, IdleTimeoutWhileWaitingForTheHead) {
  TestServer server([](Conn& c, const std::string&) { c.wait_closed(3s); });
  auto req = get(server.url());
  req.idle_timeout = 200ms;
  rh::OutboundCall call(req);
  const auto start = Clock::now();
  EXPECT_THROW(call.perform(), rh::OutboundError);
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST(Outbound, TotalTimeoutBoundsADrippingBody) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 50; ++i) {
      if (!c.send(chunk("x"))) return;
      std::this_thread::sleep_for(50ms);
    }
  });
  auto req = get(server.url());
  req.idle_timeout = 10s;
  req.total_timeout = 400ms;
  rh::OutboundCall call(req);
  const auto start = Clock::now();
  try {
    call.perform([](std::string_view) {});
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "total timeout");
  }
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST(Outbound, ConnectionClosedMidBody) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..");
  });
  rh::OutboundCall call(get(server.url()));
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "connection closed");
  }
}

TEST(Outbound, MaxResponseBytesContentLength) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'x'));
  });
  auto req = get(server.url());
  req.max_response_bytes = 100;
  rh::OutboundCall call(req);
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "larger than 100 bytes");
  }
}

TEST(Outbound, MaxResponseBytesChunkedAndStreamed) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20; ++i)
      if (!c.send(chunk(std::string(50, 'y')))) return;
    c.send("0\r\n\r\n");
  });
  auto req = get(server.url());
  req.max_response_bytes = 300;
  rh::OutboundCall call(req);
  std::size_t streamed = 0;
  EXPECT_THROW(call.perform([&](std::string_view d) { streamed += d.size(); }),
               rh::OutboundError);
  EXPECT_LE(streamed, 300u);
}

TEST(Outbound, ExactlyTheLimitIsFine) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'z'));
  });
  auto req = get(server.url());
  req.max_response_bytes = 100;
  rh::OutboundCall call(req);
  EXPECT_EQ(call.perform().body.size(), 100u);
}

// ---------------------------------------------------------------------------------
// Cancel

TEST(Outbound, CancelFromAnotherThreadDuringASlowBody) {
  std::atomic<bool> server_saw_close{false};
  TestServer server([&](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("first"));
    server_saw_close.store(c.wait_closed(5s));
  });
  rh::OutboundCall call(get(server.url()));
  std::atomic<bool> got_first{false};
  Clock::time_point cancelled_at;
  std::thread canceller([&] {
    while (!got_first.load()) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(50ms);
    cancelled_at = Clock::now();
    call.cancel();
  });
  try {
    call.perform([&](std::string_view) { got_first.store(true); });
    ADD_FAILURE() << "no error";
  } catch (const rh::OutboundCancelled&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a cancel: " << e.what();
  }
  const auto returned_at = Clock::now();
  canceller.join();
  EXPECT_LT(returned_at - cancelled_at, 200ms);
  for (int i = 0; i < 100 && !server_saw_close.load(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(server_saw_close.load());
}

TEST(Outbound, CancelWhileWaitingForTheHead) {
  TestServer server([](Conn& c, const std::string&) { c.wait_closed(5s); });
  rh::OutboundCall call(get(server.url()));
  std::thread canceller([&] {
    while (server.requests().empty()) std::this_thread::sleep_for(1ms);
    call.cancel();
  });
  const auto start = Clock::now();
  EXPECT_THROW(call.perform(), rh::OutboundCancelled);
  EXPECT_LT(Clock::now() - start, 2s);
  canceller.join();
}

TEST(Outbound, CancelWhileConnecting) {
  Blackhole hole;
  rh::OutboundCall call(get(hole.url()));
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    call.cancel();
  });
  const auto start = Clock::now();
  EXPECT_THROW(call.perform(), rh::OutboundCancelled);
  EXPECT_LT(Clock::now() - start, 1s);
  canceller.join();
}

TEST(Outbound, CancelBeforePerformThrowsAtOnce) {
  TestServer server([](Conn& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  rh::OutboundCall call(get(server.url()));
  call.cancel();
  EXPECT_THROW(call.perform(), rh::OutboundCancelled);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(server.accepted(), 0);
}

// ---------------------------------------------------------------------------------
// TLS, with a self-signed certificate made here

struct Cert {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  std::string pem_path;
  SSL_CTX* server_ctx = nullptr;

  explicit Cert(const std::string& san) {
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("runq test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(cert, key, EVP_sha256());

    static std::atomic<int> counter{0};
    pem_path = (std::filesystem::temp_directory_path() /
                ("runq-outbound-test-" + std::to_string(::getpid()) + "-" +
                 std::to_string(counter++) + ".pem"))
                   .string();
    FILE* f = std::fopen(pem_path.c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);

    server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(server_ctx, cert);
    SSL_CTX_use_PrivateKey(server_ctx, key);
  }
  ~Cert() {
    SSL_CTX_free(server_ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    std::remove(pem_path.c_str());
  }
};

void answer_ok(Conn& c, const std::string&) {
  c.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret");
}

TEST(OutboundTls, TrustedWithCaFile) {
  Cert cert("DNS:localhost,IP:127.0.0.1");
  TestServer server(answer_ok, cert.server_ctx);
  auto req = get(server.url("/tls", "https"));
  req.ca_file = cert.pem_path;
  rh::OutboundCall call(req);
  auto r = call.perform();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "secret");
  EXPECT_EQ(server.server_name(), "");  // no SNI for an IP literal
}

TEST(OutboundTls, HostNameAndSni) {
  Cert cert("DNS:localhost");
  TestServer server(answer_ok, cert.server_ctx);
  auto req = get(server.url("/tls", "https", "localhost"));
  req.ca_file = cert.pem_path;
  rh::OutboundCall call(req);
  auto r = call.perform();
  EXPECT_EQ(r.body, "secret");
  EXPECT_EQ(server.server_name(), "localhost");
}

TEST(OutboundTls, UntrustedCertificateFails) {
  Cert cert("DNS:localhost,IP:127.0.0.1");
  TestServer server(answer_ok, cert.server_ctx);
  rh::OutboundCall call(get(server.url("/tls", "https")));
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "TLS handshake with 127.0.0.1:");
    EXPECT_CONTAINS(std::string(e.what()), "certificate verify failed");
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST(OutboundTls, HostMismatchFails) {
  Cert cert("DNS:example.com");
  TestServer server(answer_ok, cert.server_ctx);
  auto req = get(server.url("/tls", "https"));
  req.ca_file = cert.pem_path;
  rh::OutboundCall call(req);
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "certificate verify failed");
    EXPECT_CONTAINS(std::string(e.what()), "mismatch");
  }
}

TEST(OutboundTls, TlsToAPlainServerFails) {
  TestServer server(
      [](Conn& c, const std::string&) {
        c.send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      },
      nullptr, false, false);
  auto req = get(server.url("/", "https"));
  rh::OutboundCall call(req);
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "TLS handshake with 127.0.0.1:");
  }
}

TEST(OutboundTls, MissingCaFileIsAClearError) {
  auto req = get("https://127.0.0.1:1/");
  req.ca_file = "/nonexistent/ca.pem";
  rh::OutboundCall call(req);
  try {
    call.perform();
    FAIL() << "no error";
  } catch (const rh::OutboundError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "cannot load CA file /nonexistent/ca.pem");
  }
}

// ---------------------------------------------------------------------------------
// The CLI's client is a layer over OutboundCall

TEST(CliClient, RequestAndStream) {
  TestServer server([](Conn& c, const std::string& request) {
    if (request.rfind("GET /stream", 0) == 0) {
      c.send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
             "Transfer-Encoding: chunked\r\n\r\n" +
             chunk("event: a\n\n") + chunk("event: b\n\n") + "0\r\n\r\n");
    } else {
      c.send("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}");
    }
  });
  auto r = rh::request("POST", server.url("/api/v1/runs"), R"({"prompt":"x"})");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, "{}");
  std::string streamed;
  auto s = rh::stream(server.url("/stream"), {}, [&](std::string_view d) { streamed += d; });
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(streamed, "event: a\n\nevent: b\n\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_CONTAINS(reqs[0], "\r\nContent-Type: application/json\r\n");
  EXPECT_CONTAINS(reqs[0], "\r\nUser-Agent: runq-cli/0.1\r\n");
  EXPECT_CONTAINS(reqs[1], "\r\nAccept: text/event-stream\r\n");
}

TEST(CliClient, ConnectionErrorWhenUnreachable) {
  const auto port = closed_port();
  EXPECT_THROW(rh::request("GET", "http://127.0.0.1:" + std::to_string(port) + "/health"),
               rh::ConnectionError);
  EXPECT_THROW(rh::stream("http://127.0.0.1:" + std::to_string(port) + "/s", {},
                          [](std::string_view) {}),
               rh::ConnectionError);
}

}  // namespace
