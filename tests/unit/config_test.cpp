// config: the auth and CORS flags of `runq serve`, and the refusal to serve a
// non-loopback address without keys.
#include "runq/config/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace runq::config;

namespace {

// parse_serve on `args` (no environment variables of runq's set).
std::optional<int> parse(std::vector<std::string> args, ServeConfig& out) {
  ::unsetenv("PRAISONAI_JOBS_API_KEY");
  ::unsetenv("RUNQ_API_KEYS_FILE");
  ::unsetenv("RUNQ_CORS_ORIGINS");
  ::unsetenv("RUNQ_HOST");
  return parse_serve(args, out);
}

}  // namespace

TEST(Loopback, Addresses) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("[::1]"));
  EXPECT_TRUE(is_loopback_host("::ffff:127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("LOCALHOST"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("10.0.0.5"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("example.com"));
  EXPECT_FALSE(is_loopback_host("localhost.example.com"));
  EXPECT_FALSE(is_loopback_host(""));
}

TEST(Refusal, NonLoopbackWithoutKeys) {
  ServeConfig cfg;
  ASSERT_FALSE(parse({"--host", "0.0.0.0"}, cfg));
  auto msg = refuse_unprotected(cfg);
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("--api-key"), std::string::npos) << *msg;
  EXPECT_NE(msg->find("--api-keys-file"), std::string::npos) << *msg;
  EXPECT_NE(msg->find("--insecure-no-auth"), std::string::npos) << *msg;
  EXPECT_NE(msg->find("0.0.0.0"), std::string::npos) << *msg;
}

TEST(Refusal, LoopbackKeysOrInsecureMayStart) {
  ServeConfig loopback;
  ASSERT_FALSE(parse({}, loopback));
  EXPECT_FALSE(refuse_unprotected(loopback));
  EXPECT_FALSE(loopback.auth_enabled());

  ServeConfig keyed;
  ASSERT_FALSE(parse({"--host", "0.0.0.0", "--api-key", "k1"}, keyed));
  EXPECT_FALSE(refuse_unprotected(keyed));
  EXPECT_TRUE(keyed.auth_enabled());

  ServeConfig insecure;
  ASSERT_FALSE(parse({"--host", "0.0.0.0", "--insecure-no-auth"}, insecure));
  EXPECT_FALSE(refuse_unprotected(insecure));
  EXPECT_FALSE(insecure.auth_enabled());
}

TEST(Keys, RepeatableAndFromTheEnvironment) {
  ServeConfig cfg;
  ASSERT_FALSE(parse({"--api-key", "k1", "--api-key", "k2"}, cfg));
  EXPECT_EQ(cfg.api_keys, (std::vector<std::string>{"k1", "k2"}));

  ::setenv("PRAISONAI_JOBS_API_KEY", "k3", 1);
  ServeConfig env;
  ASSERT_FALSE(parse_serve({"--api-key", "k1"}, env));
  ::unsetenv("PRAISONAI_JOBS_API_KEY");
  EXPECT_EQ(env.api_keys, (std::vector<std::string>{"k1", "k3"}));
}

TEST(Keys, EmptyOrSpacedKeyIsBadUsage) {
  ServeConfig a;
  EXPECT_EQ(parse({"--api-key", ""}, a), 2);
  ServeConfig b;
  EXPECT_EQ(parse({"--api-key", "a b"}, b), 2);
}

TEST(Cors, OriginsValidated) {
  ServeConfig cfg;
  ASSERT_FALSE(parse({"--cors-origin", "https://app.example.com", "--cors-origin",
                      "http://localhost:3000"},
                     cfg));
  EXPECT_EQ(cfg.cors_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:3000"}));
  ServeConfig any;
  ASSERT_FALSE(parse({"--cors-origin", "*"}, any));
  ServeConfig path;
  EXPECT_TRUE(parse({"--cors-origin", "https://app.example.com/"}, path));
  ServeConfig scheme;
  EXPECT_TRUE(parse({"--cors-origin", "app.example.com"}, scheme));
}

TEST(ClusterFlags, DefaultsAndLimits) {
  ServeConfig cfg;
  ::unsetenv("RUNQ_DB_POOL");
  ::unsetenv("RUNQ_NODE_NAME");
  ::unsetenv("RUNQ_LEASE_SECONDS");
  ASSERT_FALSE(parse({}, cfg));
  EXPECT_EQ(cfg.db_pool, 8);
  EXPECT_EQ(cfg.node_name, "");
  EXPECT_EQ(cfg.lease_seconds, 30);
  ServeConfig set;
  ASSERT_FALSE(parse({"--db", "postgresql://u@h/db", "--db-pool", "3", "--node-name", "n1",
                      "--lease-seconds", "5"},
                     set));
  EXPECT_EQ(set.db, "postgresql://u@h/db");
  EXPECT_EQ(set.db_pool, 3);
  EXPECT_EQ(set.node_name, "n1");
  EXPECT_EQ(set.lease_seconds, 5);
  for (auto bad : {std::vector<std::string>{"--db-pool", "0"},
                   std::vector<std::string>{"--lease-seconds", "0"}}) {
    ServeConfig c;
    EXPECT_TRUE(parse(bad, c)) << bad[0];
  }
}
