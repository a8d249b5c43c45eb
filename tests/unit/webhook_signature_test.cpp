// webhooks::signing_key and webhooks::sign: the Standard Webhooks scheme, byte for byte.
#include "runq/webhooks/signature.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

using namespace runq;

// The example of the Standard Webhooks specification (and its reference libraries).
TEST(WebhookSignature, StandardWebhooksKnownAnswer) {
  const std::string key = webhooks::signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_EQ(key.size(), 24u);
  EXPECT_EQ(webhooks::sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                           R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, AnyChangeChangesTheSignature) {
  const std::string key = webhooks::signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const std::string good = webhooks::sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                          R"({"test": 2432232314})");
  EXPECT_NE(webhooks::sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJeK", 1614265330,
                           R"({"test": 2432232314})"), good);
  EXPECT_NE(webhooks::sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331,
                           R"({"test": 2432232314})"), good);
  EXPECT_NE(webhooks::sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                           R"({"test": 2432232315})"), good);
}

// Without the whsec_ prefix the secret's own bytes are the key (values from Python's
// hmac/hashlib/base64).
TEST(WebhookSignature, RawSecrets) {
  EXPECT_EQ(webhooks::signing_key("my-plain-secret"), "my-plain-secret");
  EXPECT_EQ(webhooks::sign(webhooks::signing_key("my-plain-secret"), "msg_run_0123456789abcdef",
                           1700000000, R"({"job_id":"run_0123456789abcdef"})"),
            "v1,z149vAr6w8g+ByhQYyLneR1ZknAfhjvsVDmCqvB89Sg=");
  EXPECT_EQ(webhooks::sign("", "m", 0, ""), "v1,TDMrqlhMHNpfFcI+fefY/xl0IfGlXGhntyvT01UD4iY=");
  // A prefix that is not exactly "whsec_" is part of a raw secret.
  EXPECT_EQ(webhooks::signing_key("WHSEC_abc"), "WHSEC_abc");
  EXPECT_EQ(webhooks::signing_key("whsec"), "whsec");
}

TEST(WebhookSignature, Base64KeysWithAndWithoutPadding) {
  EXPECT_EQ(webhooks::signing_key("whsec_AQIDBA=="), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(webhooks::signing_key("whsec_AQIDBA"), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(webhooks::signing_key("whsec_AQIDBAU="), std::string("\x01\x02\x03\x04\x05", 5));
  EXPECT_EQ(webhooks::signing_key("whsec_AQIDBAU"), std::string("\x01\x02\x03\x04\x05", 5));
  EXPECT_EQ(webhooks::signing_key("whsec_AQID"), std::string("\x01\x02\x03", 3));
  // Zero bytes inside the key are kept.
  EXPECT_EQ(webhooks::signing_key("whsec_AAAA"), std::string(3, '\0'));
}

TEST(WebhookSignature, BadBase64Throws) {
  for (const char* s : {"whsec_", "whsec_A", "whsec_AQ*D", "whsec_AQ=D", "whsec_ AQID",
                        "whsec_AQID\n", "whsec_AQIDB===", "whsec_-_-_"})
    EXPECT_THROW(webhooks::signing_key(s), std::invalid_argument) << s;
}
