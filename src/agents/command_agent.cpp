#include "runq/agents/command_agent.hpp"
#include "runq/util/json_text.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

namespace runq::agents {

// ---------------------------------------------------------------------------------------
// split_command_line
// ---------------------------------------------------------------------------------------

std::vector<std::string> split_command_line(const std::string& line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  const std::size_t n = line.size();
  for (std::size_t i = 0; i < n; ++i) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\\') {
      if (i + 1 < n) {
        ++i;
        if (line[i] == '\n') continue;  // line continuation: nothing at all
        cur += line[i];
      } else {
        cur += '\\';  // a lone trailing backslash stays itself
      }
      in_word = true;
    } else if (c == '\'') {
      std::size_t close = line.find('\'', i + 1);
      if (close == std::string::npos)
        throw std::invalid_argument("unclosed single quote in command line");
      cur.append(line, i + 1, close - i - 1);
      i = close;
      in_word = true;
    } else if (c == '"') {
      bool closed = false;
      for (++i; i < n; ++i) {
        char d = line[i];
        if (d == '"') {
          closed = true;
          break;
        }
        if (d == '\\' && i + 1 < n) {
          char e = line[i + 1];
          if (e == '"' || e == '\\' || e == '$' || e == '`') {
            cur += e;
            ++i;
            continue;
          }
          if (e == '\n') {
            ++i;
            continue;
          }
        }
        cur += d;
      }
      if (!closed) throw std::invalid_argument("unclosed double quote in command line");
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

// ---------------------------------------------------------------------------------------
// CommandAgent
// ---------------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxStderrLine = 64 * 1024;  // longer lines are cut into pieces
constexpr std::size_t kTailLines = 20;
constexpr std::size_t kTailLineBytes = 512;
constexpr std::size_t kTailBytes = 4096;
constexpr auto kDrainAfterExit = std::chrono::seconds(2);
constexpr int kFallbackPollMs = 20;  // when pidfd_open is not available

// Job fields that we set; the server's own values of these names are never passed on.
constexpr std::string_view kJobVars[] = {
    "RUNQ_JOB_ID",       "RUNQ_SESSION_ID",    "RUNQ_AGENT_FILE", "RUNQ_AGENT_YAML",
    "RUNQ_RECIPE_NAME",  "RUNQ_RECIPE_CONFIG", "RUNQ_FRAMEWORK",  "RUNQ_CONFIG",
    "RUNQ_METADATA",     "RUNQ_ATTEMPT",       "RUNQ_TIMEOUT"};

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Written by the cancel callback (any thread), read by the poll loop. Shared ownership:
// CancelToken::cancel may still be running the callback after run() has removed it.
struct Waker {
  Fd fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  void wake() const {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(fd.get(), &one, sizeof one);
  }
  void drain() const {
    std::uint64_t v;
    [[maybe_unused]] auto r = ::read(fd.get(), &v, sizeof v);
  }
};

// Writing to a pipe whose reader is gone raises SIGPIPE in the writing thread. The server
// ignores it; a test binary or an embedding program may not. Block it in this thread
// while we run, and swallow one that we caused.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
    blocked_here_ = !sigismember(&old_, SIGPIPE);
  }
  ~SigpipeBlock() {
    if (!blocked_here_) return;
    if (got_epipe) {
      sigset_t s;
      sigemptyset(&s);
      sigaddset(&s, SIGPIPE);
      timespec zero{0, 0};
      while (sigtimedwait(&s, nullptr, &zero) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  bool got_epipe = false;

 private:
  sigset_t old_;
  bool blocked_here_ = false;
};

// Makes sure the child is gone and reaped whatever happens (also on exceptions).
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() {
    if (reaped_) return;
    ::killpg(pid_, SIGKILL);
    reap();
  }
  int reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_;
  bool reaped_ = false;
};

bool set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

std::string errno_text(int err) {
  char buf[256];
  return ::strerror_r(err, buf, sizeof buf);  // GNU variant: returns the message
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  return "SIG?";
}

// Everything we hand back ends up in JSON documents, which must be valid UTF-8: invalid
// bytes become U+FFFD (the same as the API's JSON rendering does). Valid text is untouched.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return len;
}

std::string valid_utf8(std::string s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) break;
    i += n;
  }
  if (i == s.size()) return s;  // the usual case: nothing to do
  std::string out(s, 0, i);
  out.reserve(s.size() + 16);
  while (i < s.size()) {
    std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

std::string json_text(const nlohmann::json& j) {
  return util::json_text(j);
}

std::vector<std::string> build_environment(const jobs::Job& job) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    auto name = entry.substr(0, entry.find('='));
    if (std::find(std::begin(kJobVars), std::end(kJobVars), name) != std::end(kJobVars))
      continue;
    env.emplace_back(entry);
  }
  auto add = [&](std::string_view name, const std::string& value) {
    std::string entry(name);
    entry += '=';
    entry += value;
    env.push_back(std::move(entry));
  };
  auto add_opt = [&](std::string_view name, const std::optional<std::string>& value) {
    if (value) add(name, *value);
  };
  auto add_json = [&](std::string_view name, const nlohmann::json& value) {
    if (!value.is_null()) add(name, json_text(value));
  };
  add("RUNQ_JOB_ID", job.id);
  add_opt("RUNQ_SESSION_ID", job.session_id);
  add_opt("RUNQ_AGENT_FILE", job.agent_file);
  add_opt("RUNQ_AGENT_YAML", job.agent_yaml);
  add_opt("RUNQ_RECIPE_NAME", job.recipe_name);
  add_json("RUNQ_RECIPE_CONFIG", job.recipe_config);
  add_opt("RUNQ_FRAMEWORK", job.framework);
  add_json("RUNQ_CONFIG", job.config);
  add_json("RUNQ_METADATA", job.metadata);
  if (job.attempts > 0) add("RUNQ_ATTEMPT", std::to_string(job.attempts));
  if (job.timeout_s > 0) add("RUNQ_TIMEOUT", std::to_string(job.timeout_s));
  return env;
}

