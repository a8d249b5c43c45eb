// api::parse_submit and the query/content-type helpers: every rule, every 422 shape.
#include "runq/api/query.hpp"
#include "runq/api/validation.hpp"
#include "runq/jobs/fingerprint.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>

using namespace runq;
using api::Json;
using nlohmann::json;

namespace {

api::SubmitLimits limits() { return api::SubmitLimits{3600, 86400}; }

// The job a valid body gives (fails the test if it is refused).
jobs::Job ok(const std::string& body, const std::string* header = nullptr,
             api::SubmitLimits lim = limits()) {
  auto r = api::parse_submit(body, header, lim);
  if (auto* e = std::get_if<api::ValidationErrors>(&r)) {
    ADD_FAILURE() << "refused: " << body << " -> " << e->detail.dump();
    return {};
  }
  return std::get<jobs::Job>(r);
}
jobs::Job okj(const json& body) { return ok(body.dump()); }

// The 422 entries a bad body gives (fails the test if it is accepted).
Json errors(const std::string& body, const std::string* header = nullptr,
            api::SubmitLimits lim = limits()) {
  auto r = api::parse_submit(body, header, lim);
  if (auto* e = std::get_if<api::ValidationErrors>(&r)) return e->detail;
  ADD_FAILURE() << "accepted: " << body;
  return Json::array();
}
Json errorsj(const json& body) { return errors(body.dump()); }

// The one 422 entry a bad body gives.
Json one(const std::string& body) {
  Json e = errors(body);
  EXPECT_EQ(e.size(), 1u) << e.dump();
  return e.empty() ? Json::object() : e[0];
}
Json onej(const json& body) { return one(body.dump()); }

Json loc(std::initializer_list<Json> parts) { return Json(parts); }

}  // namespace

// ------------------------------------------------------------------ accepted bodies

TEST(Validation, MinimalBodyGetsDefaults) {
  jobs::Job j = okj(json{{"prompt", "What is 2+2?"}});
  EXPECT_EQ(j.prompt, "What is 2+2?");
  EXPECT_FALSE(j.agent_file);
  EXPECT_FALSE(j.agent_yaml);
  EXPECT_FALSE(j.recipe_name);
  EXPECT_EQ(j.recipe_config, json::object());
  EXPECT_EQ(j.config, json::object());
  ASSERT_TRUE(j.framework);
  EXPECT_EQ(*j.framework, "praisonai");
  EXPECT_FALSE(j.webhook_url);
  EXPECT_EQ(j.timeout_s, 3600);
  EXPECT_FALSE(j.session_id);
  EXPECT_EQ(j.priority, 0);
  EXPECT_EQ(j.metadata, json::object());
  EXPECT_EQ(j.max_retries, 0);
  EXPECT_FALSE(j.idempotency_key);
  EXPECT_EQ(j.request_hash.size(), 64u);
  EXPECT_TRUE(j.id.empty());
}

TEST(Validation, EveryFieldIsTaken) {
  jobs::Job j = okj(json{{"prompt", "p"},
                        {"agent_file", "agents.yaml"},
                        {"agent_yaml", "a: b"},
                        {"recipe_name", "r"},
                        {"recipe_config", {{"x", {1, 2}}}},
                        {"config", {{"k", "v"}}},
                        {"framework", "crewai"},
                        {"webhook_url", "https://93.184.215.14/hook?x=1"},
                        {"timeout", 77},
                        {"session_id", "sess-1"},
                        {"priority", -3},
                        {"metadata", {{"team", "a"}, {"ticket", "42"}}},
                        {"max_retries", 2}});
  EXPECT_EQ(*j.agent_file, "agents.yaml");
  EXPECT_EQ(*j.agent_yaml, "a: b");
  EXPECT_EQ(*j.recipe_name, "r");
  EXPECT_EQ(j.recipe_config, (json{{"x", {1, 2}}}));
  EXPECT_EQ(j.config, (json{{"k", "v"}}));
  EXPECT_EQ(*j.framework, "crewai");
  EXPECT_EQ(*j.webhook_url, "https://93.184.215.14/hook?x=1");
  EXPECT_EQ(j.timeout_s, 77);
  EXPECT_EQ(*j.session_id, "sess-1");
  EXPECT_EQ(j.priority, -3);
  EXPECT_EQ(j.metadata, (json{{"team", "a"}, {"ticket", "42"}}));
  EXPECT_EQ(j.max_retries, 2);
}

