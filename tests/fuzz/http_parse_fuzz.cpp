// HTTP/1.x request parsing exactly as the server does it (runq::http::parse_request: Beast's
// parser with the server's limits, its error mapping and its conversion to Request),
// over a connection's worth of bytes: pipelined requests one after another, as the
// server's keep-alive loop reads them.
//
// Input: byte 0 picks the read size (how the bytes arrive: all at once or in small
// pieces) and the limits (the server's defaults or tiny ones, so 413/431 are reached);
// the rest is what the client sent.
#include "runq/http/request_parse.hpp"

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace runq::http;

namespace {

bool is_lower(std::string_view s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  const std::size_t read_size = control & 0x0F;  // 0: everything in one read
  RequestLimits limits;                          // the server's defaults
  if (control & 0x10) limits = RequestLimits{128, 64};
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  while (!rest.empty()) {
    ParsedRequest p = parse_request(rest, limits, read_size);
    FUZZ_CHECK(p.consumed <= rest.size(), "consumed %zu of %zu", p.consumed, rest.size());
    const int status = parse_error_status(p.error);
    if (p.error == ParseError::none || p.error == ParseError::incomplete)
      FUZZ_CHECK(status == 0, "status %d", status);
    else
      FUZZ_CHECK(status == 400 || status == 413 || status == 431, "status %d", status);
    if (p.error != ParseError::none) break;  // the server answers (or drops) and closes

    const Request& r = p.request;
    FUZZ_CHECK(p.consumed > 0, "a request from no bytes");
    FUZZ_CHECK(!r.method.empty(), "empty method");
    FUZZ_CHECK(!r.target.empty(), "empty target");
    FUZZ_CHECK(p.version == 10 || p.version == 11, "version %u", p.version);
    FUZZ_CHECK(r.body.size() <= limits.max_body_bytes, "body of %zu bytes", r.body.size());
    if (r.query.empty())
      FUZZ_CHECK(r.path == r.target || r.target == r.path + "?", "path/target mismatch");
    else
      FUZZ_CHECK(r.target == r.path + "?" + r.query, "path/query mismatch");
    for (const auto& h : r.headers) {
      FUZZ_CHECK(!h.name.empty(), "empty header name");
      FUZZ_CHECK(is_lower(h.name), "header name not lower-case");
      FUZZ_CHECK(h.value.find_first_of("\r\n") == std::string::npos, "CR/LF in a value");
    }
    if (!p.keep_alive) break;  // the server closes after this answer
    rest.remove_prefix(p.consumed);
  }
  return 0;
}
