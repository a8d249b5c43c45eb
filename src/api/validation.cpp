#include "runq/api/validation.hpp"

#include "body_fields.hpp"
#include "json_errors.hpp"

#include "runq/jobs/fingerprint.hpp"
#include "runq/util/ascii.hpp"
#include "runq/util/url.hpp"
#include "runq/util/utf8.hpp"
#include "runq/webhooks/url_policy.hpp"

namespace runq::api {

using nlohmann::json;

namespace {

// An absolute http(s) URL with a host (and a numeric port, if any); no spaces or controls.
bool is_http_url(std::string_view url) {
  if (url.size() > kMaxWebhookUrlLen) return false;
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) return false;
  const auto parsed = util::parse_url(url);
  const auto* u = std::get_if<util::Url>(&parsed);
  return u && !u->empty_port;
}

// Checks an idempotency key's text; adds an error at `loc` if bad.
bool check_idempotency_key(const std::string& key, const Json& loc, ValidationErrors& errors) {
  if (!check_text(key, loc, errors)) return false;
  std::size_t len = util::utf8_length(key);
  if (len == 0 || len > kMaxIdempotencyKeyLen) {
    errors.add("value_error", loc,
               "Value error, idempotency_key must be 1 to " +
                   std::to_string(kMaxIdempotencyKeyLen) + " characters",
               Json(key));
    return false;
  }
  return true;
}

}  // namespace