TEST(Validation, NullsForNullableFields) {
  jobs::Job j = okj(json{{"prompt", "p"},        {"agent_file", nullptr},
                        {"agent_yaml", nullptr}, {"recipe_name", nullptr},
                        {"recipe_config", nullptr}, {"config", nullptr},
                        {"framework", nullptr},  {"webhook_url", nullptr},
                        {"timeout", nullptr},    {"session_id", nullptr},
                        {"idempotency_key", nullptr}, {"idempotency_scope", nullptr}});
  EXPECT_EQ(j.recipe_config, json::object());
  EXPECT_EQ(j.config, json::object());
  EXPECT_FALSE(j.framework);  // an explicit null stays null
  EXPECT_EQ(j.timeout_s, 3600);
  EXPECT_FALSE(j.idempotency_key);
}

TEST(Validation, EmptyPromptIsAString) { EXPECT_EQ(okj(json{{"prompt", ""}}).prompt, ""); }

TEST(Validation, UnknownFieldsIgnored) {
  jobs::Job j = okj(json{{"prompt", "x"}, {"bogus", 1}, {"status", "succeeded"},
                        {"job_id", "run_000000000000"}, {"nested", {{"a", {1, {}}}}}});
  EXPECT_EQ(j.prompt, "x");
  EXPECT_TRUE(j.id.empty());
  EXPECT_EQ(j.status, jobs::JobStatus::queued);
}

TEST(Validation, TimeoutZeroOrNullMeansDefault) {
  api::SubmitLimits lim{7, 10};
  EXPECT_EQ(ok(R"({"prompt":"x","timeout":0})", nullptr, lim).timeout_s, 7);
  EXPECT_EQ(ok(R"({"prompt":"x","timeout":null})", nullptr, lim).timeout_s, 7);
  EXPECT_EQ(ok(R"({"prompt":"x"})", nullptr, lim).timeout_s, 7);
  EXPECT_EQ(ok(R"({"prompt":"x","timeout":10})", nullptr, lim).timeout_s, 10);
  EXPECT_EQ(ok(R"({"prompt":"x","timeout":1})", nullptr, lim).timeout_s, 1);
  Json e = errors(R"({"prompt":"x","timeout":11})", nullptr, lim);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["type"], "value_error");
  EXPECT_EQ(e[0]["loc"], loc({"body", "timeout"}));
  EXPECT_EQ(e[0]["input"], 11);
  EXPECT_TRUE(e[0]["msg"].get<std::string>().starts_with("Value error, ")) << e.dump();
}

TEST(Validation, IntegralFloatsAreInts) {
  EXPECT_EQ(ok(R"({"prompt":"x","timeout":5.0,"priority":-2.0,"max_retries":3e0})").timeout_s,
            5);
  EXPECT_EQ(ok(R"({"prompt":"x","priority":-2.0})").priority, -2);
  EXPECT_EQ(ok(R"({"prompt":"x","max_retries":3e0})").max_retries, 3);
}

TEST(Validation, BoundaryValuesAccepted) {
  for (const char* extra :
       {R"("timeout":86400)", R"("timeout":1)", R"("priority":100)", R"("priority":-100)",
        R"("max_retries":0)", R"("max_retries":10)", R"("idempotency_scope":"none")",
        R"("idempotency_scope":"global")", R"("idempotency_scope":"session")"}) {
    ok(std::string(R"({"prompt":"x",)") + extra + "}");
  }
  json md = json::object();
  for (int i = 0; i < 16; ++i) md["k" + std::to_string(i)] = std::string(1024, 'v');
  md[std::string(64, 'k')] = "v";
  md.erase("k0");
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"metadata", md}}).metadata, md);
}

// URL syntax (with private targets allowed, so that no name has to resolve).
TEST(Validation, WebhookUrls) {
  api::SubmitLimits lim = limits();
  lim.allow_private_webhooks = true;
  for (const char* url : {"http://example.com", "https://example.com/a/b?c=d#e",
                          "HTTPS://Example.COM:8443/x", "http://user:pw@host:1/",
                          "http://[::1]:8080/hook", "http://10.0.0.1/hook"}) {
    json body{{"prompt", "x"}, {"webhook_url", url}};
    EXPECT_EQ(*ok(body.dump(), nullptr, lim).webhook_url, url);
  }
  for (const char* url : {"", "example.com", "ftp://example.com", "http://", "https:///x",
                          "http://exa mple.com", "http://host:0/", "http://host:99999/",
                          "http://host:/", "http://host:abc/", "javascript:alert(1)",
                          "http://[::1/"}) {
    json body{{"prompt", "x"}, {"webhook_url", url}};
    Json e = errors(body.dump(), nullptr, lim);
    ASSERT_EQ(e.size(), 1u) << url;
    EXPECT_EQ(e[0]["type"], "value_error") << url;
    EXPECT_EQ(e[0]["loc"], loc({"body", "webhook_url"})) << url;
    EXPECT_EQ(e[0]["input"], url);
  }
}