// `::progress <percent> <step text>` -> (percent, step). nullopt if `line` is not one.
struct ProgressLine {
  double percent;
  std::optional<std::string> step;
};

bool is_progress_directive(std::string_view line) {
  constexpr std::string_view kTag = "::progress";
  return line.substr(0, kTag.size()) == kTag &&
         (line.size() == kTag.size() || line[kTag.size()] == ' ' ||
          line[kTag.size()] == '\t');
}

std::optional<ProgressLine> parse_progress(std::string_view line) {
  std::string_view rest = line.substr(std::string_view("::progress").size());
  auto skip_space = [&] {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  };
  skip_space();
  std::size_t end = 0;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t') ++end;
  std::string number(rest.substr(0, end));
  rest.remove_prefix(end);
  if (!number.empty() && number.back() == '%') number.pop_back();
  if (number.empty()) return std::nullopt;
  char* stop = nullptr;
  errno = 0;
  double pct = std::strtod(number.c_str(), &stop);
  if (stop != number.c_str() + number.size() || errno != 0 || !std::isfinite(pct))
    return std::nullopt;
  pct = std::clamp(pct, 0.0, 100.0);
  skip_space();
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  ProgressLine p{pct, std::nullopt};
  if (!rest.empty()) p.step = valid_utf8(std::string(rest));
  return p;
}

// What the child writes on stderr: progress directives, log lines, and a bounded tail.
class StderrHandler {
 public:
  StderrHandler(const std::string& job_id, ProgressSink& sink) : job_id_(job_id), sink_(sink) {}

  void feed(const char* data, std::size_t n) {
    partial_.append(data, n);
    std::size_t start = 0;
    for (;;) {
      std::size_t nl = partial_.find('\n', start);
      if (nl == std::string::npos) break;
      line(std::string_view(partial_).substr(start, nl - start));
      start = nl + 1;
    }
    partial_.erase(0, start);
    while (partial_.size() > kMaxStderrLine) {
      line(std::string_view(partial_).substr(0, kMaxStderrLine));
      partial_.erase(0, kMaxStderrLine);
    }
  }

  void finish() {
    if (!partial_.empty()) line(partial_);
    partial_.clear();
  }

  std::string tail() const {
    std::string out;
    for (const auto& l : tail_) {
      if (!out.empty()) out += '\n';
      out += l;
    }
    return out;
  }

