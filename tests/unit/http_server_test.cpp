// Tests of runq::http::Server over real sockets. The client side is plain POSIX sockets
// writing and reading raw HTTP bytes, so the test checks the bytes on the wire and does
// not share a parser with the code under test.
#include "runq/http/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace rh = runq::http;

// ---------------------------------------------------------------------------------
// A raw HTTP client

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has(const std::string& name) const { return headers.count(name) > 0; }
};

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("connect failed");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Writes everything; false if the peer made that impossible.
  bool send(std::string_view data) {
    while (!data.empty()) {
      auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads more bytes into the buffer; false on end of stream, error or timeout.
  bool fill(std::chrono::milliseconds timeout = 5s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
      timed_out_ = true;
      return false;
    }
    char tmp[16384];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  std::string read_until(std::string_view delim) {
    for (;;) {
      auto pos = buf_.find(delim);
      if (pos != std::string::npos) {
        auto out = buf_.substr(0, pos + delim.size());
        buf_.erase(0, pos + delim.size());
        return out;
      }
      if (!fill()) throw std::runtime_error("connection ended before '" + std::string(delim) +
                                            "'; got: " + buf_);
    }
  }

  std::string read_n(std::size_t n) {
    while (buf_.size() < n)
      if (!fill()) throw std::runtime_error("connection ended before body was complete");
    auto out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }

  // Just the status line and headers.
  RawResponse read_head() {
    RawResponse r;
    std::string head = read_until("\r\n\r\n");
    auto line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0) throw std::runtime_error("bad status line: " + head);
    r.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end + 2;
    while (pos < head.size() - 2) {
      auto end = head.find("\r\n", pos);
      std::string line = head.substr(pos, end - pos);
      auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = end + 2;
    }
    return r;
  }

  // One chunk of a chunked body; "" is the last chunk.
  std::string read_chunk() {
    std::string size_line = read_until("\r\n");
    std::size_t size = std::stoul(size_line, nullptr, 16);
    std::string data = read_n(size);
    EXPECT_EQ(read_n(2), "\r\n");
    return data;
  }

  RawResponse read_response() {
    RawResponse r = read_head();
    if (r.header("transfer-encoding") == "chunked") {
      for (std::string chunk; !(chunk = read_chunk()).empty();) r.body += chunk;
    } else if (r.has("content-length")) {
      r.body = read_n(std::stoul(r.header("content-length")));
    } else if (r.status / 100 != 1 && r.status != 204 && r.status != 304) {
      while (fill()) {
      }
      r.body = std::move(buf_);
      buf_.clear();
    }
    return r;
  }

  // True if the server closes (or resets) the connection within `timeout` without
  // sending anything more.
  bool closed_by_peer(std::chrono::milliseconds timeout = 3s) {
    if (!buf_.empty()) return false;
    eof_ = timed_out_ = false;
    bool got_data = fill(timeout);
    return !got_data && eof_;
  }

  const std::string& pending() const { return buf_; }

 private:
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
  bool timed_out_ = false;
};

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

// ---------------------------------------------------------------------------------
// A test EventStream fed from another thread

class TestStream : public rh::EventStream {
 public:
  std::optional<std::string> poll() override {
    std::lock_guard lock(mu_);
    if (queue_.empty()) return std::nullopt;
    auto s = std::move(queue_.front());
    queue_.pop_front();
    return s;
  }
  bool finished() override {
    std::lock_guard lock(mu_);
    return done_ && queue_.empty();
  }
  std::string heartbeat() override { return ": heartbeat\n\n"; }
  void set_notifier(std::function<void()> notify) override {
    std::lock_guard lock(mu_);
    notify_ = std::move(notify);
  }
  void close() override { closed = true; }

  void push(std::string s) {
    std::function<void()> n;
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(s));
      n = notify_;
    }
    if (n) n();
  }
  void finish() {
    std::function<void()> n;
    {
      std::lock_guard lock(mu_);
      done_ = true;
      n = notify_;
    }
    if (n) n();
  }

  std::atomic<bool> closed{false};

 private:
  std::mutex mu_;
  std::deque<std::string> queue_;
  bool done_ = false;
  std::function<void()> notify_;
};

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 3s) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

