#pragma once
// The Beast side of request parsing, shared by the server's read loop (session.cpp) and
// parse_request() (request_parse.cpp), so both run one configuration and one mapping.
#include "runq/http/request_parse.hpp"

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

namespace runq::http::detail {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// A fresh parser per request, with the header and body limits applied.
void apply_limits(RequestParser& parser, const RequestLimits& limits);

// What a failed read of a request (header block or body) means: answered with
// parse_error_status(), or `incomplete` (end of stream, timeout, reset: nobody to answer).
ParseError classify_read_error(const boost::beast::error_code& ec);

// Once the header block is parsed and a body is still to come: does the client wait for
// "100 Continue" before sending it?
bool expects_continue(const RequestParser& parser);

// Takes the parsed message out of `parser` as a plain Request (header names lower-cased,
// target split into path and query).
Request to_request(RequestParser& parser, std::string remote);

}  // namespace runq::http::detail
