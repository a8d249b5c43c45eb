// Request parsing as the server does it; see request_parser.hpp.
#include "request_parser.hpp"

#include "runq/util/ascii.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>

namespace runq::http {
namespace detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

}  // namespace

void apply_limits(RequestParser& parser, const RequestLimits& limits) {
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(limits.max_header_bytes, UINT32_MAX)));
  parser.body_limit(limits.max_body_bytes);  // a larger Content-Length fails the header read
}

ParseError classify_read_error(const beast::error_code& ec) {
  static const auto& category = bhttp::make_error_code(bhttp::error::bad_method).category();
  if (ec == bhttp::error::header_limit) return ParseError::header_too_large;
  if (ec == bhttp::error::body_limit) return ParseError::body_too_large;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message)
    return ParseError::incomplete;
  if (ec.category() == category) return ParseError::bad_request;
  return ParseError::incomplete;  // timeout, reset, stop(): nobody to answer
}

bool expects_continue(const RequestParser& parser) {
  const auto& msg = parser.get();
  return msg.version() >= 11 && util::iequals(msg[bhttp::field::expect], "100-continue");
}

Request to_request(RequestParser& parser, std::string remote) {
  auto msg = parser.release();
  Request req;
  req.method = msg.method_string();
  req.target = msg.target();
  auto q = req.target.find('?');
  if (q == std::string::npos) {
    req.path = req.target;
  } else {
    req.path = req.target.substr(0, q);
    req.query = req.target.substr(q + 1);
  }
  req.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
  for (const auto& f : msg)
    req.headers.push_back(Header{util::to_lower(f.name_string()), std::string(f.value())});
  req.body = std::move(msg.body());
  req.remote = std::move(remote);
  return req;
}

}  // namespace detail

namespace {

// A SyncReadStream over bytes in memory that hands them out `chunk` at a time, then
// reports end of stream, like a socket whose peer has sent everything and half-closed.
class MemoryStream {
 public:
  MemoryStream(std::string_view bytes, std::size_t chunk)
      : bytes_(bytes), chunk_(chunk == 0 ? bytes.size() : chunk) {}

  template <typename Buffers>
  std::size_t read_some(const Buffers& buffers, boost::beast::error_code& ec) {
    ec = {};
    if (pos_ == bytes_.size()) {
      ec = boost::asio::error::eof;
      return 0;
    }
    std::size_t n = std::min(chunk_, bytes_.size() - pos_);
    n = boost::asio::buffer_copy(buffers, boost::asio::buffer(bytes_.data() + pos_, n));
    pos_ += n;
    return n;
  }
  template <typename Buffers>
  std::size_t read_some(const Buffers& buffers) {
    boost::beast::error_code ec;
    auto n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  std::size_t delivered() const { return pos_; }

 private:
  std::string_view bytes_;
  std::size_t chunk_;
  std::size_t pos_ = 0;
};

}  // namespace

int parse_error_status(ParseError error) {
  switch (error) {
    case ParseError::bad_request: return 400;
    case ParseError::header_too_large: return 431;
    case ParseError::body_too_large: return 413;
    case ParseError::none:
    case ParseError::incomplete: return 0;
  }
  return 0;
}

ParsedRequest parse_request(std::string_view bytes, const RequestLimits& limits,
                            std::size_t read_size) {
  namespace bhttp = boost::beast::http;
  ParsedRequest out;
  MemoryStream stream(bytes, read_size);
  boost::beast::flat_buffer buffer;
  detail::RequestParser parser;
  detail::apply_limits(parser, limits);

  boost::beast::error_code ec;
  bhttp::read_header(stream, buffer, parser, ec);
  if (!ec) {
    out.version = parser.get().version();
    out.keep_alive = parser.get().keep_alive();
    if (!parser.is_done()) {
      out.expect_continue = detail::expects_continue(parser);
      bhttp::read(stream, buffer, parser, ec);
    }
  }
  out.consumed = stream.delivered() - buffer.size();
  if (ec) {
    out.error = detail::classify_read_error(ec);
    return out;
  }
  out.error = ParseError::none;
  out.request = detail::to_request(parser, "memory");
  return out;
}

}  // namespace runq::http