// ---------------------------------------------------------------------------------
// Fixture: a real server on 127.0.0.1, port 0, with a small routing handler.

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.io_threads = 2;
    opts.max_body_bytes = 1024;
    opts.max_header_bytes = 2048;
    opts.header_timeout = 2s;
    opts.body_timeout = 2s;
    opts.idle_timeout = 5s;
    opts.write_timeout = 2s;
    opts.heartbeat_interval = 1s;
    opts.shutdown_timeout = 3s;
  }

  void TearDown() override {
    stop_and_join();
    std::vector<std::thread> helpers;
    {
      std::lock_guard lock(mu);
      helpers.swap(helper_threads);
    }
    for (auto& t : helpers) t.join();
    server.reset();
  }

  void start() {
    server = std::make_unique<rh::Server>(
        opts, [this](rh::Request&& req, rh::Reply reply) { handle(std::move(req), std::move(reply)); });
    port = server->listen();
    ASSERT_NE(port, 0);
    run_thread = std::thread([this] {
      server->run();
      run_returned = true;
    });
  }

  // Stops the server; returns how long run() took to return.
  std::chrono::milliseconds stop_and_join() {
    if (!run_thread.joinable()) return 0ms;
    auto t0 = Clock::now();
    server->stop();
    run_thread.join();
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  }

  void spawn(std::function<void()> fn) {
    std::lock_guard lock(mu);
    helper_threads.emplace_back(std::move(fn));
  }

  static rh::Response text(int status, std::string body) {
    rh::Response r;
    r.status = status;
    r.content_type = "text/plain";
    r.body = std::move(body);
    return r;
  }

  void handle(rh::Request&& req, rh::Reply reply) {
    ++handler_calls;
    if (req.path == "/echo") {
      json j = {{"method", req.method}, {"target", req.target}, {"path", req.path},
                {"query", req.query},   {"body", req.body},     {"remote", req.remote}};
      json headers = json::object();
      for (const auto& h : req.headers) headers[h.name] = h.value;
      j["headers"] = headers;
      rh::Response r;
      r.headers.push_back({"X-Extra", "yes"});
      r.body = j.dump();
      reply(std::move(r));
    } else if (req.path == "/slow") {  // answered later from another thread
      int ms = req.query.empty() ? 100 : std::stoi(req.query.substr(req.query.find('=') + 1));
      spawn([reply, ms, target = req.target] {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        reply(text(200, target));
      });
    } else if (req.path == "/big") {  // larger than the socket buffers
      reply(text(200, std::string(64 << 20, 'x')));
    } else if (req.path == "/throw") {
      throw std::runtime_error("boom");
    } else if (req.path == "/drop") {
      // Reply destroyed without being called.
    } else if (req.path == "/hold") {  // the test answers it
      std::lock_guard lock(mu);
      held = std::move(reply);
      held_cv.notify_all();
    } else if (req.path == "/sse") {
      auto s = std::make_shared<TestStream>();
      {
        std::lock_guard lock(mu);
        stream = s;
      }
      rh::Response r;
      r.content_type = "text/event-stream";
      r.stream = s;
      reply(std::move(r));
    } else {
      reply(text(404, "not found"));
    }
  }

  rh::Reply wait_held() {
    std::unique_lock lock(mu);
    held_cv.wait_for(lock, 3s, [this] { return static_cast<bool>(held); });
    return held;
  }

  std::shared_ptr<TestStream> wait_stream() {
    wait_for([this] {
      std::lock_guard lock(mu);
      return static_cast<bool>(stream);
    });
    std::lock_guard lock(mu);
    return stream;
  }

  rh::ServerOptions opts;
  std::unique_ptr<rh::Server> server;
  std::uint16_t port = 0;
  std::thread run_thread;
  std::atomic<bool> run_returned{false};
  std::atomic<int> handler_calls{0};

  std::mutex mu;
  std::condition_variable held_cv;
  rh::Reply held;
  std::shared_ptr<TestStream> stream;
  std::vector<std::thread> helper_threads;
};

// ---------------------------------------------------------------------------------

