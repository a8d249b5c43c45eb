// Outbound HTTP/1.1 calls (http:// and https://) over Beast + Asio + asio::ssl.
//
// One call = one connection = one request and one response ("Connection: close").
// Every step is an Asio async operation run to completion on the call's private
// io_context, on the calling thread; a steady_timer bounds each step (connect phase,
// per-read idle time, whole exchange). cancel() posts to that io_context and closes the
// socket, so a blocked perform() wakes up at once and throws OutboundCancelled. Body
// chunks are handed to on_body on the calling thread between reads, outside the
// io_context, so an exception thrown by on_body simply propagates out of perform().
#include "runq/http/outbound.hpp"

#include "runq/util/ascii.hpp"
#include "runq/util/url.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>

namespace runq::http {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

constexpr const char* kUserAgent = "runq/0.1";
constexpr std::size_t kReadChunk = 16 * 1024;       // bytes handed to on_body at most
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;  // response head limit

// The URL of a call, or std::invalid_argument saying what is wrong with it.
util::Url parse_call_url(const std::string& text) {
  auto parsed = util::parse_url(text);
  if (auto* url = std::get_if<util::Url>(&parsed)) return std::move(*url);
  switch (std::get<util::UrlError>(parsed)) {
    case util::UrlError::scheme:
      throw std::invalid_argument("unsupported URL (only http:// and https://): " + text);
    case util::UrlError::host: throw std::invalid_argument("bad URL (host): " + text);
    case util::UrlError::port: throw std::invalid_argument("bad URL (port): " + text);
  }
  throw std::invalid_argument("bad URL: " + text);
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// A DNS lookup runs on a detached thread of its own: getaddrinfo cannot be interrupted,
// and Asio's async_resolve would make the call's io_context (and so cancel(), the
// connect timeout and ~OutboundCall) wait for it. An abandoned lookup just finishes in
// the background; `abandoned` (under `mu`) keeps it from touching a call that has gone.
struct Lookup {
  std::mutex mu;
  bool abandoned = false;
  asio::io_context* ioc = nullptr;
  tcp::resolver::results_type results;
  error_code ec;
};

}  // namespace

struct OutboundCall::Impl {
  explicit Impl(OutboundRequest r) : req(std::move(r)), url(parse_call_url(req.url)) {}
  ~Impl() { abandon_lookup(); }

  OutboundRequest req;
  util::Url url;

  asio::io_context ioc{1};
  std::shared_ptr<Lookup> lookup;                // the DNS lookup in flight, if any
  std::function<void(error_code)> lookup_done;  // its step's completion
  asio::steady_timer timer{ioc};
  std::optional<ssl::context> ssl_ctx;
  std::optional<ssl::stream<tcp::socket>> tls;
  std::optional<tcp::socket> plain;
  beast::flat_buffer buffer;

  std::atomic<bool> cancelled{false};
  bool performed = false;

  // Which bound the current step runs under, and whether it fired.
  enum class Bound { connect, idle, total, none };
  Bound bound = Bound::none;
  bool timed_out = false;
  Clock::time_point total_deadline = Clock::time_point::max();

  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }

  // Forgets the DNS lookup in flight; returns its step's completion, if it had one.
  std::function<void(error_code)> abandon_lookup() {
    if (!lookup) return {};
    {
      std::lock_guard lock(lookup->mu);
      lookup->abandoned = true;
    }
    lookup.reset();
    return std::exchange(lookup_done, {});
  }

  // Starts a lookup of the URL's host; `done` runs on the io_context when it ends.
  void start_lookup(std::function<void(error_code)> done) {
    auto state = std::make_shared<Lookup>();
    state->ioc = &ioc;
    lookup = state;
    lookup_done = std::move(done);
    try {
      std::thread([this, state, host = url.host, port = url.port] {
        asio::io_context local;
        tcp::resolver resolver(local);
        error_code ec;
        auto results = resolver.resolve(host, port, ec);
        std::lock_guard lock(state->mu);
        if (state->abandoned) return;  // the call may be gone: touch nothing of it
        state->results = std::move(results);
        state->ec = ec;
        // Not abandoned, so the call is alive, and this handler can only run inside its
        // perform() (or be destroyed with its io_context).
        asio::post(*state->ioc, [this, state] {
          if (lookup != state) return;  // abandoned meanwhile
          lookup.reset();
          auto done = std::exchange(lookup_done, {});
          done(state->ec);
        });
      }).detach();
    } catch (const std::system_error& e) {
      lookup.reset();
      lookup_done = {};
      throw OutboundError("resolve " + url.host + ": " + e.what());
    }
  }

  // Runs on the io_context (this thread): stops whatever is in flight.
  void abort_io() {
    error_code ignored;
    if (auto done = abandon_lookup()) done(asio::error::operation_aborted);
    if (tls || plain) {
      socket().shutdown(tcp::socket::shutdown_both, ignored);
      socket().close(ignored);
    }
  }

