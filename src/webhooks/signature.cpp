// Standard Webhooks signatures: HMAC-SHA256 over "<id>.<timestamp>.<body>", base64.
#include "runq/webhooks/signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <string>

namespace runq::webhooks {

namespace {

constexpr std::string_view kSecretPrefix = "whsec_";

// Standard base64 (padding optional) -> bytes. Throws std::invalid_argument.
std::string base64_decode(std::string_view in) {
  std::string text(in);
  if (text.empty()) throw std::invalid_argument("empty base64");
  // Accept unpadded input: pad to a multiple of 4 (a remainder of 1 is never valid).
  if (text.size() % 4 == 1) throw std::invalid_argument("bad base64 length");
  while (text.size() % 4 != 0) text.push_back('=');
  std::size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  // EVP_DecodeBlock skips surrounding whitespace and would mis-count padding then;
  // only the base64 alphabet (and '=' at the end) is accepted.
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum || c == '+' || c == '/') continue;
    if (c == '=' && i >= text.size() - pad) continue;
    throw std::invalid_argument("bad base64 character");
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad) throw std::invalid_argument("bad base64");
  out.resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts padding as zeros
  return out;
}

std::string base64_encode(const unsigned char* data, std::size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                static_cast<int>(len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

std::string signing_key(std::string_view secret) {
  if (secret.substr(0, kSecretPrefix.size()) != kSecretPrefix) return std::string(secret);
  try {
    return base64_decode(secret.substr(kSecretPrefix.size()));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("webhook secret: whsec_ must be followed by "
                                            "base64 key bytes (") + e.what() + ")");
  }
}

std::string sign(std::string_view key, std::string_view id, long long timestamp,
                 std::string_view body) {
  std::string message;
  const std::string ts = std::to_string(timestamp);
  message.reserve(id.size() + ts.size() + body.size() + 2);
  message.append(id).append(".").append(ts).append(".").append(body);

  static const unsigned char kEmpty = 0;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (!HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
            &mac_len))
    throw std::runtime_error("HMAC-SHA256 failed");
  return "v1," + base64_encode(mac, mac_len);
}

}  // namespace runq::webhooks