std::variant<jobs::Job, ValidationErrors> parse_submit(std::string_view body,
                                                       const std::string* idempotency_header,
                                                       const SubmitLimits& limits) {
  ValidationErrors errors;

  // The Idempotency-Key header is checked whatever the body holds.
  if (idempotency_header)
    check_idempotency_key(*idempotency_header, Json::array({"header", "idempotency-key"}),
                          errors);

  // 1. JSON text -> value.
  if (auto deep = too_deep_at(body); deep != std::string_view::npos) {
    errors.add("json_invalid", Json::array({"body", deep}), "JSON decode error",
               Json::object());
    errors.detail.back()["ctx"] = {{"error", "nesting too deep"}};
    return errors;
  }
  json parsed;
  if (!body.empty()) {
    try {
      parsed = json::parse(body);
    } catch (const json::parse_error& e) {
      auto [offset, reason] = parse_error_position(e, body);
      errors.add("json_invalid", Json::array({"body", offset}), "JSON decode error",
                 Json::object());
      errors.detail.back()["ctx"] = {{"error", std::move(reason)}};
      return errors;
    } catch (const json::exception& e) {
      // Not a syntax error but a value nlohmann can't hold: a number beyond a double
      // (1e400: out_of_range 406). Python reads it as infinity, which no field accepts.
      // A 422 like any undecodable body, not an exception (that would be a 500).
      errors.add("json_invalid", Json::array({"body", overflow_offset(e.what(), body)}),
                 "JSON decode error", Json::object());
      errors.detail.back()["ctx"] = {{"error", "Number out of range"}};
      return errors;
    }
  }
  if (body.empty()) {  // FastAPI: no body at all is a missing body
    errors.add("missing", Json::array({"body"}), kMsgMissing, Json(nullptr));
    return errors;
  }
  if (!parsed.is_object()) {
    errors.add("dict_type", Json::array({"body"}), kMsgModel, Json(parsed));
    return errors;
  }

  // 2. Fields, in the order of API.md's table (errors come out in this order).
  BodyChecker c(parsed, errors);
  jobs::Job job;

  if (auto prompt = c.required_string("prompt")) job.prompt = std::move(*prompt);
  c.optional_string("agent_file", job.agent_file);
  c.optional_string("agent_yaml", job.agent_yaml);
  c.optional_string("recipe_name", job.recipe_name);
  c.optional_object("recipe_config", job.recipe_config);
  c.optional_object("config", job.config);
  c.optional_string("framework", job.framework);  // absent: "praisonai"; null: null

  if (c.optional_string("webhook_url", job.webhook_url) && job.webhook_url) {
    if (!is_http_url(*job.webhook_url)) {
      errors.add("value_error", body_loc("webhook_url"),
                 "Value error, webhook_url must be an absolute http:// or https:// URL",
                 Json(*job.webhook_url));
      job.webhook_url.reset();
    } else if (auto reason =
                   webhooks::refuse_url(*job.webhook_url, limits.allow_private_webhooks)) {
      errors.add("value_error", body_loc("webhook_url"), "Value error, " + *reason,
                 Json(*job.webhook_url));
      job.webhook_url.reset();
    }
  }

  long long timeout = 0;
  {
    const json* v = c.find("timeout");
    long long n = 0;
    if (v && !v->is_null()) {
      switch (as_int(*v, n)) {
        case IntResult::not_int:
          errors.add("int_type", body_loc("timeout"), kMsgInt, Json(*v));
          break;
        case IntResult::fractional:
          errors.add("int_type", body_loc("timeout"), kMsgIntFraction, Json(*v));
          break;
        case IntResult::unparsable:
          errors.add("int_parsing", body_loc("timeout"), kMsgIntParsing, Json(*v));
          break;
        case IntResult::ok:
          if (n != 0 && (n < 1 || n > limits.max_timeout_s))
            errors.add("value_error", body_loc("timeout"),
                       "Value error, timeout must be between 1 and " +
                           std::to_string(limits.max_timeout_s) + " seconds",
                       Json(*v));
          else
            timeout = n;
          break;
      }
    }
  }
  job.timeout_s = timeout > 0 ? static_cast<int>(timeout) : limits.default_timeout_s;

  c.optional_string("session_id", job.session_id);

  std::optional<std::string> body_key;
  c.optional_string("idempotency_key", body_key);
  if (body_key && !check_idempotency_key(*body_key, body_loc("idempotency_key"), errors))
    body_key.reset();

  std::optional<std::string> scope;
  if (c.optional_string("idempotency_scope", scope) && scope && *scope != "none" &&
      *scope != "session" && *scope != "global") {
    errors.add("value_error", body_loc("idempotency_scope"),
               "Value error, idempotency_scope must be one of 'none', 'session', 'global'",
               Json(*scope));
  }

  long long priority = 0;
  c.int_in_range("priority", false, kMinPriority, kMaxPriority, priority,
                 "priority must be between " + std::to_string(kMinPriority) + " and " +
                     std::to_string(kMaxPriority));
  job.priority = static_cast<int>(priority);

  if (const json* md = c.find("metadata")) {
    if (!md->is_object()) {
      errors.add("dict_type", body_loc("metadata"), kMsgDict, Json(*md));
    } else if (md->size() > kMaxMetadataKeys) {
      errors.add("value_error", body_loc("metadata"),
                 "Value error, metadata may have at most " + std::to_string(kMaxMetadataKeys) +
                     " keys",
                 Json(*md));
    } else {
      bool ok = true;
      std::optional<std::string> value_problem;  // a validator error: reported once
      for (auto it = md->begin(); it != md->end(); ++it) {
        const std::string& k = it.key();
        if (!value_problem) {
          if (!is_valid_utf8(k) || k.find('\0') != std::string::npos)
            value_problem = "metadata keys must be valid UTF-8 without NUL characters";
          else if (util::utf8_length(k) > kMaxMetadataKeyLen)
            value_problem = "metadata keys may have at most " +
                            std::to_string(kMaxMetadataKeyLen) + " characters";
        }
        if (!it.value().is_string()) {
          errors.add("string_type", Json::array({"body", "metadata", k}), kMsgString,
                     Json(it.value()));
          ok = false;
          continue;
        }
        const auto& v = it.value().get_ref<const std::string&>();
        if (!value_problem) {
          if (!is_valid_utf8(v) || v.find('\0') != std::string::npos)
            value_problem = "metadata values must be valid UTF-8 without NUL characters";
          else if (util::utf8_length(v) > kMaxMetadataValueLen)
            value_problem = "metadata values may have at most " +
                            std::to_string(kMaxMetadataValueLen) + " characters";
        }
      }
      if (value_problem && ok) {  // like a validator: runs once the types are right
        errors.add("value_error", body_loc("metadata"), "Value error, " + *value_problem,
                   Json(*md));
        ok = false;
      }
      if (ok) job.metadata = *md;
    }
  }

  long long max_retries = 0;
  c.int_in_range("max_retries", false, 0, kMaxRetries, max_retries,
                 "max_retries must be between 0 and " + std::to_string(kMaxRetries));
  job.max_retries = static_cast<int>(max_retries);

  if (!errors.empty()) return errors;

  // 3. Idempotency: the header wins over the body; scope defaults to global.
  const std::string* key = idempotency_header ? idempotency_header
                           : body_key         ? &*body_key
                                              : nullptr;
  if (key) job.idempotency_key = jobs::scoped_idempotency_key(scope.value_or("global"), job.session_id, *key);

  // 4. The request hash, which idempotency compares.
  job.request_hash = jobs::request_fingerprint(job, timeout);

  return job;
}

bool is_json_content_type(const std::string* content_type) {
  if (!content_type) return true;
  std::string_view v = *content_type;
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return true;
  if (util::iequals(v, "application/json")) return true;
  constexpr std::string_view app = "application/", suffix = "+json";
  return v.size() > app.size() + suffix.size() && util::istarts_with(v, app) &&
         util::iequals(v.substr(v.size() - suffix.size()), suffix) &&
         v.find('/', app.size()) == std::string_view::npos;
}

}  // namespace runq::api