 private:
  void line(std::string_view l) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (is_progress_directive(l)) {
      if (auto p = parse_progress(l)) {
        sink_.progress(p->percent, p->step, steps_completed_++, std::nullopt);
      } else {
        spdlog::debug("job {}: ignoring malformed progress line: {}", job_id_, l);
      }
      return;
    }
    spdlog::info("job {}: {}", job_id_, l);
    std::string kept(l.substr(0, kTailLineBytes));
    if (kept.size() < l.size()) kept += "...";
    tail_bytes_ += kept.size();
    tail_.push_back(std::move(kept));
    while (tail_.size() > kTailLines || (tail_.size() > 1 && tail_bytes_ > kTailBytes)) {
      tail_bytes_ -= tail_.front().size();
      tail_.pop_front();
    }
  }

  const std::string& job_id_;
  ProgressSink& sink_;
  std::string partial_;
  std::deque<std::string> tail_;
  std::size_t tail_bytes_ = 0;
  int steps_completed_ = 0;
};

AgentResult failure(std::string error) {
  return AgentResult{false, {}, valid_utf8(std::move(error)), {}};
}

std::string stop_text(jobs::StopReason r) {
  switch (r) {
    case jobs::StopReason::cancelled: return "Command stopped: job cancelled";
    case jobs::StopReason::timed_out: return "Command stopped: job timed out";
    case jobs::StopReason::shutdown: return "Command stopped: server shutting down";
    case jobs::StopReason::none: break;
  }
  return "Command stopped";
}

int ms_until(Clock::time_point t) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(d + 1, 0, 60'000));
}

}  // namespace

CommandAgent::CommandAgent(CommandOptions options) : options_(std::move(options)) {}

std::string CommandAgent::id() const { return "command"; }