  [[noreturn]] void throw_cancelled() {
    throw OutboundCancelled("request to " + url.display() + " cancelled");
  }

  // The deadline of one step: its own bound, capped by the whole exchange's.
  Clock::time_point deadline_for(std::chrono::milliseconds d, Bound kind) {
    Clock::time_point own = Clock::time_point::max();
    if (d.count() > 0) own = Clock::now() + d;
    if (total_deadline <= own) {
      bound = total_deadline == Clock::time_point::max() ? Bound::none : Bound::total;
      return total_deadline;
    }
    bound = kind;
    return own;
  }

  // Starts one async step (`start` gets a completion callback taking an error_code)
  // and runs the io_context until it and its timer are done.
  template <class Start>
  error_code run_step(Clock::time_point deadline, Start&& start) {
    if (cancelled.load()) throw_cancelled();
    error_code result;
    bool done = false;
    timed_out = false;
    timer.expires_at(deadline);
    timer.async_wait([this, &done](error_code ec) {
      if (!ec && !done) {
        timed_out = true;
        abort_io();
      }
    });
    auto finish = [this, &done, &result](error_code ec) {
      done = true;
      result = ec;
      timer.cancel();
    };
    start(finish);
    ioc.restart();
    ioc.run();
    if (cancelled.load()) throw_cancelled();
    return result;
  }

  std::string timeout_text(std::string_view what) const {
    std::string out(what);
    switch (bound) {
      case Bound::connect:
        return out + ": timed out after " + ms_text(req.connect_timeout) +
               " (connect timeout)";
      case Bound::idle:
        return out + ": no data for " + ms_text(req.idle_timeout) + " (idle timeout)";
      case Bound::total:
        return out + ": timed out after " + ms_text(req.total_timeout) + " (total timeout)";
      case Bound::none:
        break;
    }
    return out + ": timed out";
  }