// Without --allow-private-webhooks, loopback/private/link-local targets are a 422.
TEST(Validation, WebhookUrlPolicy) {
  const std::pair<const char*, const char*> refused[] = {
      {"http://127.0.0.1:9000/hook", "Value error, Webhook URL cannot be a localhost address"},
      {"http://localhost:8080/hook", "Value error, Webhook URL cannot be a localhost address"},
      {"http://[::1]/hook", "Value error, Webhook URL cannot be a localhost address"},
      {"http://10.0.0.1/hook",
       "Value error, Webhook URL resolves to a private or restricted network address"},
      {"https://192.168.1.20/", 
       "Value error, Webhook URL resolves to a private or restricted network address"},
      {"http://169.254.169.254/latest/meta-data/",
       "Value error, Webhook URL resolves to a private or restricted network address"},
      {"http://[::ffff:172.16.0.1]/",
       "Value error, Webhook URL resolves to a private or restricted network address"},
      {"http://0.0.0.0:8080/",
       "Value error, Webhook URL resolves to a private or restricted network address"},
  };
  for (const auto& [url, msg] : refused) {
    Json e = onej(json{{"prompt", "x"}, {"webhook_url", url}});
    EXPECT_EQ(e["type"], "value_error") << url;
    EXPECT_EQ(e["loc"], loc({"body", "webhook_url"})) << url;
    EXPECT_EQ(e["msg"], msg) << url;
    EXPECT_EQ(e["input"], url);
  }
  for (const char* url : {"http://8.8.8.8/hook", "https://[2606:4700:4700::1111]:8443/x"})
    EXPECT_EQ(*okj(json{{"prompt", "x"}, {"webhook_url", url}}).webhook_url, url);

  api::SubmitLimits lim = limits();
  lim.allow_private_webhooks = true;
  for (const auto& [url, msg] : refused) {
    json body{{"prompt", "x"}, {"webhook_url", url}};
    EXPECT_EQ(*ok(body.dump(), nullptr, lim).webhook_url, url);
  }
  // Other fields are still all reported next to a refused URL.
  Json e = errorsj(json{{"prompt", 1}, {"webhook_url", "http://10.1.1.1/"}, {"priority", 500}});
  EXPECT_EQ(e.size(), 3u) << e.dump();
}

// ------------------------------------------------------------------ 422 shapes

TEST(Validation, MissingPromptExact) {
  Json e = one(R"({})");
  EXPECT_EQ(e.dump(),
            R"({"type":"missing","loc":["body","prompt"],"msg":"Field required","input":{}})");
}

TEST(Validation, MissingPromptInputIsTheWholeBody) {
  Json e = onej(json{{"session_id", "s"}, {"config", {{"a", 1}}}});
  EXPECT_EQ(e["type"], "missing");
  EXPECT_EQ(e["input"], Json(json{{"session_id", "s"}, {"config", {{"a", 1}}}}));
}

TEST(Validation, WrongTypes) {
  struct Case {
    const char* field;
    json value;
    const char* type;
    const char* msg;
  };
  const char* s = "Input should be a valid string";
  const char* i = "Input should be a valid integer";
  const char* ip = "Input should be a valid integer, unable to parse string as an integer";
  const char* d = "Input should be a valid dictionary";
  std::vector<Case> cases = {
      {"prompt", 123, "string_type", s},       {"prompt", nullptr, "string_type", s},
      {"prompt", {"a"}, "string_type", s},     {"prompt", {{"a", "b"}}, "string_type", s},
      {"prompt", true, "string_type", s},      {"agent_file", 5, "string_type", s},
      {"agent_yaml", true, "string_type", s},  {"recipe_name", 1.5, "string_type", s},
      {"framework", json::array(), "string_type", s},
      {"webhook_url", 1, "string_type", s},    {"session_id", 42, "string_type", s},
      {"idempotency_key", json::object(), "string_type", s},
      {"idempotency_scope", 1, "string_type", s},
      {"timeout", {1}, "int_type", i},         {"timeout", {{"s", 1}}, "int_type", i},
      {"timeout", "12.5", "int_parsing", ip},  {"timeout", true, "int_type", i},
      {"timeout", "abc", "int_parsing", ip},
      {"timeout", false, "int_type", i},       {"priority", json::array(), "int_type", i},
      {"priority", nullptr, "int_type", i},    {"priority", true, "int_type", i},
      {"max_retries", json::object(), "int_type", i},
      {"max_retries", nullptr, "int_type", i}, {"config", "x", "dict_type", d},
      {"config", {1, 2}, "dict_type", d},      {"recipe_config", 5, "dict_type", d},
      {"metadata", "team=a", "dict_type", d},  {"metadata", {"a"}, "dict_type", d},
      {"metadata", nullptr, "dict_type", d},
  };
  for (const auto& c : cases) {
    json body = {{"prompt", "x"}};
    body[c.field] = c.value;
    Json e = onej(body);
    EXPECT_EQ(e["type"], c.type) << body.dump();
    EXPECT_EQ(e["loc"], loc({"body", c.field})) << body.dump();
    EXPECT_EQ(e["msg"], c.msg) << body.dump();
    EXPECT_EQ(e["input"], Json(c.value)) << body.dump();
    EXPECT_EQ(e.size(), 4u) << e.dump();
  }
}

