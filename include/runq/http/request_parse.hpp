#pragma once
// How the server turns bytes into a Request: Beast's parser under the server's limits,
// and what each way of failing is answered with. The server reads from its sockets with
// these very pieces; parse_request() runs them over bytes in memory (unit tests, fuzzers).
#include "runq/http/message.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace runq::http {

struct RequestLimits {
  std::size_t max_header_bytes = 16 << 10;  // a larger header block: 431
  std::size_t max_body_bytes = 1 << 20;     // a larger body (or Content-Length): 413
};

enum class ParseError {
  none,              // a whole request
  incomplete,        // the bytes ended mid-request (the server drops such a connection)
  bad_request,       // 400
  header_too_large,  // 431
  body_too_large,    // 413
};

// The status the server answers a parse error with; 0 for none/incomplete (no answer).
int parse_error_status(ParseError error);

struct ParsedRequest {
  ParseError error = ParseError::incomplete;
  Request request;          // when error == none
  unsigned version = 11;    // 10 for HTTP/1.0, 11 for HTTP/1.1
  bool keep_alive = false;  // the connection may carry another request after this one
  bool expect_continue = false;  // the server sent "100 Continue" before reading the body
  std::size_t consumed = 0;      // bytes of `bytes` read; the rest is the next request
};

// Parses the first request in `bytes` as the server does: the header block, then the
// body, under `limits`, the bytes arriving `read_size` at a time (as a socket may hand
// them over; 0 means all at once).
ParsedRequest parse_request(std::string_view bytes, const RequestLimits& limits,
                            std::size_t read_size = 0);

}  // namespace runq::http
