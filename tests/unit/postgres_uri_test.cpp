// Which --db values are PostgreSQL URIs, and how one is shown in the log (no password).
#include "runq/store/postgres_store.hpp"

#include <gtest/gtest.h>

using runq::store::is_postgres_uri;
using runq::store::redact_password;

TEST(PostgresUri, Recognized) {
  EXPECT_TRUE(is_postgres_uri("postgresql://u@h/db"));
  EXPECT_TRUE(is_postgres_uri("postgres://h/db"));
  EXPECT_FALSE(is_postgres_uri("runq.db"));
  EXPECT_FALSE(is_postgres_uri(":memory:"));
  EXPECT_FALSE(is_postgres_uri("./postgresql://x"));
}

TEST(PostgresUri, PasswordNeverShown) {
  EXPECT_EQ(redact_password("postgresql://u:secret@h:5432/db?sslmode=require"),
            "postgresql://u:***@h:5432/db?sslmode=require");
  EXPECT_EQ(redact_password("postgresql://h/db?user=u&password=secret&x=1"),
            "postgresql://h/db?user=u&password=***&x=1");
  EXPECT_EQ(redact_password("postgresql://u:a%40b@[::1]:5/db?password=c"),
            "postgresql://u:***@[::1]:5/db?password=***");
  // Nothing to hide: unchanged.
  EXPECT_EQ(redact_password("postgres://u@h/db"), "postgres://u@h/db");
  EXPECT_EQ(redact_password("postgresql:///db?host=/run/pg"), "postgresql:///db?host=/run/pg");
  // "password" inside another parameter's value is not a password parameter.
  EXPECT_EQ(redact_password("postgresql://h/db?application_name=mypassword=x"),
            "postgresql://h/db?application_name=mypassword=x");
}