// pydantic v2's lax mode: a JSON string holding an integer is that integer.
TEST(Validation, IntegerStringsAreInts) {
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"timeout", "60"}}).timeout_s, 60);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"priority", "-5"}}).priority, -5);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"priority", "+5"}}).priority, 5);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"max_retries", "3"}}).max_retries, 3);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"timeout", " \t120\n "}}).timeout_s, 120);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"timeout", "1_000"}}).timeout_s, 1000);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"timeout", "120.0"}}).timeout_s, 120);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"timeout", "120.000"}}).timeout_s, 120);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"timeout", "120."}}).timeout_s, 120);
  EXPECT_EQ(okj(json{{"prompt", "x"}, {"timeout", "0120"}}).timeout_s, 120);
  api::SubmitLimits lim{7, 10};
  EXPECT_EQ(ok(R"({"prompt":"x","timeout":"0"})", nullptr, lim).timeout_s, 7);  // default
}

TEST(Validation, UnparsableIntegerStringsAreIntParsing) {
  for (const char* f : {"timeout", "priority", "max_retries"}) {
    for (const char* v : {"12.5", "abc", "", " ", "1e3", "0x10", "1_000.0", "_1", "1_",
                          "1__0", "--1", "+", "1 2", "1.0.0", ".0", "\xc2\xa0" "12",
                          "\xef\xbc\x91"}) {
      json body = {{"prompt", "x"}, {f, v}};
      Json e = onej(body);
      EXPECT_EQ(e["type"], "int_parsing") << body.dump();
      EXPECT_EQ(e["loc"], loc({"body", f})) << body.dump();
      EXPECT_EQ(e["msg"], "Input should be a valid integer, unable to parse string as an integer");
      EXPECT_EQ(e["input"], v) << body.dump();
      EXPECT_EQ(e.size(), 4u) << e.dump();
    }
  }
}

// After parsing, the range checks of a JSON integer, with the string as the input.
TEST(Validation, IntegerStringsAreRangeChecked) {
  for (const auto& [f, v] :
       std::vector<std::pair<const char*, const char*>>{{"timeout", "86401"},
                                                        {"timeout", "-1"},
                                                        {"priority", "101"},
                                                        {"priority", "-1_01"},
                                                        {"max_retries", "11.0"},
                                                        {"max_retries", "99999999999999999999"},
                                                        {"timeout", "-99999999999999999999"}}) {
    json body = {{"prompt", "x"}, {f, v}};
    Json e = onej(body);
    EXPECT_EQ(e["type"], "value_error") << body.dump();
    EXPECT_EQ(e["loc"], loc({"body", f})) << body.dump();
    EXPECT_EQ(e["input"], v) << body.dump();
  }
}

// The hash takes the parsed integers: "120" and 120 are one request (an idempotent replay).
TEST(Validation, HashTakesParsedIntegers) {
  auto a = ok(R"({"prompt":"x","timeout":120,"priority":2,"max_retries":1})");
  EXPECT_EQ(a.request_hash,
            ok(R"({"prompt":"x","timeout":"120","priority":"2","max_retries":"1"})")
                .request_hash);
  EXPECT_EQ(a.request_hash,
            ok(R"({"prompt":"x","timeout":" 120.0 ","priority":2.0,"max_retries":"+1"})")
                .request_hash);
  EXPECT_NE(a.request_hash, ok(R"({"prompt":"x","timeout":"121","priority":2,"max_retries":1})")
                                .request_hash);
}

TEST(Validation, FractionalIntIsIntType) {
  for (const char* f : {"timeout", "priority", "max_retries"}) {
    Json e = onej(json{{"prompt", "x"}, {f, 5.5}});
    EXPECT_EQ(e["type"], "int_type");
    EXPECT_EQ(e["msg"], "Input should be a valid integer, got a number with a fractional part");
    EXPECT_EQ(e["input"], 5.5);
  }
}

