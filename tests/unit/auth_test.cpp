// api::ApiKeys: key hashing, the two headers, malformed headers, reload, the keys file,
// and that the comparison takes as long whatever part of a key is right.
#include "runq/api/auth.hpp"
#include "runq/api/cors.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <unistd.h>

using namespace runq;

namespace {

http::Request with_headers(std::vector<http::Header> headers) {
  http::Request r;
  r.method = "GET";
  r.path = r.target = "/api/v1/runs";
  r.headers = std::move(headers);
  return r;
}

http::Request bearer(const std::string& value) {
  return with_headers({{"authorization", value}});
}

const std::string kKeyA = "key-a-0123456789abcdef";
const std::string kKeyB = "key-b-fedcba9876543210";
const std::string kOwnerA = api::owner_of(kKeyA);

std::string temp_file(const std::string& text) {
  char path[] = "/tmp/runq-keys-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(OwnerOf, IsHexSha256OfTheKey) {
  // echo -n abc | sha256sum
  EXPECT_EQ(api::owner_of("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(kOwnerA.size(), 64u);
  EXPECT_EQ(kOwnerA.find(kKeyA), std::string::npos);
  EXPECT_NE(api::owner_of(kKeyA), api::owner_of(kKeyB));
}

TEST(PresentedKey, BearerAndXApiKey) {
  EXPECT_EQ(api::presented_key(bearer("Bearer " + kKeyA)), kKeyA);
  EXPECT_EQ(api::presented_key(bearer("bearer " + kKeyA)), kKeyA);  // scheme any case
  EXPECT_EQ(api::presented_key(bearer("BEARER   " + kKeyA + "  ")), kKeyA);
  EXPECT_EQ(api::presented_key(with_headers({{"x-api-key", kKeyA}})), kKeyA);
  EXPECT_EQ(api::presented_key(with_headers({{"x-api-key", " " + kKeyA + " "}})), kKeyA);
  // A well-formed Authorization wins; a malformed one falls back to X-API-Key.
  EXPECT_EQ(api::presented_key(
                with_headers({{"authorization", "Bearer " + kKeyA}, {"x-api-key", kKeyB}})),
            kKeyA);
  EXPECT_EQ(api::presented_key(
                with_headers({{"authorization", "Basic eDp5"}, {"x-api-key", kKeyB}})),
            kKeyB);
}

TEST(PresentedKey, MalformedIsNone) {
  EXPECT_FALSE(api::presented_key(with_headers({})));
  EXPECT_FALSE(api::presented_key(bearer("")));
  EXPECT_FALSE(api::presented_key(bearer("Bearer")));
  EXPECT_FALSE(api::presented_key(bearer("Bearer ")));
  EXPECT_FALSE(api::presented_key(bearer("Bearer    ")));
  EXPECT_FALSE(api::presented_key(bearer("Basic " + kKeyA)));
  EXPECT_FALSE(api::presented_key(bearer("Basic x")));
  EXPECT_FALSE(api::presented_key(bearer("Bearer" + kKeyA)));  // no space after the scheme
  EXPECT_FALSE(api::presented_key(bearer(kKeyA)));             // no scheme
  EXPECT_FALSE(api::presented_key(bearer("Bearer a b")));      // a key has no spaces
  EXPECT_FALSE(api::presented_key(bearer("Bearer k\x01y")));   // nor control characters
  EXPECT_FALSE(api::presented_key(with_headers({{"x-api-key", ""}})));
  EXPECT_FALSE(api::presented_key(with_headers({{"x-api-key", "  "}})));
}

TEST(ApiKeys, DisabledLetsEveryoneInAsOwnerEmpty) {
  api::ApiKeys keys;
  EXPECT_FALSE(keys.enabled());
  EXPECT_EQ(keys.authenticate(with_headers({})), "");
  EXPECT_EQ(keys.authenticate(bearer("Bearer whatever")), "");
}

TEST(ApiKeys, EitherHeaderGivesTheKeysOwner) {
  api::ApiKeys keys(true, {kKeyA, kKeyB});
  EXPECT_TRUE(keys.enabled());
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys.authenticate(bearer("Bearer " + kKeyA)), kOwnerA);
  EXPECT_EQ(keys.authenticate(with_headers({{"x-api-key", kKeyA}})), kOwnerA);
  EXPECT_EQ(keys.authenticate(bearer("Bearer " + kKeyB)), api::owner_of(kKeyB));
  EXPECT_EQ(keys.authenticate_key(kKeyA), kOwnerA);
}

TEST(ApiKeys, WrongMissingMalformedOrEmptyIsRefused) {
  api::ApiKeys keys(true, {kKeyA});
  EXPECT_FALSE(keys.authenticate(with_headers({})));
  EXPECT_FALSE(keys.authenticate(bearer("Bearer " + kKeyB)));
  EXPECT_FALSE(keys.authenticate(bearer("Bearer " + kKeyA + "x")));
  EXPECT_FALSE(keys.authenticate(bearer("Bearer " + kKeyA.substr(0, kKeyA.size() - 1))));
  EXPECT_FALSE(keys.authenticate(bearer("Bearer")));
  EXPECT_FALSE(keys.authenticate(bearer("Basic x")));
  EXPECT_FALSE(keys.authenticate(bearer("Basic " + kKeyA)));
  EXPECT_FALSE(keys.authenticate(with_headers({{"x-api-key", ""}})));
  EXPECT_FALSE(keys.authenticate_key(""));
  // The owner id is not a key.
  EXPECT_FALSE(keys.authenticate(bearer("Bearer " + kOwnerA)));
}

TEST(ApiKeys, EnabledWithNoKeysRefusesEveryone) {
  api::ApiKeys keys(true, {});
  EXPECT_EQ(keys.size(), 0u);
  EXPECT_FALSE(keys.authenticate(bearer("Bearer " + kKeyA)));
  EXPECT_FALSE(keys.authenticate_key(""));
}

TEST(ApiKeys, DuplicatesCountOnce) {
  api::ApiKeys keys(true, {kKeyA, kKeyA, kKeyB});
  EXPECT_EQ(keys.size(), 2u);
}

TEST(ApiKeys, ReplaceSwapsTheSet) {
  api::ApiKeys keys(true, {kKeyA});
  keys.replace({kKeyB});
  EXPECT_FALSE(keys.authenticate_key(kKeyA));
  EXPECT_EQ(keys.authenticate_key(kKeyB), api::owner_of(kKeyB));
  keys.replace({});
  EXPECT_FALSE(keys.authenticate_key(kKeyB));
}

TEST(ApiKeys, ReplaceWhileAuthenticatingFromOtherThreads) {
  api::ApiKeys keys(true, {kKeyA});
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        // kKeyA is in every set; kKeyB comes and goes.
        if (keys.authenticate_key(kKeyA) != kOwnerA) ++bad;
        auto b = keys.authenticate_key(kKeyB);
        if (b && *b != api::owner_of(kKeyB)) ++bad;
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    if (i % 2) keys.replace({kKeyA, kKeyB});
    else keys.replace({kKeyA});
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad, 0);
}

// The comparison hashes the presented key and compares it with every configured hash
// (CRYPTO_memcmp, no early exit): a presented key that is right up to its last
// character takes as long to refuse as one that is wrong from the first. Medians of many
// batches, compared with a generous bound (a naive compare of these 4 KiB keys differs
// by far more).
TEST(ApiKeys, ComparisonTimeDoesNotDependOnTheMatchingPrefix) {
  const std::string key(4096, 'k');
  std::vector<std::string> configured{key};
  for (int i = 0; i < 7; ++i) configured.push_back(std::string(4096, static_cast<char>('a' + i)));
  api::ApiKeys keys(true, configured);

  std::string wrong_first = key;
  wrong_first.front() = 'x';
  std::string wrong_last = key;
  wrong_last.back() = 'x';
  ASSERT_FALSE(keys.authenticate_key(wrong_first));
  ASSERT_FALSE(keys.authenticate_key(wrong_last));

  constexpr int kBatches = 301, kPerBatch = 20;
  auto batch = [&](const std::string& k) {
    auto t0 = std::chrono::steady_clock::now();
    int n = 0;
    for (int i = 0; i < kPerBatch; ++i) n += keys.authenticate_key(k).has_value();
    auto dt = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(n, 0);
    return std::chrono::duration<double, std::nano>(dt).count();
  };
  std::vector<double> first, last;
  for (int b = 0; b < kBatches; ++b) {  // interleaved, so drift hits both alike
    if (b % 2) {
      first.push_back(batch(wrong_first));
      last.push_back(batch(wrong_last));
    } else {
      last.push_back(batch(wrong_last));
      first.push_back(batch(wrong_first));
    }
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  const double m_first = median(first), m_last = median(last);
  const double ratio = m_last / m_first;
  EXPECT_GT(ratio, 0.75) << "wrong first: " << m_first << " ns, wrong last: " << m_last << " ns";
  EXPECT_LT(ratio, 1.33) << "wrong first: " << m_first << " ns, wrong last: " << m_last << " ns";
}

TEST(KeysFile, OneKeyPerLineCommentsAndBlanksSkipped) {
  const std::string path =
      temp_file("# runq keys\n\n" + kKeyA + "\n  " + kKeyB + "  \r\n   # indented comment\n");
  auto keys = api::read_keys_file(path);
  std::remove(path.c_str());
  EXPECT_EQ(keys, (std::vector<std::string>{kKeyA, kKeyB}));
}

TEST(KeysFile, EmptyFileHasNoKeys) {
  const std::string path = temp_file("");
  EXPECT_TRUE(api::read_keys_file(path).empty());
  std::remove(path.c_str());
}

TEST(KeysFile, BadLineOrMissingFileThrowsWithoutTheKey) {
  const std::string path = temp_file(kKeyA + "\nsecret with spaces\n");
  try {
    api::read_keys_file(path);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("line 2"), std::string::npos) << what;
    EXPECT_EQ(what.find("secret"), std::string::npos) << what;
  }
  std::remove(path.c_str());
  EXPECT_THROW(api::read_keys_file("/nonexistent/runq-keys"), std::runtime_error);
}

TEST(Cors, OffWithoutOrigins) {
  api::Cors cors;
  EXPECT_FALSE(cors.enabled());
  auto r = with_headers({{"origin", "https://app.example.com"}});
  EXPECT_EQ(cors.allowed_origin(r), nullptr);
}

TEST(Cors, MatchesConfiguredOriginsOnly) {
  api::Cors cors({"https://app.example.com", "http://localhost:3000"});
  auto r = with_headers({{"origin", "https://app.example.com"}});
  ASSERT_NE(cors.allowed_origin(r), nullptr);
  EXPECT_EQ(*cors.allowed_origin(r), "https://app.example.com");
  EXPECT_NE(cors.allowed_origin(with_headers({{"origin", "HTTPS://App.Example.com"}})), nullptr);
  EXPECT_EQ(cors.allowed_origin(with_headers({{"origin", "https://evil.example.com"}})), nullptr);
  EXPECT_EQ(cors.allowed_origin(with_headers({{"origin", "http://app.example.com"}})), nullptr);
  EXPECT_EQ(cors.allowed_origin(with_headers({{"origin", "http://localhost:3001"}})), nullptr);
  EXPECT_EQ(cors.allowed_origin(with_headers({})), nullptr);
  api::Cors any({"*"});
  EXPECT_NE(any.allowed_origin(with_headers({{"origin", "https://x.test"}})), nullptr);
}

TEST(Cors, PreflightNeedsOptionsAndRequestMethod) {
  api::Cors cors({"https://app.example.com"});
  auto pre = with_headers({{"origin", "https://app.example.com"},
                           {"access-control-request-method", "POST"}});
  pre.method = "OPTIONS";
  EXPECT_TRUE(cors.is_preflight(pre));
  auto no_method = with_headers({{"origin", "https://app.example.com"}});
  no_method.method = "OPTIONS";
  EXPECT_FALSE(cors.is_preflight(no_method));
  auto other = pre;
  other.headers[0].value = "https://evil.example.com";
  EXPECT_FALSE(cors.is_preflight(other));
  http::Response r = cors.preflight("GET, POST");
  EXPECT_EQ(r.status, 204);
  bool max_age = false;
  for (const auto& h : r.headers) {
    if (h.name == "Access-Control-Allow-Methods") {
      EXPECT_EQ(h.value, "GET, POST, OPTIONS");
    }
    if (h.name == "Access-Control-Allow-Headers") {
      EXPECT_EQ(h.value, "Authorization, X-API-Key, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-ID");
    }
    if (h.name == "Access-Control-Max-Age") max_age = true;
  }
  EXPECT_TRUE(max_age);
}