TEST_F(HttpServerTest, SimpleGetWithHeadersAndBody) {
  start();
  Client c(port);
  c.send(get("/echo?a=1&b=two", "X-Test: Hello\r\n"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("server"), "runq");
  EXPECT_TRUE(r.has("date"));
  EXPECT_EQ(r.header("x-extra"), "yes");
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_FALSE(r.has("connection"));  // HTTP/1.1 default keep-alive: no header needed

  auto j = json::parse(r.body);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["target"], "/echo?a=1&b=two");
  EXPECT_EQ(j["path"], "/echo");
  EXPECT_EQ(j["query"], "a=1&b=two");
  EXPECT_EQ(j["headers"]["x-test"], "Hello");  // names lower-cased, values as sent
  EXPECT_EQ(j["headers"]["host"], "test");
  EXPECT_EQ(j["body"], "");
  EXPECT_EQ(j["remote"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
}

TEST_F(HttpServerTest, HeadSendsLengthButNoBody) {
  start();
  Client c(port);
  c.send("HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  auto head = c.read_head();
  EXPECT_EQ(head.status, 200);
  EXPECT_NE(std::stoul(head.header("content-length")), 0u);
  // The next answer must follow immediately: no body bytes in between.
  c.send(get("/echo?next"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["query"], "next");
}

TEST_F(HttpServerTest, ListenOnBusyPortThrows) {
  start();
  auto o = opts;
  o.port = port;
  rh::Server other(o, [](rh::Request&&, rh::Reply) {});
  EXPECT_THROW(other.listen(), std::runtime_error);
}

TEST_F(HttpServerTest, StopBeforeRunReturnsAtOnce) {
  rh::Server s(opts, [](rh::Request&&, rh::Reply) {});
  s.listen();
  s.stop();
  auto t0 = Clock::now();
  s.run();
  EXPECT_LT(Clock::now() - t0, 500ms);
}

TEST_F(HttpServerTest, UnknownPathAndPostBody) {
  start();
  Client c(port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
         "Content-Length: 13\r\n\r\n{\"prompt\":42}");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["body"], "{\"prompt\":42}");
  EXPECT_EQ(json::parse(r.body)["method"], "POST");

  c.send(get("/nope"));
  r = c.read_response();
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_EQ(r.body, "not found");
}

TEST_F(HttpServerTest, KeepAliveTwoRequestsOnOneConnection) {
  start();
  Client c(port);
  c.send(get("/echo?n=1"));
  auto r1 = c.read_response();
  c.send(get("/echo?n=2"));
  auto r2 = c.read_response();
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r2.status, 200);
  EXPECT_EQ(json::parse(r1.body)["query"], "n=1");
  EXPECT_EQ(json::parse(r2.body)["query"], "n=2");
  EXPECT_EQ(json::parse(r1.body)["remote"], json::parse(r2.body)["remote"]);  // same socket
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredInOrder) {
  start();
  Client c(port);
  // The first one is answered late, from another thread; the second must still wait.
  c.send(get("/slow?ms=200") + get("/echo?second") + get("/slow?ms=10"));
  auto r1 = c.read_response();
  auto r2 = c.read_response();
  auto r3 = c.read_response();
  EXPECT_EQ(r1.body, "/slow?ms=200");
  EXPECT_EQ(json::parse(r2.body)["query"], "second");
  EXPECT_EQ(r3.body, "/slow?ms=10");
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  start();
  Client c(port);
  c.send(get("/echo", "Connection: close\r\n"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAliveAsked) {
  start();
  {
    Client c(port);
    c.send("GET /echo HTTP/1.0\r\n\r\n");
    auto r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("connection"), "close");
    EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    Client c(port);
    c.send("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    auto r = c.read_response();
    EXPECT_EQ(r.header("connection"), "keep-alive");
    c.send("GET /echo?again HTTP/1.0\r\n\r\n");
    r = c.read_response();
    EXPECT_EQ(json::parse(r.body)["query"], "again");
    EXPECT_TRUE(c.closed_by_peer());
  }
}

TEST_F(HttpServerTest, HugeContentLengthGets413WithoutReadingBody) {
  start();
  Client c(port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_EQ(json::parse(r.body)["detail"], "Request body too large (limit 1024 bytes)");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(handler_calls, 0);
}

TEST_F(HttpServerTest, ClientStillSendingBodyReads413) {
  start();
  Client c(port);
  // Expect: 100-continue must not be honoured for a body we refuse.
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 300000\r\n\r\n");
  c.send(std::string(200000, 'x'));  // the client starts sending anyway
  auto r = c.read_response();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(handler_calls, 0);
}

TEST_F(HttpServerTest, HugeHeaderGets431) {
  start();
  Client c(port);
  c.send(get("/echo", "X-Big: " + std::string(8000, 'a') + "\r\n"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(json::parse(r.body)["detail"], "Request header fields too large");
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(handler_calls, 0);
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  start();
  Client c(port);
  c.send("THIS IS NOT HTTP\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["detail"], "Bad request");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, ChunkedRequestBody) {
  start();
  Client c(port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n");
  std::this_thread::sleep_for(20ms);
  c.send("6\r\n world\r\n0\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["body"], "hello world");
  // Still keep-alive afterwards.
  c.send(get("/echo?after"));
  EXPECT_EQ(json::parse(c.read_response().body)["query"], "after");
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitGets413) {
  start();
  Client c(port);
  std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) req += "200\r\n" + std::string(512, 'y') + "\r\n";  // 2048 bytes
  req += "0\r\n\r\n";
  c.send(req);
  auto r = c.read_response();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body)["detail"], "Request body too large (limit 1024 bytes)");
  EXPECT_EQ(handler_calls, 0);
}

TEST_F(HttpServerTest, ExpectContinue) {
  start();
  Client c(port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(c.read_until("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("hello");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["body"], "hello");
}

TEST_F(HttpServerTest, ReplyFromAnotherThreadLater) {
  start();
  Client c(port);
  auto t0 = Clock::now();
  c.send(get("/slow?ms=150"));
  auto r = c.read_response();
  EXPECT_GE(Clock::now() - t0, 140ms);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "/slow?ms=150");
}

TEST_F(HttpServerTest, HandlerThrowsGives500AndConnectionSurvives) {
  start();
  Client c(port);
  c.send(get("/throw"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body)["detail"], "Internal server error");
  c.send(get("/echo?still-alive"));
  EXPECT_EQ(c.read_response().status, 200);
}

TEST_F(HttpServerTest, DroppedReplyGives500) {
  start();
  Client c(port);
  c.send(get("/drop"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body)["detail"], "Internal server error");
}

TEST_F(HttpServerTest, SseStreamChunksHeartbeatAndFinish) {
  start();
  Client c(port);
  c.send(get("/sse", "Accept: text/event-stream\r\n"));
  auto head = c.read_head();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-type"), "text/event-stream");
  EXPECT_EQ(head.header("cache-control"), "no-cache");
  EXPECT_EQ(head.header("transfer-encoding"), "chunked");
  EXPECT_FALSE(head.has("content-length"));

  auto s = wait_stream();
  ASSERT_TRUE(s);
  spawn([s] {
    std::this_thread::sleep_for(50ms);
    s->push("event: status\ndata: {\"n\":1}\n\n");
  });
  EXPECT_EQ(c.read_chunk(), "event: status\ndata: {\"n\":1}\n\n");

  // Nothing for heartbeat_interval (1 s): a heartbeat.
  auto t0 = Clock::now();
  EXPECT_EQ(c.read_chunk(), ": heartbeat\n\n");
  EXPECT_GE(Clock::now() - t0, 800ms);

  spawn([s] {
    s->push("data: 2\n\n");
    s->finish();
  });
  std::string rest;
  for (std::string chunk; !(chunk = c.read_chunk()).empty();) rest += chunk;
  EXPECT_EQ(rest, "data: 2\n\n");
  EXPECT_TRUE(wait_for([&] { return s->closed.load(); }));

  // The connection is still usable after a finished stream.
  c.send(get("/echo?after-stream"));
  EXPECT_EQ(json::parse(c.read_response().body)["query"], "after-stream");
}

TEST_F(HttpServerTest, SseClientGoneClosesStream) {
  start();
  auto c = std::make_unique<Client>(port);
  c->send(get("/sse"));
  c->read_head();
  auto s = wait_stream();
  ASSERT_TRUE(s);
  c.reset();  // the client leaves
  // The first write after the peer left may still succeed; keep producing.
  bool closed = wait_for(
      [&] {
        s->push("data: x\n\n");
        std::this_thread::sleep_for(20ms);
        return s->closed.load();
      },
      3s);
  EXPECT_TRUE(closed);
}

TEST_F(HttpServerTest, StopEndsOpenStreamCleanly) {
  start();
  Client c(port);
  c.send(get("/sse"));
  c.read_head();
  auto s = wait_stream();
  ASSERT_TRUE(s);
  s->push("data: 1\n\n");
  EXPECT_EQ(c.read_chunk(), "data: 1\n\n");
  auto took = stop_and_join();
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(c.read_chunk(), "");  // last chunk: the body was ended properly
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_TRUE(s->closed);
}

TEST_F(HttpServerTest, StopWithIdleConnectionReturnsPromptly) {
  start();
  Client c(port);
  c.send(get("/echo"));
  EXPECT_EQ(c.read_response().status, 200);
  auto took = stop_and_join();
  EXPECT_LT(took, 1000ms);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, StopLetsInFlightRequestFinish) {
  start();
  Client c(port);
  c.send(get("/hold"));
  auto reply = wait_held();
  ASSERT_TRUE(reply);
  server->stop();
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(run_returned);  // still waiting for the in-flight answer
  reply(text(200, "late but fine"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "late but fine");
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_TRUE(wait_for([&] { return run_returned.load(); }));
}

TEST_F(HttpServerTest, StopIsBoundedWhenHandlerNeverAnswers) {
  opts.shutdown_timeout = 1s;
  start();
  Client c(port);
  c.send(get("/hold"));
  auto reply = wait_held();
  ASSERT_TRUE(reply);
  auto took = stop_and_join();
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 3000ms);
  EXPECT_TRUE(c.closed_by_peer());
  reply(text(200, "too late"));  // after run() returned: ignored, no crash
  server.reset();
  reply(text(200, "after destruction"));  // even after ~Server: ignored
  held = nullptr;
}

TEST_F(HttpServerTest, NewConnectionsRefusedAfterStop) {
  start();
  stop_and_join();
  EXPECT_THROW(Client c(port), std::runtime_error);
}

TEST_F(HttpServerTest, HeaderTimeoutClosesSlowClient) {
  opts.header_timeout = 1s;
  start();
  Client c(port);
  c.send("GET /echo HTTP/1.1\r\nHost: t\r\n");  // never finishes the header block
  auto t0 = Clock::now();
  EXPECT_TRUE(c.closed_by_peer(3s));
  EXPECT_LT(Clock::now() - t0, 2500ms);
  EXPECT_EQ(handler_calls, 0);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  opts.idle_timeout = 1s;
  start();
  Client c(port);
  c.send(get("/echo"));
  EXPECT_EQ(c.read_response().status, 200);
  auto t0 = Clock::now();
  EXPECT_TRUE(c.closed_by_peer(3s));
  EXPECT_GE(Clock::now() - t0, 800ms);
}

// I/O deadlines cover reads and writes only: a handler may take longer than every
// timeout, and an SSE stream may stay quiet longer than write_timeout between writes.
TEST_F(HttpServerTest, SlowHandlerOutlivesEveryIoTimeout) {
  opts.header_timeout = 1s;
  opts.write_timeout = 1s;
  opts.idle_timeout = 1s;
  start();
  Client c(port);
  c.send(get("/slow?ms=1800"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "/slow?ms=1800");
}

TEST_F(HttpServerTest, QuietStreamOutlivesWriteTimeout) {
  opts.write_timeout = 1s;
  opts.heartbeat_interval = 2s;  // no write for twice write_timeout
  start();
  Client c(port);
  c.send(get("/sse"));
  EXPECT_EQ(c.read_head().status, 200);
  auto t0 = Clock::now();
  EXPECT_EQ(c.read_chunk(), ": heartbeat\n\n");
  EXPECT_GE(Clock::now() - t0, 1800ms);
}

TEST_F(HttpServerTest, WriteTimeoutClosesClientThatNeverReads) {
  opts.write_timeout = 1s;
  start();
  Client c(port);
  c.send(get("/big"));  // and never read the answer
  EXPECT_TRUE(wait_for([&] { return handler_calls.load() == 1; }));
  EXPECT_TRUE(wait_for([&] { return server->open_connections() == 0; }, 4s));
}

TEST_F(HttpServerTest, ManyClientsInParallel) {
  opts.io_threads = 2;
  start();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      Client c(port);
      for (int i = 0; i < 50; ++i) {
        auto q = std::to_string(t) + "-" + std::to_string(i);
        c.send(get("/echo?" + q));
        auto r = c.read_response();
        if (r.status == 200 && json::parse(r.body)["query"] == q) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 200);
}

// ---------------------------------------------------------------------------------
// max_connections

TEST_F(HttpServerTest, OverMaxConnectionsGetsQuick503) {
  opts.max_connections = 2;
  start();
  Client a(port), b(port);
  a.send(get("/echo?a"));
  b.send(get("/echo?b"));
  EXPECT_EQ(a.read_response().status, 200);
  EXPECT_EQ(b.read_response().status, 200);
  int calls = handler_calls;

  Client c(port);
  auto t0 = Clock::now();
  auto r = c.read_response();  // sent nothing: the answer comes without a request
  EXPECT_LT(Clock::now() - t0, 1000ms);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_EQ(r.body, R"({"detail":"Too many connections"})");
  EXPECT_TRUE(c.closed_by_peer(1s));
  EXPECT_EQ(handler_calls, calls);  // never reached the handler

  // The open connections are unaffected.
  a.send(get("/echo?a2"));
  EXPECT_EQ(json::parse(a.read_response().body)["query"], "a2");
}

TEST_F(HttpServerTest, OverMaxConnectionsClientThatSentARequestReads503) {
  opts.max_connections = 1;
  start();
  Client a(port);
  a.send(get("/echo"));
  EXPECT_EQ(a.read_response().status, 200);
  for (int i = 0; i < 5; ++i) {
    Client c(port);
    // A request (with a body the server never reads) already on its way.
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
           std::string(1000, 'z'));
    auto r = c.read_response();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(json::parse(r.body)["detail"], "Too many connections");
  }
  EXPECT_EQ(handler_calls, 1);
}

TEST_F(HttpServerTest, IdleConnectionsCountTowardsMaxConnections) {
  opts.max_connections = 3;
  start();
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(std::make_unique<Client>(port));  // send nothing
  Client c(port);
  auto t0 = Clock::now();
  EXPECT_EQ(c.read_response().status, 503);
  EXPECT_LT(Clock::now() - t0, 1000ms);
}

TEST_F(HttpServerTest, RoomAgainAfterConnectionsCloseAndRefusalsAreNotCounted) {
  opts.max_connections = 2;
  start();
  auto a = std::make_unique<Client>(port);
  auto b = std::make_unique<Client>(port);
  a->send(get("/echo"));
  b->send(get("/echo"));
  EXPECT_EQ(a->read_response().status, 200);
  EXPECT_EQ(b->read_response().status, 200);
  for (int i = 0; i < 20; ++i) {  // many refusals must not use up any room
    Client c(port);
    EXPECT_EQ(c.read_response().status, 503);
  }
  a.reset();
  b.reset();
  // The server notices the closes asynchronously: allow it a moment, then both slots
  // are usable again at once.
  auto served_client = [&]() -> std::unique_ptr<Client> {
    std::unique_ptr<Client> kept;
    wait_for([&] {
      auto c = std::make_unique<Client>(port);
      c->send(get("/echo?again"));
      if (c->read_response().status != 200) return false;
      kept = std::move(c);
      return true;
    });
    return kept;
  };
  auto c1 = served_client();
  auto c2 = served_client();
  EXPECT_TRUE(c1);
  EXPECT_TRUE(c2);
  Client c3(port);  // c1 and c2 are open: full again
  EXPECT_EQ(c3.read_response().status, 503);
}

TEST_F(HttpServerTest, StopWithAConnectionBeingRefusedReturnsPromptly) {
  opts.max_connections = 1;
  start();
  Client a(port);
  a.send(get("/echo"));
  EXPECT_EQ(a.read_response().status, 200);
  Client c(port);  // refused; never reads nor closes
  std::this_thread::sleep_for(50ms);
  auto took = stop_and_join();
  EXPECT_LT(took, 2000ms);
}

}  // namespace