TEST(Validation, ValueErrors) {
  json md17 = json::object();
  for (int i = 0; i < 17; ++i) md17["k" + std::to_string(i)] = "v";
  std::vector<std::pair<const char*, json>> cases = {
      {"timeout", -1},          {"timeout", 86401},       {"priority", 101},
      {"priority", -101},       {"max_retries", 11},      {"max_retries", -1},
      {"idempotency_scope", "bogus"}, {"idempotency_scope", "GLOBAL"},
      {"idempotency_key", ""},  {"idempotency_key", std::string(257, 'k')},
      {"metadata", md17},       {"metadata", {{"k", std::string(1025, 'v')}}},
      {"metadata", {{std::string(65, 'k'), "v"}}},
  };
  for (const auto& [field, value] : cases) {
    json body = {{"prompt", "x"}};
    body[field] = value;
    Json e = onej(body);
    EXPECT_EQ(e["type"], "value_error") << body.dump().substr(0, 200);
    EXPECT_EQ(e["loc"], loc({"body", field})) << body.dump().substr(0, 200);
    EXPECT_TRUE(e["msg"].get<std::string>().starts_with("Value error, ")) << e.dump();
    EXPECT_EQ(e["input"], Json(value));
  }
}

TEST(Validation, IdempotencyKeyLengthCountsCharacters) {
  std::string key;
  for (int i = 0; i < 256; ++i) key += "\xc3\xa9";  // 256 characters, 512 bytes
  EXPECT_TRUE(okj(json{{"prompt", "x"}, {"idempotency_key", key}}).idempotency_key);
}

TEST(Validation, HugeIntegers) {
  for (const char* f : {"timeout", "priority", "max_retries"}) {
    for (const char* v : {"99999999999999999999", "-99999999999999999999", "1e300",
                          "18446744073709551615", "9223372036854775808"}) {
      std::string body = std::string(R"({"prompt":"x",")") + f + "\":" + v + "}";
      Json e = one(body);
      EXPECT_EQ(e["type"], "value_error") << body;
      EXPECT_EQ(e["loc"], loc({"body", f})) << body;
    }
  }
}

TEST(Validation, MetadataValuesMustBeStrings) {
  for (json md : {json{{"a", 1}}, json{{"a", nullptr}}, json{{"a", {{"b", "c"}}}},
                  json{{"a", {"x"}}}, json{{"ok", "v"}, {"bad", true}}}) {
    Json e = onej(json{{"prompt", "x"}, {"metadata", md}});
    EXPECT_EQ(e["type"], "string_type") << md.dump();
    ASSERT_EQ(e["loc"].size(), 3u);
    EXPECT_EQ(e["loc"][0], "body");
    EXPECT_EQ(e["loc"][1], "metadata");
  }
  Json e = onej(json{{"prompt", "x"}, {"metadata", {{"ok", "v"}, {"bad", 1}}}});
  EXPECT_EQ(e["loc"], loc({"body", "metadata", "bad"}));
  EXPECT_EQ(e["input"], 1);
}

TEST(Validation, OneEntryPerBadFieldInTableOrder) {
  Json e = errorsj(json{{"prompt", 5}, {"timeout", json::array()}, {"config", "x"},
                       {"priority", 1000}, {"idempotency_scope", "weird"},
                       {"session_id", 3}});
  ASSERT_EQ(e.size(), 6u) << e.dump();
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& x : e) got.emplace_back(x["loc"][1].get<std::string>(), x["type"].get<std::string>());
  std::vector<std::pair<std::string, std::string>> want = {
      {"prompt", "string_type"}, {"config", "dict_type"},
      {"timeout", "int_type"},   {"session_id", "string_type"},
      {"idempotency_scope", "value_error"}, {"priority", "value_error"}};
  EXPECT_EQ(got, want);
}

TEST(Validation, MissingPromptPlusBadFields) {
  Json e = errorsj(json{{"config", 1}, {"timeout", -5}});
  ASSERT_EQ(e.size(), 3u) << e.dump();
  EXPECT_EQ(e[0]["type"], "missing");
  EXPECT_EQ(e[1]["loc"], loc({"body", "config"}));
  EXPECT_EQ(e[2]["loc"], loc({"body", "timeout"}));
  EXPECT_EQ(e[2]["type"], "value_error");
}

