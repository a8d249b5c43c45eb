#pragma once
// Request validation for the api layer: submit bodies and content types. Errors come
// out in FastAPI's 422 shape (validation_errors.hpp); query strings: query.hpp.
#include "runq/api/validation_errors.hpp"
#include "runq/jobs/defaults.hpp"
#include "runq/jobs/job.hpp"
#include "runq/util/utf8.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace runq::api {

// Bounds a submit is checked against (from jobs::ServiceOptions).
struct SubmitLimits {
  int default_timeout_s = jobs::defaults::kTimeoutS;  // used when `timeout` is null or 0
  int max_timeout_s = jobs::defaults::kMaxTimeoutS;   // largest `timeout` accepted
  // --allow-private-webhooks: webhook_url may point at loopback/private/link-local
  // addresses. Otherwise a literal address or a localhost name must be public here; a
  // host name is resolved and checked at delivery (no DNS on the I/O thread).
  bool allow_private_webhooks = false;
};

// Bounds of the submit fields (API.md's table).
inline constexpr int kMinPriority = -100;
inline constexpr int kMaxPriority = 100;
inline constexpr int kMaxRetries = jobs::defaults::kMaxRetries;
inline constexpr std::size_t kMaxIdempotencyKeyLen = 256;
inline constexpr std::size_t kMaxMetadataKeys = 16;
inline constexpr std::size_t kMaxMetadataKeyLen = 64;
inline constexpr std::size_t kMaxMetadataValueLen = 1024;
inline constexpr std::size_t kMaxWebhookUrlLen = 2083;

// Parses and checks a POST /api/v1/runs body. On success the Job carries the request
// fields, timeout_s (the default filled in), the scoped idempotency_key (or none) and
// request_hash; id/status/created_at are left for the service.
// `idempotency_header`: the Idempotency-Key header's value, if sent (it wins over the
// body's `idempotency_key`).
std::variant<jobs::Job, ValidationErrors> parse_submit(std::string_view body,
                                                       const std::string* idempotency_header,
                                                       const SubmitLimits& limits);

// True for valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
using util::is_valid_utf8;

// Content-Type acceptable for a JSON body: none, application/json, application/*+json
// (parameters such as "; charset=utf-8" allowed, case-insensitive).
bool is_json_content_type(const std::string* content_type);

}  // namespace runq::api
