// The command agent: runs a local program per job (see command_agent.hpp). The child
// process mechanics are in subprocess.cpp, the reading of its stderr in stderr_lines.cpp;
// this file feeds it the job and turns its exit into the job's result.
#include "runq/agents/command_agent.hpp"
#include "runq/util/json_text.hpp"
#include "runq/util/utf8.hpp"

#include "stderr_lines.hpp"
#include "subprocess.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

using namespace detail;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr auto kDrainAfterExit = std::chrono::seconds(2);
constexpr int kFallbackPollMs = 20;  // when pidfd_open is not available

// Job fields that we set; the server's own values of these names are never passed on.
constexpr std::string_view kJobVars[] = {
    "RUNQ_JOB_ID",       "RUNQ_SESSION_ID",    "RUNQ_AGENT_FILE", "RUNQ_AGENT_YAML",
    "RUNQ_RECIPE_NAME",  "RUNQ_RECIPE_CONFIG", "RUNQ_FRAMEWORK",  "RUNQ_CONFIG",
    "RUNQ_METADATA",     "RUNQ_ATTEMPT",       "RUNQ_TIMEOUT"};

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
jobs::AgentResult failure(std::string error) {
  return jobs::AgentResult{false, {}, util::to_valid_utf8(std::move(error)), {}};
}

std::string stop_text(jobs::StopReason r) {
  switch (r) {
    case jobs::StopReason::cancelled: return "Command stopped: job cancelled";
    case jobs::StopReason::timed_out: return "Command stopped: job timed out";
    case jobs::StopReason::shutdown: return "Command stopped: server shutting down";
    case jobs::StopReason::lease_lost: return "Command stopped: this node lost its lease";
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

jobs::AgentResult CommandAgent::run(const jobs::Job& job, jobs::CancelToken& cancel,
                              jobs::ProgressSink& sink) {
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

  pid_t pid = -1;
  const int rc = spawn_in_own_group(options_.argv, build_environment(job), in_r.get(),
                                    out_w.get(), err_w.get(), pid);
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
    if (WEXITSTATUS(status) == 0) return jobs::AgentResult{true, util::to_valid_utf8(std::move(output)), {}, {}};
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