TEST(Validation, MalformedJsonOffsetsArePythons) {
  struct Case {
    std::string body;
    int offset;
    const char* error;
  };
  std::vector<Case> cases = {
      {R"({"prompt": x})", 11, "Expecting value"},
      {R"({"prompt": "x",})", 15, "Expecting property name enclosed in double quotes"},
      {R"({"prompt": "x" "y"})", 15, "Expecting ',' delimiter"},
      {"nope", 0, "Expecting value"},
      {R"({"prompt": "x"} trailing)", 16, "Extra data"},
      {"{\"prompt\": \"\xc3\xa9\", x}", 17, "Expecting property name enclosed in double quotes"},
      {R"({"prompt": "abc")", 16, "Expecting ',' delimiter"},
      {R"({"prompt": "abc)", 11, "Unterminated string starting at"},
      {"{\"prompt\": \"ab\ncd\"}", 14, "Invalid control character at"},
      {R"({"prompt": "a\qb"})", 13, "Invalid \\escape"},
      {R"("\u12")", 2, "Invalid \\uXXXX escape"},
      {"-x", 0, "Expecting value"},
      {"[1,", 3, "Expecting value"},
      {"[1.]", 2, "Expecting ',' delimiter"},
      {"[01]", 2, "Expecting ',' delimiter"},
      {"1e", 1, "Extra data"},
      {R"({"a" 1})", 5, "Expecting ':' delimiter"},
      {"{", 1, "Expecting property name enclosed in double quotes"},
      {"   ", 3, "Expecting value"},
      {"{} x", 3, "Extra data"},
  };
  for (const auto& c : cases) {
    Json e = one(c.body);
    EXPECT_EQ(e["type"], "json_invalid") << c.body;
    EXPECT_EQ(e["loc"], loc({"body", c.offset})) << c.body;
    EXPECT_EQ(e["msg"], "JSON decode error");
    EXPECT_EQ(e["input"], Json::object());
    EXPECT_EQ(e["ctx"]["error"], c.error) << c.body;
  }
}

TEST(Validation, InvalidUtf8AndSurrogatesAreJsonInvalid) {
  for (std::string body : {std::string("{\"prompt\": \"\xff\"}"),
                           std::string("{\"prompt\": \"\xc3\"}"),
                           std::string(R"({"prompt": "\ud800"})"),
                           std::string("\xff\xfe\x00garbage", 10), std::string("NaN"),
                           std::string(R"({"prompt":"x","timeout":Infinity})")}) {
    Json e = one(body);
    EXPECT_EQ(e["type"], "json_invalid") << body;
    EXPECT_EQ(e["loc"][0], "body");
    EXPECT_TRUE(e["loc"][1].is_number_unsigned());
    EXPECT_LE(e["loc"][1].get<std::size_t>(), body.size());
  }
}

// Found by the validation fuzzer: a number beyond a double made nlohmann throw
// out_of_range (not parse_error), which escaped parse_submit and became a 500.
TEST(Validation, NumberBeyondADoubleIsJsonInvalidNotAnException) {
  for (std::string body : {std::string(R"({"prompt":"x","priority":1e400})"),
                           std::string(R"({"prompt":"x","config":{"n":-1E+999}})"),
                           std::string("1e400")}) {
    Json e = one(body);
    EXPECT_EQ(e["type"], "json_invalid") << body;
    EXPECT_EQ(e["loc"][0], "body");
    EXPECT_EQ(e["ctx"]["error"], "Number out of range");
  }
  EXPECT_EQ(one(R"({"prompt":"x","priority":1e400})")["loc"][1], 25);  // where the number is
}

TEST(Validation, DeepNestingIsRefusedNotACrash) {
  std::string deep = R"({"prompt":"x","config":{"a":)" + std::string(100000, '[') +
                     std::string(100000, ']') + "}}";
  Json e = one(deep);
  EXPECT_EQ(e["type"], "json_invalid");
  // a reasonable depth is fine
  std::string fine = R"({"prompt":"x","config":{"a":)" + std::string(100, '[') +
                     std::string(100, ']') + "}}";
  ok(fine);
  // brackets inside strings don't count
  okj(json{{"prompt", std::string(5000, '[')}});
}

