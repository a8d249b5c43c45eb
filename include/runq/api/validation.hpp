#pragma once
// Request validation for the api layer: submit bodies, query strings, content types.
// Errors come out in FastAPI's 422 shape: [{"type","loc","msg","input"}...].
#include "runq/jobs/job.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace runq::api {

using Json = nlohmann::ordered_json;

// Bounds a submit is checked against (from jobs::ServiceOptions).
struct SubmitLimits {
  int default_timeout_s = 3600;  // used when `timeout` is null or 0
  int max_timeout_s = 86400;     // largest `timeout` accepted
  // --allow-private-webhooks: webhook_url may point at loopback/private/link-local
  // addresses. Otherwise its host is resolved and every address must be public.
  bool allow_private_webhooks = false;
};

// Bounds of the submit fields (API.md's table).
inline constexpr int kMinPriority = -100;
inline constexpr int kMaxPriority = 100;
inline constexpr int kMaxRetries = 10;
inline constexpr std::size_t kMaxIdempotencyKeyLen = 256;
inline constexpr std::size_t kMaxMetadataKeys = 16;
inline constexpr std::size_t kMaxMetadataKeyLen = 64;
inline constexpr std::size_t kMaxMetadataValueLen = 1024;
inline constexpr std::size_t kMaxWebhookUrlLen = 2083;

// A list of FastAPI-shaped validation errors (the array that goes under "detail").
struct ValidationErrors {
  Json detail = Json::array();
  bool empty() const { return detail.empty(); }
  void add(std::string_view type, Json loc, std::string msg, Json input);
};

// {"detail":[...]} as text.
std::string validation_error_body(const ValidationErrors& errors);

// Parses and checks a POST /api/v1/runs body. On success the Job carries the request
// fields, timeout_s (the default filled in), the scoped idempotency_key (or none) and
// request_hash; id/status/created_at are left for the service.
// `idempotency_header`: the Idempotency-Key header's value, if sent (it wins over the
// body's `idempotency_key`).
std::variant<jobs::Job, ValidationErrors> parse_submit(std::string_view body,
                                                       const std::string* idempotency_header,
                                                       const SubmitLimits& limits);

// The stored form of an idempotency key, prefixed so scopes never collide:
// "global" -> "g:<key>", "session" -> "s:<len(session)>:<session>:<key>" (null session
// counts as ""), "none" -> nullopt (not idempotent).
std::optional<std::string> scoped_idempotency_key(std::string_view scope,
                                                  const std::optional<std::string>& session_id,
                                                  std::string_view key);

// True for valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Content-Type acceptable for a JSON body: none, application/json, application/*+json
// (parameters such as "; charset=utf-8" allowed, case-insensitive).
bool is_json_content_type(const std::string* content_type);

// Percent-decodes a query component ('+' is a space). Bad escapes are kept as written.
std::string percent_decode(std::string_view s, bool plus_is_space = true);

// Query string -> decoded (name, value) pairs in order.
using QueryParams = std::vector<std::pair<std::string, std::string>>;
QueryParams parse_query(std::string_view query);
// The last value given for `name` (FastAPI's behaviour for a scalar), or nullptr.
const std::string* query_value(const QueryParams& params, std::string_view name);

// Parses an integer query parameter within [min, max]. On failure adds a 422 entry
// with loc ["query", name] and returns nullopt.
std::optional<long long> query_int(const std::string& value, std::string_view name,
                                   long long min, long long max, ValidationErrors& errors);

}  // namespace runq::api
