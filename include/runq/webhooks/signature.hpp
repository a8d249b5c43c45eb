#pragma once
#include <string>
#include <string_view>

namespace runq::webhooks {

// The HMAC key of a --webhook-secret: "whsec_" + base64 → the decoded bytes; otherwise
// the secret's own bytes. Throws std::invalid_argument on bad base64 after "whsec_".
std::string signing_key(std::string_view secret);

// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
std::string sign(std::string_view key, std::string_view id, long long timestamp,
                 std::string_view body);

}  // namespace runq::webhooks