TEST(Validation, NulInStringsIsAValueError) {
  for (const char* field : {"prompt", "agent_file", "session_id", "framework"}) {
    Json e = one(std::string(R"({"prompt":"x",")") + field + R"(":"a\u0000b"})");
    EXPECT_EQ(e["type"], "value_error") << field;
    EXPECT_EQ(e["loc"], loc({"body", field}));
    EXPECT_EQ(e["input"], std::string("a\0b", 3));
  }
  Json e = one(R"({"prompt":"x","metadata":{"k":"a\u0000"}})");
  EXPECT_EQ(e["type"], "value_error");
  EXPECT_EQ(e["loc"], loc({"body", "metadata"}));
  // NUL inside config is just data
  ok(R"({"prompt":"x","config":{"k":"a\u0000"}})");
}

TEST(Validation, BodyNotAnObject) {
  for (const char* body : {"[1, 2]", R"("a prompt")", "42", "null", "true",
                           R"([{"prompt": "x"}])"}) {
    Json e = one(std::string(body));
    EXPECT_EQ(e["type"], "dict_type") << body;
    EXPECT_EQ(e["loc"], loc({"body"})) << body;
    EXPECT_EQ(e["msg"], "Input should be a valid dictionary or object to extract fields from");
    EXPECT_EQ(e["input"], Json::parse(body));
  }
}

TEST(Validation, EmptyBodyIsMissing) {
  Json e = one(std::string());
  EXPECT_EQ(e.dump(), R"({"type":"missing","loc":["body"],"msg":"Field required","input":null})");
}

TEST(Validation, ErrorBodyShape) {
  auto r = api::parse_submit("{}", nullptr, limits());
  ASSERT_TRUE(std::holds_alternative<api::ValidationErrors>(r));
  EXPECT_EQ(api::validation_error_body(std::get<api::ValidationErrors>(r)),
            R"({"detail":[{"type":"missing","loc":["body","prompt"],"msg":"Field required","input":{}}]})");
}

// ------------------------------------------------------------------ idempotency

TEST(Validation, IdempotencyKeyScopes) {
  EXPECT_EQ(*okj(json{{"prompt", "x"}, {"idempotency_key", "k"}}).idempotency_key, "g:k");
  EXPECT_EQ(*okj(json{{"prompt", "x"}, {"idempotency_key", "k"}, {"idempotency_scope", "global"}})
                 .idempotency_key,
            "g:k");
  EXPECT_FALSE(okj(json{{"prompt", "x"}, {"idempotency_key", "k"}, {"idempotency_scope", "none"}})
                   .idempotency_key);
  EXPECT_EQ(*okj(json{{"prompt", "x"},
                     {"idempotency_key", "k"},
                     {"idempotency_scope", "session"},
                     {"session_id", "s1"}})
                 .idempotency_key,
            "s:2:s1:k");
  EXPECT_EQ(*okj(json{{"prompt", "x"}, {"idempotency_key", "k"}, {"idempotency_scope", "session"}})
                 .idempotency_key,
            "s:0::k");
  // a scope without a key does nothing
  EXPECT_FALSE(okj(json{{"prompt", "x"}, {"idempotency_scope", "session"}}).idempotency_key);
}

TEST(Validation, SessionScopedKeysNeverCollide) {
  auto a = jobs::scoped_idempotency_key("session", std::string("a:b"), "c");
  auto b = jobs::scoped_idempotency_key("session", std::string("a"), "b:c");
  EXPECT_NE(*a, *b);
  EXPECT_NE(*jobs::scoped_idempotency_key("global", std::nullopt, "s:0::k"),
            *jobs::scoped_idempotency_key("session", std::nullopt, "k"));
}

TEST(Validation, HeaderKeyWinsOverBody) {
  std::string header = "from-header";
  jobs::Job j = ok(R"({"prompt":"x","idempotency_key":"from-body"})", &header);
  EXPECT_EQ(*j.idempotency_key, "g:from-header");
  j = ok(R"({"prompt":"x"})", &header);
  EXPECT_EQ(*j.idempotency_key, "g:from-header");
  // the body's scope still applies to the header's key
  j = ok(R"({"prompt":"x","idempotency_scope":"session","session_id":"s"})", &header);
  EXPECT_EQ(*j.idempotency_key, "s:1:s:from-header");
}

TEST(Validation, BadHeaderKeyIs422AtTheHeader) {
  for (std::string header : {std::string(), std::string(257, 'k'), std::string("a\xff"),
                             std::string("a\0b", 3)}) {
    auto r = api::parse_submit(R"({"prompt":"x"})", &header, limits());
    ASSERT_TRUE(std::holds_alternative<api::ValidationErrors>(r)) << header;
    Json d = std::get<api::ValidationErrors>(r).detail;
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0]["type"], "value_error");
    EXPECT_EQ(d[0]["loc"], loc({"header", "idempotency-key"}));
  }
}

TEST(Validation, HashIgnoresIdempotencyFieldsAndHeader) {
  std::string header = "k";
  auto plain = ok(R"({"prompt":"x","priority":1})");
  auto body_key = ok(R"({"priority":1,"prompt":"x","idempotency_key":"k"})");
  auto scoped = ok(R"({"prompt":"x","priority":1,"idempotency_key":"k","idempotency_scope":"session"})");
  auto with_header = ok(R"({"prompt":"x","priority":1})", &header);
  EXPECT_EQ(plain.request_hash, body_key.request_hash);
  EXPECT_EQ(plain.request_hash, scoped.request_hash);
  EXPECT_EQ(plain.request_hash, with_header.request_hash);
  // whitespace, key order, unknown fields and spelled-out defaults don't matter
  EXPECT_EQ(plain.request_hash,
            ok("{ \"priority\" : 1 ,\n \"prompt\":\"x\", \"bogus\": 3, \"timeout\": null, "
               "\"config\": {}, \"metadata\": {}, \"max_retries\": 0}")
                .request_hash);
  // anything else does
  EXPECT_NE(plain.request_hash, ok(R"({"prompt":"y","priority":1})").request_hash);
  EXPECT_NE(plain.request_hash, ok(R"({"prompt":"x","priority":2})").request_hash);
  EXPECT_NE(plain.request_hash, ok(R"({"prompt":"x","priority":1,"session_id":"s"})").request_hash);
  EXPECT_NE(plain.request_hash,
            ok(R"({"prompt":"x","priority":1,"config":{"a":1}})").request_hash);
}

