// The OpenAI-compatible agent: POST {base}/chat/completions with stream=true, partial
// output to the progress sink as it arrives, usage into the result's metrics. 429, 5xx
// and connection failures are retried with exponential backoff and jitter, honouring
// Retry-After, unless output has already been streamed to clients.
#include "runq/agents/openai_agent.hpp"

#include "runq/http/outbound.hpp"
#include "runq/util/time.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace runq::agents {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

// Longest silence while waiting for the model: the first token of a long prompt, or a
// whole answer from a server that ignores `stream`, can take a while.
constexpr milliseconds kIdleTimeout{180'000};
constexpr milliseconds kConnectTimeout{15'000};
// How much of an error body goes into the job's error when it is not OpenAI's shape.
constexpr std::size_t kErrorBodyExcerpt = 300;
// A Retry-After beyond this is not waited for (the job fails with the server's error).
constexpr milliseconds kMaxRetryAfter{10 * 60'000};

constexpr double kProgressWaiting = 10.0;
constexpr double kProgressReceiving = 50.0;

// The outcome of one try.
struct Attempt {
  enum class Kind { ok, retryable, fatal, stopped } kind = Kind::fatal;
  std::string error;
  std::optional<milliseconds> retry_after;
};

// Per-job settings, from the job's config over the server's defaults.
struct Settings {
  std::string model;
  std::optional<std::string> system;
  std::optional<double> temperature;
  std::optional<std::int64_t> max_tokens;
};

// Reads config.model/system/temperature/max_tokens; a value of the wrong type is an
// error (returned), null or absent means the default.
std::optional<std::string> read_settings(const json& config, const std::string& default_model,
                                         Settings& out) {
  out.model = default_model;
  if (!config.is_object()) return std::nullopt;
  auto present = [&](const char* key) -> const json* {
    auto it = config.find(key);
    return it == config.end() || it->is_null() ? nullptr : &*it;
  };
  if (auto* v = present("model")) {
    if (!v->is_string() || v->get<std::string>().empty())
      return "config.model must be a non-empty string";
    out.model = v->get<std::string>();
  }
  if (auto* v = present("system")) {
    if (!v->is_string()) return "config.system must be a string";
    out.system = v->get<std::string>();
  }
  if (auto* v = present("temperature")) {
    if (!v->is_number()) return "config.temperature must be a number";
    out.temperature = v->get<double>();
  }
  if (auto* v = present("max_tokens")) {
    bool integral = v->is_number_integer() ||
                    (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>());
    if (!integral || v->get<double>() < 1) return "config.max_tokens must be a positive integer";
    out.max_tokens = static_cast<std::int64_t>(v->get<double>());
  }
  return std::nullopt;
}

json request_body(const Settings& s, const std::string& prompt) {
  json messages = json::array();
  if (s.system) messages.push_back({{"role", "system"}, {"content", *s.system}});
  messages.push_back({{"role", "user"}, {"content", prompt}});
  json body = {{"model", s.model},
               {"messages", std::move(messages)},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (s.temperature) body["temperature"] = *s.temperature;
  if (s.max_tokens) body["max_tokens"] = *s.max_tokens;
  return body;
}

// "Retry-After: <seconds>" (integer or decimal); HTTP dates are not used by model APIs.
std::optional<milliseconds> parse_retry_after(const std::string* value) {
  if (!value) return std::nullopt;
  try {
    std::size_t used = 0;
    double seconds = std::stod(*value, &used);
    if (used == 0 || !std::isfinite(seconds) || seconds < 0) return std::nullopt;
    return milliseconds(static_cast<std::int64_t>(std::min(seconds, 1e7) * 1000));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The readable part of an error answer: OpenAI's {"error": {"message": ...}} when it is
// there, else the start of the body.
std::string error_detail(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto it = j.find("error");
    if (it != j.end()) {
      if (it->is_object()) {
        auto m = it->find("message");
        if (m != it->end() && m->is_string()) return m->get<std::string>();
      } else if (it->is_string()) {
        return it->get<std::string>();
      }
    }
    auto d = j.find("detail");
    if (d != j.end() && d->is_string()) return d->get<std::string>();
  }
  std::string excerpt = body.substr(0, kErrorBodyExcerpt);
  while (!excerpt.empty() && (excerpt.back() == '\n' || excerpt.back() == '\r'))
    excerpt.pop_back();
  if (body.size() > kErrorBodyExcerpt) excerpt += "...";
  return excerpt;
}

const json* first_choice(const json& j) {
  auto it = j.find("choices");
  if (it == j.end() || !it->is_array() || it->empty() || !(*it)[0].is_object())
    return nullptr;
  return &(*it)[0];
}

std::optional<std::string> string_at(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// Collects one answer, streamed (text/event-stream of chat.completion.chunk objects) or
// not (one chat.completion object). Never throws from feed().
class AnswerReader {
 public:
  explicit AnswerReader(jobs::ProgressSink& sink) : sink_(sink) {}

  void feed(std::string_view bytes) {
    if (!saw_event_) raw_.append(bytes);
    pending_.append(bytes);
    std::size_t start = 0;
    for (;;) {
      const auto nl = pending_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(pending_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      on_line(line);
      start = nl + 1;
    }
    pending_.erase(0, start);
  }

  // After the body ended: flushes a last event that had no blank line after it.
  void finish() {
    if (!pending_.empty()) {
      std::string_view line(pending_);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      on_line(line);
      pending_.clear();
    }
    on_line("");
  }

  // A non-streamed answer: the whole body is one chat.completion object.
  bool read_whole_body() {
    json j = json::parse(raw_, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
      stream_error_ = error_detail(raw_);
      return true;
    }
    const json* choice = first_choice(j);
    if (!choice) return false;
    take_ids(j);
    auto msg = choice->find("message");
    if (msg != choice->end() && msg->is_object()) {
      if (auto content = string_at(*msg, "content")) append(*content);
    }
    if (auto fr = string_at(*choice, "finish_reason")) finish_reason_ = *fr;
    finished_ = true;
    return true;
  }

  bool saw_event() const { return saw_event_; }
  bool finished() const { return finished_ || !finish_reason_.empty(); }
  bool streamed_any() const { return !output_.empty(); }
  const std::string& output() const { return output_; }
  const std::optional<std::string>& stream_error() const { return stream_error_; }
  const std::optional<std::string>& id() const { return id_; }
  const std::optional<std::string>& model() const { return model_; }
  const json& usage() const { return usage_; }

 private:
  void on_line(std::string_view line) {
    if (line.empty()) {  // end of an event
      if (has_data_) on_event(data_);
      data_.clear();
      has_data_ = false;
      return;
    }
    if (line.front() == ':') return;  // comment / keep-alive
    const auto colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field != "data") return;
    if (!saw_event_) {
      saw_event_ = true;
      raw_.clear();
      raw_.shrink_to_fit();
    }
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
  }

  void on_event(const std::string& data) {
    if (data == "[DONE]") {
      finished_ = true;
      return;
    }
    json j = json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
      stream_error_ = error_detail(data);
      return;
    }
    take_ids(j);
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) usage_ = *u;
    const json* choice = first_choice(j);
    if (!choice) return;
    if (auto delta = choice->find("delta"); delta != choice->end() && delta->is_object()) {
      if (auto content = string_at(*delta, "content"); content && !content->empty())
        append(*content);
    }
    if (auto fr = string_at(*choice, "finish_reason")) finish_reason_ = *fr;
  }

  void take_ids(const json& j) {
    if (!id_) id_ = string_at(j, "id");
    if (auto m = string_at(j, "model")) model_ = m;
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) usage_ = *u;
  }

  void append(const std::string& piece) {
    if (output_.empty())
      sink_.progress(kProgressReceiving, std::string("Receiving"), 0, std::nullopt);
    output_ += piece;
    sink_.output(piece);
  }

  jobs::ProgressSink& sink_;
  std::string pending_;  // bytes after the last newline
  std::string raw_;      // the whole body, until it turns out to be an event stream
  std::string data_;     // data lines of the current event
  bool has_data_ = false;
  bool saw_event_ = false;
  bool finished_ = false;
  std::string finish_reason_;
  std::string output_;
  std::optional<std::string> stream_error_;
  std::optional<std::string> id_;
  std::optional<std::string> model_;
  json usage_;
};

// Removes a cancel-token callback when the try ends.
class StopCallback {
 public:
  StopCallback(jobs::CancelToken& token, std::function<void()> fn)
      : token_(token), handle_(token.on_stop(std::move(fn))) {}
  ~StopCallback() { token_.remove_callback(handle_); }
  StopCallback(const StopCallback&) = delete;
  StopCallback& operator=(const StopCallback&) = delete;

 private:
  jobs::CancelToken& token_;
  int handle_;
};

milliseconds backoff(int attempt, const OpenAIOptions& o) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double base = static_cast<double>(o.base_backoff.count()) *
                std::pow(2.0, std::min(attempt - 1, 30));
  base = std::min(base, static_cast<double>(o.max_backoff.count()));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);  // "equal jitter"
  return milliseconds(static_cast<std::int64_t>(base * jitter(rng)));
}

jobs::AgentResult failed(std::string error) { return jobs::AgentResult{false, {}, std::move(error), {}}; }

}  // namespace