AgentResult CommandAgent::run(const jobs::Job& job, jobs::CancelToken& cancel,
                              ProgressSink& sink) {
  if (options_.argv.empty()) return failure("No command configured (--agent-command)");
  if (cancel.stopped()) return failure(stop_text(cancel.reason()));
  const std::string& program = options_.argv.front();

  SigpipeBlock sigpipe;

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return failure("Cannot run " + program + ": pipe: " + errno_text(errno));
  Fd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return failure("Cannot run " + program + ": pipe: " + errno_text(errno));
  Fd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return failure("Cannot run " + program + ": pipe: " + errno_text(errno));
  Fd err_r(err[0]), err_w(err[1]);

  auto waker = std::make_shared<Waker>();
  if (!waker->fd.open()) return failure("Cannot run " + program + ": eventfd: " + errno_text(errno));

  std::vector<std::string> env_strings = build_environment(job);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = options_.argv;
  std::vector<char*> argv;
  argv.reserve(argv_strings.size() + 1);
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (pgid = pid); an empty signal mask (the server blocks SIGTERM and
  // SIGINT in its threads) and default dispositions (it ignores SIGPIPE).
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);

  pid_t pid = -1;
  int rc = program.find('/') == std::string::npos
               ? ::posix_spawnp(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data())
               : ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return failure("Cannot run " + program + ": " + errno_text(rc));

  ChildGuard guard(pid);
  spdlog::debug("job {}: started {} (pid {})", job.id, program, pid);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  set_nonblocking(in_w.get());
  set_nonblocking(out_r.get());
  set_nonblocking(err_r.get());
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  int cb = cancel.on_stop([waker] { waker->wake(); });
  struct CallbackGuard {
    jobs::CancelToken& token;
    int handle;
    ~CallbackGuard() { if (handle) token.remove_callback(handle); }
  } cb_guard{cancel, cb};

  StderrHandler stderr_handler(job.id, sink);
  std::string output;
  bool overflow = false;
  std::size_t prompt_off = 0;
  if (job.prompt.empty()) in_w.reset();

  bool leader_exited = false;
  bool terminating = false;
  bool sent_kill = false;
  Clock::time_point kill_at{};
  Clock::time_point drain_until{};

  std::vector<char> buf(kReadChunk);

  for (;;) {
    // Has the group leader exited? Look without reaping: the zombie keeps the pid and the
    // process group id reserved, so killpg below cannot hit a recycled group.
    if (!leader_exited) {
      siginfo_t si{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          si.si_pid == pid) {
        leader_exited = true;
        ::killpg(pid, SIGKILL);  // whatever it left behind in its group goes with it
        in_w.reset();
        pidfd.reset();
        drain_until = Clock::now() + kDrainAfterExit;
      }
    }

    if (!terminating && (overflow || cancel.stopped())) {
      terminating = true;
      in_w.reset();
      if (!leader_exited) {
        ::killpg(pid, SIGTERM);
        kill_at = Clock::now() + options_.kill_grace;
      }
    }
    if (terminating && !leader_exited && !sent_kill && Clock::now() >= kill_at) {
      ::killpg(pid, SIGKILL);
      sent_kill = true;
    }

    if (leader_exited && ((!out_r.open() && !err_r.open()) || Clock::now() >= drain_until))
      break;

    // What to wait for, and for how long.
    pollfd fds[5];
    int nfds = 0;
    int i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
    if (in_w.open()) { i_in = nfds; fds[nfds++] = {in_w.get(), POLLOUT, 0}; }
    if (out_r.open()) { i_out = nfds; fds[nfds++] = {out_r.get(), POLLIN, 0}; }
    if (err_r.open()) { i_err = nfds; fds[nfds++] = {err_r.get(), POLLIN, 0}; }
    int i_wake = nfds;
    fds[nfds++] = {waker->fd.get(), POLLIN, 0};
    if (!leader_exited && pidfd.open()) { i_pid = nfds; fds[nfds++] = {pidfd.get(), POLLIN, 0}; }

    int timeout = -1;
    auto limit = [&](int ms) { timeout = timeout < 0 ? ms : std::min(timeout, ms); };
    if (!leader_exited && !pidfd.open()) limit(kFallbackPollMs);
    if (terminating && !leader_exited && !sent_kill) limit(ms_until(kill_at));
    if (leader_exited) limit(ms_until(drain_until));

    int n = ::poll(fds, static_cast<nfds_t>(nfds), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("poll: " + errno_text(errno));
    }
    (void)i_pid;  // readable pidfd: the waitid at the top of the loop sees the exit

    if (fds[i_wake].revents) waker->drain();

    if (i_in >= 0 && fds[i_in].revents) {
      if (fds[i_in].revents & (POLLERR | POLLHUP)) {
        in_w.reset();  // the child closed its stdin
      } else {
        std::size_t left = job.prompt.size() - prompt_off;
        ssize_t w = ::write(in_w.get(), job.prompt.data() + prompt_off, std::min(left, kReadChunk));
        if (w > 0) {
          prompt_off += static_cast<std::size_t>(w);
          if (prompt_off == job.prompt.size()) in_w.reset();
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          if (errno == EPIPE) sigpipe.got_epipe = true;
          in_w.reset();
        }
      }
    }

    if (i_out >= 0 && fds[i_out].revents) {
      ssize_t r = ::read(out_r.get(), buf.data(), buf.size());
      if (r > 0) {
        if (!overflow) {
          if (output.size() + static_cast<std::size_t>(r) > options_.max_output_bytes) {
            overflow = true;
            std::string().swap(output);
          } else {
            output.append(buf.data(), static_cast<std::size_t>(r));
          }
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        out_r.reset();
      }
    }

    if (i_err >= 0 && fds[i_err].revents) {
      ssize_t r = ::read(err_r.get(), buf.data(), buf.size());
      if (r > 0) {
        stderr_handler.feed(buf.data(), static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        err_r.reset();
      }
    }
  }

  // The leader is a zombie now: one last sweep of its group, then reap it.
  ::killpg(pid, SIGKILL);
  int status = guard.reap();
  stderr_handler.finish();
  spdlog::debug("job {}: {} (pid {}) ended with wait status {}", job.id, program, pid, status);

  // Exit 0 stands even if the token stopped meanwhile (a timeout firing as it ended):
  // the worker decides, and only a user's cancel wins over a result.
  const bool exited_ok = !overflow && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (cancel.stopped() && !exited_ok) return failure(stop_text(cancel.reason()));
  if (overflow)
    return failure("Output exceeded the limit of " + std::to_string(options_.max_output_bytes) +
                   " bytes");
  std::string tail = stderr_handler.tail();
  std::string suffix = tail.empty() ? std::string() : ": " + tail;
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0) return AgentResult{true, valid_utf8(std::move(output)), {}, {}};
    return failure("Command exited with status " + std::to_string(WEXITSTATUS(status)) + suffix);
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return failure("Command was killed by signal " + signal_name(sig) + " (" +
                   std::to_string(sig) + ")" + suffix);
  }
  return failure("Command ended with wait status " + std::to_string(status) + suffix);
}

}  // namespace runq::agents