// ------------------------------------------------------------------ helpers

TEST(Validation, Utf8) {
  EXPECT_TRUE(api::is_valid_utf8(""));
  EXPECT_TRUE(api::is_valid_utf8("plain ascii"));
  EXPECT_TRUE(api::is_valid_utf8("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x9a\x80"));
  EXPECT_FALSE(api::is_valid_utf8("\xff"));
  EXPECT_FALSE(api::is_valid_utf8("\xc3"));            // truncated
  EXPECT_FALSE(api::is_valid_utf8("\xc0\xaf"));        // overlong
  EXPECT_FALSE(api::is_valid_utf8("\xe0\x80\xaf"));    // overlong
  EXPECT_FALSE(api::is_valid_utf8("\xed\xa0\x80"));    // surrogate
  EXPECT_FALSE(api::is_valid_utf8("\xf4\x90\x80\x80")); // > U+10FFFF
}

TEST(Validation, ContentTypes) {
  std::string ct;
  EXPECT_TRUE(api::is_json_content_type(nullptr));
  for (const char* good : {"application/json", "application/json; charset=utf-8",
                           "Application/JSON", "application/merge-patch+json",
                           "application/vnd.runq.job+json; v=1", "", " application/json "}) {
    ct = good;
    EXPECT_TRUE(api::is_json_content_type(&ct)) << good;
  }
  for (const char* bad : {"text/plain", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=x", "application/xml", "text/json",
                          "application/+json", "application/jsonx", "text/x+json"}) {
    ct = bad;
    EXPECT_FALSE(api::is_json_content_type(&ct)) << bad;
  }
}

TEST(Validation, PercentDecode) {
  EXPECT_EQ(api::percent_decode("a%20b+c"), "a b c");
  EXPECT_EQ(api::percent_decode("a+b", false), "a+b");
  EXPECT_EQ(api::percent_decode("%41%4a%4A"), "AJJ");
  EXPECT_EQ(api::percent_decode("100%"), "100%");
  EXPECT_EQ(api::percent_decode("%zz%2"), "%zz%2");
  EXPECT_EQ(api::percent_decode("ab%25"), "ab%");
}

TEST(Validation, QueryParsing) {
  auto q = api::parse_query("status=queued&session_id=a%20b&x&page=2&page=3&&=v");
  EXPECT_EQ(*api::query_value(q, "status"), "queued");
  EXPECT_EQ(*api::query_value(q, "session_id"), "a b");
  EXPECT_EQ(*api::query_value(q, "x"), "");
  EXPECT_EQ(*api::query_value(q, "page"), "3");  // the last one wins
  EXPECT_EQ(api::query_value(q, "nope"), nullptr);
}

TEST(Validation, QueryInt) {
  api::ValidationErrors errs;
  EXPECT_EQ(api::query_int("5", "page", 1, 10, errs), 5);
  EXPECT_EQ(api::query_int("+5", "page", 1, 10, errs), 5);
  EXPECT_EQ(api::query_int("10", "page", 1, 10, errs), 10);
  EXPECT_TRUE(errs.empty());
  for (const char* bad : {"0", "11", "-1", "x", "", "1.5", "99999999999999999999", "5x", "-"}) {
    api::ValidationErrors e;
    EXPECT_FALSE(api::query_int(bad, "page", 1, 10, e)) << bad;
    ASSERT_EQ(e.detail.size(), 1u);
    EXPECT_EQ(e.detail[0]["loc"], loc({"query", "page"}));
    EXPECT_EQ(e.detail[0]["input"], bad);
  }
  api::ValidationErrors e;
  api::query_int("x", "page", 1, 10, e);
  EXPECT_EQ(e.detail[0]["type"], "int_type");
  EXPECT_EQ(e.detail[0]["msg"], "Input should be a valid integer, unable to parse string as an integer");
  api::ValidationErrors e2;
  api::query_int("0", "page", 1, 10, e2);
  EXPECT_EQ(e2.detail[0]["type"], "value_error");
}