OpenAIAgent::OpenAIAgent(OpenAIOptions options) : options_(std::move(options)) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/')
    options_.base_url.pop_back();
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

std::string OpenAIAgent::id() const { return "openai:" + options_.model; }

jobs::AgentResult OpenAIAgent::run(const jobs::Job& job, jobs::CancelToken& cancel,
                             jobs::ProgressSink& sink) {
  Settings settings;
  if (auto bad = read_settings(job.config, options_.model, settings)) return failed(*bad);

  http::OutboundRequest request;
  request.method = "POST";
  request.url = options_.base_url + "/chat/completions";
  request.headers = {{"Content-Type", "application/json"},
                     {"Accept", "text/event-stream, application/json"}};
  if (!options_.api_key.empty())
    request.headers.push_back({"Authorization", "Bearer " + options_.api_key});
  request.body = request_body(settings, job.prompt).dump();
  request.connect_timeout = kConnectTimeout;
  request.idle_timeout = kIdleTimeout;
  request.ca_file = options_.ca_file;

  // The job's own deadline: a retry that cannot start before it is not waited for.
  std::optional<std::int64_t> deadline_us;
  if (job.started_at_us && job.timeout_s > 0)
    deadline_us = *job.started_at_us + std::int64_t(job.timeout_s) * 1'000'000;

  const auto stopped = [] { return failed("stopped"); };
  std::string last_error;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    if (cancel.stopped()) return stopped();
    sink.progress(kProgressWaiting,
                  attempt == 1 ? std::string("Waiting for model")
                               : "Waiting for model (attempt " + std::to_string(attempt) +
                                     " of " + std::to_string(options_.max_attempts) + ")",
                  0, std::nullopt);

    AnswerReader reader(sink);
    Attempt outcome;
    std::shared_ptr<http::OutboundCall> call;
    try {
      call = std::make_shared<http::OutboundCall>(request);
    } catch (const std::invalid_argument& e) {
      return failed(std::string("invalid OpenAI base URL: ") + e.what());
    }
    try {
      // The callback owns the call too: cancel() may run on another thread just as this
      // try ends, and must not find the call destroyed.
      StopCallback on_stop(cancel, [call] { call->cancel(); });
      http::OutboundResponse response =
          call->perform([&reader](std::string_view bytes) { reader.feed(bytes); });
      const int status = response.status;
      if (status >= 200 && status < 300) {
        reader.finish();
        if (!reader.saw_event() && !reader.read_whole_body()) {
          outcome = {Attempt::Kind::fatal,
                     "the model server's answer (HTTP " + std::to_string(status) +
                         ") is neither an event stream nor a chat completion"};
        } else if (reader.stream_error()) {
          outcome = {Attempt::Kind::fatal, "the model server reported an error: " +
                                               *reader.stream_error()};
        } else if (!reader.finished()) {
          outcome = {reader.streamed_any() ? Attempt::Kind::fatal : Attempt::Kind::retryable,
                     "the model server ended the stream before the answer was complete"};
        } else {
          outcome = {Attempt::Kind::ok, {}};
        }
      } else {
        std::string error = "the model server answered HTTP " + std::to_string(status);
        std::string detail = error_detail(response.body);
        if (!detail.empty()) error += ": " + detail;
        const bool retryable = status == 429 || status >= 500 || status == 408;
        outcome = {retryable ? Attempt::Kind::retryable : Attempt::Kind::fatal, error,
                   retryable ? parse_retry_after(response.header("retry-after"))
                             : std::nullopt};
      }
    } catch (const http::OutboundCancelled&) {
      outcome = {Attempt::Kind::stopped, {}};
    } catch (const http::OutboundError& e) {
      const std::string what = e.what();
      // A certificate or CA file problem does not go away by trying again.
      const bool permanent = what.find("certificate verify failed") != std::string::npos ||
                             what.find("cannot load CA file") != std::string::npos;
      if (reader.streamed_any())
        outcome = {Attempt::Kind::fatal,
                   "the connection to the model server broke after partial output: " + what};
      else
        outcome = {permanent ? Attempt::Kind::fatal : Attempt::Kind::retryable, what};
    }
    if (cancel.stopped() || outcome.kind == Attempt::Kind::stopped) return stopped();

    if (outcome.kind == Attempt::Kind::ok) {
      jobs::AgentResult result{true, reader.output(), {}, reader.id(), json::object()};
      if (!reader.usage().is_null()) result.metrics["usage"] = reader.usage();
      result.metrics["model"] = reader.model().value_or(settings.model);
      result.metrics["attempts"] = attempt;
      return result;
    }
    last_error = outcome.error;
    // Partial output already reached clients: a second answer would not match it.
    if (outcome.kind == Attempt::Kind::fatal || reader.streamed_any()) return failed(last_error);
    if (attempt == options_.max_attempts) break;

    milliseconds delay = backoff(attempt, options_);
    if (outcome.retry_after) {
      if (*outcome.retry_after > kMaxRetryAfter)
        return failed(last_error + " (Retry-After " +
                      std::to_string(outcome.retry_after->count() / 1000) + " s is too long)");
      delay = std::max(delay, *outcome.retry_after);
    }
    if (deadline_us && util::now_us() + delay.count() * 1000 >= *deadline_us)
      return failed(last_error + " (no time left for another attempt)");
    spdlog::warn("job {}: model call attempt {} of {} failed ({}); retrying in {} ms", job.id,
                 attempt, options_.max_attempts, last_error, delay.count());
    if (!cancel.sleep_for(delay)) return stopped();
  }
  return failed(last_error + " (gave up after " + std::to_string(options_.max_attempts) +
                (options_.max_attempts == 1 ? " attempt)" : " attempts)"));
}

}  // namespace runq::agents
