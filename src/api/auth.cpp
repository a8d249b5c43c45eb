#include "runq/api/auth.hpp"
#include "runq/util/ascii.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace runq::api {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A key from a header value: trimmed; nullopt if empty or not a valid key.
std::optional<std::string_view> key_from(std::string_view value) {
  value = trim(value);
  if (!valid_key(value)) return std::nullopt;
  return value;
}

}  // namespace

KeyHash hash_key(std::string_view key) {
  KeyHash h{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), h.data());
  return h;
}

namespace {
std::string hex(const KeyHash& h) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(h.size() * 2);
  for (unsigned char b : h) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}
}  // namespace

std::string owner_of(std::string_view key) { return hex(hash_key(key)); }

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

std::optional<std::string_view> presented_key(const http::Request& request) {
  if (const std::string* auth = request.header("authorization")) {
    std::string_view v = trim(*auth);
    constexpr std::string_view kScheme = "bearer";
    if (v.size() > kScheme.size() && util::iequals(v.substr(0, kScheme.size()), kScheme) &&
        is_space(v[kScheme.size()])) {
      if (auto key = key_from(v.substr(kScheme.size()))) return key;
    }
  }
  if (const std::string* key = request.header("x-api-key")) return key_from(*key);
  return std::nullopt;
}

std::vector<std::string> read_keys_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the API keys file " + path);
  std::vector<std::string> keys;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string_view v = trim(line);
    if (v.empty() || v.front() == '#') continue;
    if (!valid_key(v))
      throw std::runtime_error("API keys file " + path + ", line " + std::to_string(n) +
                               ": a key must be printable ASCII without spaces");
    keys.emplace_back(v);
  }
  if (in.bad()) throw std::runtime_error("cannot read the API keys file " + path);
  return keys;
}

ApiKeys::ApiKeys(bool enabled, const std::vector<std::string>& keys) : enabled_(enabled) {
  replace(keys);
}

void ApiKeys::replace(const std::vector<std::string>& keys) {
  auto set = std::make_shared<Set>();
  set->reserve(keys.size());
  for (const auto& k : keys) {
    KeyHash h = hash_key(k);
    if (std::find(set->begin(), set->end(), h) == set->end()) set->push_back(h);
  }
  std::lock_guard lock(mu_);
  keys_ = std::move(set);
}

std::shared_ptr<const ApiKeys::Set> ApiKeys::current() const {
  std::lock_guard lock(mu_);
  return keys_;
}

std::size_t ApiKeys::size() const { return current()->size(); }

std::optional<std::string> ApiKeys::authenticate(const http::Request& request) const {
  if (!enabled_) return std::string();
  auto key = presented_key(request);
  if (!key) return std::nullopt;
  return authenticate_key(*key);
}

std::optional<std::string> ApiKeys::authenticate_key(std::string_view key) const {
  if (!enabled_) return std::string();
  if (!valid_key(key)) return std::nullopt;
  const KeyHash presented = hash_key(key);
  const auto set = current();
  // Every configured hash is compared, whatever matched before: no early exit.
  int matched = 0;
  for (const KeyHash& h : *set)
    matched |= CRYPTO_memcmp(presented.data(), h.data(), h.size()) == 0;
  if (!matched) return std::nullopt;
  return hex(presented);
}

}  // namespace runq::api
