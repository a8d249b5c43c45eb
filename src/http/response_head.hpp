#pragma once
// Private to http/: writing a response's head (status line, Date, the api's headers,
// Connection) and its body chunks, and the answers the server gives by itself.
#include "runq/http/message.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace runq::http {

// {"detail": ...} with `status`, for the answers the server gives without the handler.
Response error_response(int status, std::string_view detail);
Response internal_error();

bool has_header(const std::vector<Header>& headers, std::string_view name);
bool status_has_no_body(int status);

// Status line, Server, Date, Content-Type, the api's headers and Connection; the caller
// adds the framing header (Content-Length or Transfer-Encoding) and the blank line.
// Framing headers and unsafe headers from the api layer are dropped.
void append_head(std::string& out, const Response& r, bool keep_alive, unsigned version);

// Appends `data` as it is, or as one chunk of a chunked body. Nothing for empty data.
void append_chunk(std::string& out, std::string_view data, bool chunked);

}  // namespace runq::http
