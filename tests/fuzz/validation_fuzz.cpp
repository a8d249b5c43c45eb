// api/validation: the submit body (api::parse_submit), the query helpers the routes use
// (parse_query, query_value, query_int, percent_decode) and the small checks
// (is_valid_utf8, is_json_content_type), each against what it promises.
//
// Input: byte 0 picks what the rest is —
//   'B' a submit body; 'H' an Idempotency-Key header line, then the body;
//   'Q' a query string; anything else: all of them in turn.
#include "runq/api/query.hpp"
#include "runq/api/validation.hpp"

#include "fuzz_check.hpp"

#include <charconv>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

using namespace runq;

namespace {

// A second, independent UTF-8 check (RFC 3629), to compare with api::is_valid_utf8.
bool reference_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;                           // surrogate
    if (cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

void check_errors_body(const api::ValidationErrors& errors) {
  const std::string body = api::validation_error_body(errors);
  FUZZ_CHECK(nlohmann::json::accept(body), "422 body is not JSON: %s", body.c_str());
  for (const auto& e : errors.detail) {
    FUZZ_CHECK(e.is_object() && e.contains("type") && e.contains("loc") && e.contains("msg"),
               "422 entry without type/loc/msg: %s", body.c_str());
    FUZZ_CHECK(e["loc"].is_array() && !e["loc"].empty(), "bad loc: %s", body.c_str());
  }
}

void fuzz_submit(std::string_view body, const std::string* header) {
  api::SubmitLimits limits{3600, 86400, /*allow_private_webhooks=*/true};  // no DNS here
  auto r = api::parse_submit(body, header, limits);
  if (auto* errors = std::get_if<api::ValidationErrors>(&r)) {
    FUZZ_CHECK(!errors->empty(), "refused without a reason");
    check_errors_body(*errors);
    return;
  }
  const jobs::Job& job = std::get<jobs::Job>(r);
  FUZZ_CHECK(api::is_valid_utf8(job.prompt), "accepted a prompt that is not UTF-8");
  FUZZ_CHECK(job.timeout_s >= 1 && job.timeout_s <= limits.max_timeout_s, "timeout %d",
             job.timeout_s);
  FUZZ_CHECK(job.priority >= api::kMinPriority && job.priority <= api::kMaxPriority,
             "priority %d", job.priority);
  FUZZ_CHECK(job.max_retries >= 0 && job.max_retries <= api::kMaxRetries, "max_retries %d",
             job.max_retries);
  FUZZ_CHECK(job.config.is_object() && job.recipe_config.is_object(), "config not an object");
  FUZZ_CHECK(job.metadata.is_object() && job.metadata.size() <= api::kMaxMetadataKeys,
             "metadata");
  for (const auto& [k, v] : job.metadata.items())
    FUZZ_CHECK(v.is_string() && api::is_valid_utf8(k), "metadata entry");
  if (job.webhook_url) {
    std::string scheme = job.webhook_url->substr(0, 8);
    for (char& ch : scheme)
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    FUZZ_CHECK(scheme.rfind("http://", 0) == 0 || scheme == "https://", "webhook_url %s",
               job.webhook_url->c_str());
  }
  FUZZ_CHECK(job.request_hash.size() == 64, "request hash");
  // An integer given as a string (pydantic's lax mode) is the same request as that integer:
  // the hash takes parsed values. (A string timeout that gave the default is left out: the
  // hash tells an explicit timeout from none.)
  {
    nlohmann::json as_ints = nlohmann::json::parse(body);
    bool changed = false;
    auto swap_in = [&](const char* field, long long value) {
      auto it = as_ints.find(field);
      if (it != as_ints.end() && it->is_string()) {
        *it = value;
        changed = true;
      }
    };
    swap_in("priority", job.priority);
    swap_in("max_retries", job.max_retries);
    if (job.timeout_s != limits.default_timeout_s) swap_in("timeout", job.timeout_s);
    if (changed) {
      auto again = api::parse_submit(as_ints.dump(), header, limits);
      const auto* j2 = std::get_if<jobs::Job>(&again);
      FUZZ_CHECK(j2 && j2->request_hash == job.request_hash,
                 "an integer string hashes unlike its integer");
    }
  }
  // What gets stored and rendered must dump as strict JSON (invalid UTF-8 would throw).
  (void)job.config.dump();
  (void)job.recipe_config.dump();
  (void)job.metadata.dump();
}

void fuzz_query(std::string_view query) {
  api::QueryParams params = api::parse_query(query);
  for (const auto& [k, v] : params) {
    FUZZ_CHECK(k.size() <= query.size() && v.size() <= query.size(), "decoded longer");
    // The bounds the routes use (page, page_size, ?wait=) and a wide one.
    static constexpr long long kBounds[][2] = {
        {1, 10'000'000}, {1, 100}, {0, 60}, {-1'000'000'000'000'000'000, 1'000'000'000'000'000'000}};
    for (const auto& b : kBounds) {
      api::ValidationErrors errors;
      auto n = api::query_int(v, "q", b[0], b[1], errors);
      if (n) {
        FUZZ_CHECK(errors.empty() && *n >= b[0] && *n <= b[1], "query_int out of bounds");
      } else {
        FUZZ_CHECK(errors.detail.size() == 1, "query_int refused without one error");
        check_errors_body(errors);
      }
      // Compare with std::from_chars on the same text (blanks trimmed, one sign).
      std::string_view t = v;
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
      if (!t.empty() && t.front() == '+' && !(t.size() > 1 && (t[1] == '-' || t[1] == '+')))
        t.remove_prefix(1);
      long long ref = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), ref);
      const bool ref_ok = ec == std::errc() && end == t.data() + t.size() && ref >= b[0] &&
                          ref <= b[1] && !t.empty() && t.front() != '+';
      FUZZ_CHECK(ref_ok == n.has_value(), "query_int('%s') disagrees with from_chars", v.c_str());
      if (ref_ok) FUZZ_CHECK(*n == ref, "query_int('%s') = %lld, not %lld", v.c_str(), *n, ref);
    }
  }
  // query_value: the last value given for a name.
  for (std::string_view name : {"page", "page_size", "wait", "status", "session_id"}) {
    const std::string* last = nullptr;
    for (const auto& [k, v] : params)
      if (k == name) last = &v;
    FUZZ_CHECK(api::query_value(params, name) == last, "query_value is not the last value");
  }
}

void fuzz_text(std::string_view s) {
  const bool utf8 = api::is_valid_utf8(s);
  FUZZ_CHECK(utf8 == reference_utf8(s), "is_valid_utf8 says %d", utf8);
  const std::string text(s);
  (void)api::is_json_content_type(&text);
  const std::string decoded = api::percent_decode(s, false);
  FUZZ_CHECK(decoded.size() <= s.size(), "percent_decode grew");
  if (s.find('%') == std::string_view::npos) FUZZ_CHECK(decoded == s, "decoded without a %%");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const char mode = static_cast<char>(data[0]);
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode) {
    case 'B': fuzz_submit(rest, nullptr); break;
    case 'H': {
      auto eol = rest.find('\n');
      const std::string header(rest.substr(0, eol));
      fuzz_submit(eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1),
                  &header);
      break;
    }
    case 'Q': fuzz_query(rest); break;
    default:
      fuzz_submit(rest, nullptr);
      fuzz_query(rest);
      break;
  }
  fuzz_text(rest);
  return 0;
}