  [[noreturn]] void fail(std::string_view what, const error_code& ec) {
    if (timed_out) throw OutboundError(timeout_text(what));
    std::string why;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == bhttp::error::partial_message || ec == ssl::error::stream_truncated)
      why = "connection closed by the server";
    else
      why = ec.message();
    throw OutboundError(std::string(what) + ": " + why);
  }

  void set_up_tls() {
    try {
      ssl_ctx.emplace(ssl::context::tls_client);
      ssl_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1);
      ssl_ctx->set_default_verify_paths();
      if (req.ca_file && !req.ca_file->empty()) {
        error_code ec;
        ssl_ctx->load_verify_file(*req.ca_file, ec);
        if (ec)
          throw OutboundError("cannot load CA file " + *req.ca_file + ": " + ec.message());
      }
      ssl_ctx->set_verify_mode(ssl::verify_peer);
    } catch (const boost::system::system_error& e) {
      throw OutboundError(std::string("TLS set-up failed: ") + e.what());
    }
    tls.emplace(ioc, *ssl_ctx);
    SSL* ssl = tls->native_handle();
    // Host name verification is done by OpenSSL itself during chain verification (the
    // checks of ssl::host_name_verification), so a mismatch has its own verify error
    // ("hostname mismatch") instead of a bare "certificate verify failed".
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip_literal(url.host)) {
      if (X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) != 1)
        throw OutboundError("TLS set-up failed: bad IP address " + url.host);
    } else {
      if (X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), url.host.size()) != 1)
        throw OutboundError("TLS set-up failed: bad host name " + url.host);
      // SNI (never for IP literals, RFC 6066).
      if (SSL_set_tlsext_host_name(ssl, url.host.c_str()) != 1)
        throw OutboundError("TLS set-up failed: cannot set SNI for " + url.host);
    }
  }

  void connect() {
    const auto deadline = deadline_for(req.connect_timeout, Bound::connect);
    tcp::resolver::results_type endpoints;
    std::shared_ptr<Lookup> state;
    error_code ec = run_step(deadline, [&](auto done) {
      start_lookup(done);
      state = lookup;
    });
    if (ec) fail("resolve " + url.host, ec);
    {
      std::lock_guard lock(state->mu);  // written by the lookup thread
      endpoints = state->results;
    }
    if (req.check_address)
      for (const auto& entry : endpoints)
        if (auto why = req.check_address(*entry.endpoint().data()))
          throw OutboundRefused("not connecting to " + url.display() + ": " + *why);

    ec = run_step(deadline, [&](auto done) {
      asio::async_connect(socket(), endpoints,
                          [done](error_code e, const tcp::endpoint&) { done(e); });
    });
    if (ec) fail("connect to " + url.display(), ec);
    socket().set_option(tcp::no_delay(true), ec);

    if (tls) {
      ec = run_step(deadline, [&](auto done) {
        tls->async_handshake(ssl::stream_base::client, [done](error_code e) { done(e); });
      });
      if (ec) {
        const long verify = SSL_get_verify_result(tls->native_handle());
        if (!timed_out && verify != X509_V_OK)
          throw OutboundError("TLS handshake with " + url.display() +
                              ": certificate verify failed (" +
                              X509_verify_cert_error_string(verify) + ")");
        fail("TLS handshake with " + url.display(), ec);
      }
    }
  }

  template <class Stream>
  OutboundResponse exchange(Stream& stream,
                            const std::function<void(std::string_view)>& on_body) {
    // The request.
    bhttp::request<bhttp::string_body> request;
    const auto verb = bhttp::string_to_verb(req.method);
    if (verb == bhttp::verb::unknown) request.method_string(req.method);
    else request.method(verb);
    request.target(url.target);
    request.version(11);
    request.set(bhttp::field::host, url.host_header);
    request.set(bhttp::field::user_agent, kUserAgent);
    for (const auto& h : req.headers) request.set(h.name, h.value);
    request.set(bhttp::field::connection, "close");
    request.body() = req.body;
    request.prepare_payload();

    error_code ec = run_step(deadline_for(req.idle_timeout, Bound::idle), [&](auto done) {
      bhttp::async_write(stream, request, [done](error_code e, std::size_t) { done(e); });
    });
    if (ec) fail("sending the request to " + url.display(), ec);

    // The response head.
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(boost::none);  // counted below, against max_response_bytes
    if (verb == bhttp::verb::head) parser.skip(true);
    const std::string reading = "reading the response from " + url.display();
    ec = run_step(deadline_for(req.idle_timeout, Bound::idle), [&](auto done) {
      bhttp::async_read_header(stream, buffer, parser,
                               [done](error_code e, std::size_t) { done(e); });
    });
    if (ec) fail(reading, ec);

    OutboundResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get())
      out.headers.push_back(Header{util::to_lower(f.name_string()), std::string(f.value())});
    const bool streaming = on_body && out.status >= 200 && out.status < 300;
    const std::size_t limit = req.max_response_bytes;
    auto too_large = [&] {
      throw OutboundError("response from " + url.display() + " is larger than " +
                          std::to_string(limit) + " bytes");
    };
    if (auto len = parser.content_length(); len && *len > limit) too_large();

    // The body: chunked, Content-Length or up to the close.
    std::string chunk(kReadChunk, '\0');
    std::size_t received = 0;
    while (!parser.is_done()) {
      auto& body = parser.get().body();
      body.data = chunk.data();
      body.size = chunk.size();
      ec = run_step(deadline_for(req.idle_timeout, Bound::idle), [&](auto done) {
        bhttp::async_read_some(stream, buffer, parser,
                               [done](error_code e, std::size_t) { done(e); });
      });
      if (ec == bhttp::error::need_buffer) ec = {};
      // A TLS peer that closes without close_notify ends a close-delimited body too.
      if (ec == ssl::error::stream_truncated && !parser.is_done() && !parser.chunked() &&
          !parser.content_length()) {
        error_code eof_ec;
        parser.put_eof(eof_ec);
        if (!eof_ec) ec = {};
      }
      const std::size_t n = chunk.size() - parser.get().body().size;
      if (n > 0) {
        received += n;
        if (received > limit) too_large();
        if (streaming) on_body(std::string_view(chunk.data(), n));
        else out.body.append(chunk.data(), n);
        if (cancelled.load()) throw_cancelled();
      }
      if (ec) fail(reading, ec);
    }
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
    return out;
  }
};

OutboundCall::OutboundCall(OutboundRequest request)
    : impl_(std::make_unique<Impl>(std::move(request))) {}

OutboundCall::~OutboundCall() = default;

void OutboundCall::cancel() {
  Impl* impl = impl_.get();
  impl->cancelled.store(true);
  // Runs on the io_context's thread (inside perform) or when perform next runs it.
  asio::post(impl->ioc, [impl] {
    impl->timer.cancel();
    impl->abort_io();
  });
}

OutboundResponse OutboundCall::perform(const std::function<void(std::string_view)>& on_body) {
  Impl& d = *impl_;
  if (d.cancelled.load()) d.throw_cancelled();
  if (d.performed) throw std::logic_error("OutboundCall::perform called twice");
  d.performed = true;
  if (d.req.total_timeout.count() > 0) d.total_deadline = Clock::now() + d.req.total_timeout;

  if (d.url.tls) d.set_up_tls();
  else d.plain.emplace(d.ioc);
  d.connect();
  if (d.tls) return d.exchange(*d.tls, on_body);
  return d.exchange(*d.plain, on_body);
}

}  // namespace runq::http
