#pragma once
// API keys: who may use the API, and which owner a request acts as.
#include "runq/http/message.hpp"

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runq::api {

using KeyHash = std::array<unsigned char, 32>;  // SHA-256

// SHA-256 of a key.
KeyHash hash_key(std::string_view key);

// The owner id of a key: the lower-case hex of its SHA-256 (never the key itself). It is
// what the store keeps in jobs.owner and idempotency_keys.owner.
std::string owner_of(std::string_view key);

// The key a request presents: `Authorization: Bearer <key>` (scheme case-insensitive),
// else `X-API-Key: <key>`. nullopt when neither gives a well-formed, non-empty key
// ("Bearer" alone, "Basic ...", an empty X-API-Key, a key with spaces inside).
std::optional<std::string_view> presented_key(const http::Request& request);

// True for a key that can be configured: non-empty, printable ASCII without spaces
// (what can travel in a Bearer token or a header value unchanged).
bool valid_key(std::string_view key);

// Keys of an --api-keys-file: one per line; blank lines and lines starting with `#` are
// skipped, and whitespace around a key is trimmed. Throws std::runtime_error naming the
// file and line (never the key) if it can't be read or a line is not a valid key.
std::vector<std::string> read_keys_file(const std::string& path);

// The configured API keys, as SHA-256 hashes only (the key text is not kept).
// Thread-safe: authenticate() runs on any io thread while replace() swaps in a new,
// immutable set (SIGHUP reload).
class ApiKeys {
 public:
  // `enabled`: whether keys are required at all. Disabled (no key configured, e.g. a
  // loopback-only dev server), every request is let in as owner "". Enabled with an
  // empty set (an empty keys file), every request is refused until a reload adds keys.
  explicit ApiKeys(bool enabled = false, const std::vector<std::string>& keys = {});

  bool enabled() const { return enabled_; }
  // How many distinct keys are configured now.
  std::size_t size() const;

  // Replaces the set of keys (hashes them; the old set stays valid for requests using it).
  void replace(const std::vector<std::string>& keys);

  // The owner a request acts as: "" when disabled; owner_of(key) for a configured key;
  // nullopt (→ 401) for a missing, malformed or unknown key.
  std::optional<std::string> authenticate(const http::Request& request) const;

  // The same for a bare key. The presented key is hashed and its hash compared with
  // every configured hash in constant time (CRYPTO_memcmp, no early exit), so the time
  // taken says nothing about how much of a key was right.
  std::optional<std::string> authenticate_key(std::string_view key) const;

 private:
  using Set = std::vector<KeyHash>;
  std::shared_ptr<const Set> current() const;

  bool enabled_;
  mutable std::mutex mu_;  // guards the pointer only; the set itself is immutable
  std::shared_ptr<const Set> keys_;
};

}  // namespace runq::api
