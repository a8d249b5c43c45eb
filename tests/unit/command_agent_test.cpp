// CommandAgent against real child processes (the scripts in tests/agents/).
#include "runq/agents/command_agent.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef RUNQ_TEST_AGENTS_DIR
#error "RUNQ_TEST_AGENTS_DIR must be defined (tests/CMakeLists.txt)"
#endif

using namespace runq;
using namespace std::chrono_literals;
using agents::CommandAgent;
using agents::CommandOptions;
using agents::split_command_line;
using Clock = std::chrono::steady_clock;
using Strings = std::vector<std::string>;

namespace {

std::string script(const std::string& name) { return std::string(RUNQ_TEST_AGENTS_DIR) + "/" + name; }

struct RecordingSink : jobs::ProgressSink {
  struct Step {
    double pct;
    std::optional<std::string> step;
    int done;
    std::optional<int> total;
  };
  std::vector<Step> steps;
  void progress(double pct, std::optional<std::string> step, int done,
                std::optional<int> total) override {
    steps.push_back({pct, std::move(step), done, total});
  }
  void output(std::string_view) override {}
};

jobs::Job make_job(std::string prompt = "hello") {
  jobs::Job j;
  j.id = "run_0123456789ab";
  j.prompt = std::move(prompt);
  j.timeout_s = 60;
  j.attempts = 1;
  return j;
}

CommandAgent make_agent(Strings argv, std::chrono::milliseconds grace = 5000ms,
                        std::size_t max_output = 16u << 20) {
  CommandOptions o;
  o.argv = std::move(argv);
  o.kill_grace = grace;
  o.max_output_bytes = max_output;
  return CommandAgent(std::move(o));
}

jobs::AgentResult run(CommandAgent& agent, const jobs::Job& job, RecordingSink* sink = nullptr) {
  jobs::CancelToken token;
  RecordingSink local;
  return agent.run(job, token, sink ? *sink : local);
}

// A fresh directory per test for pid files and markers.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "runq-cmd-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Reads "<leader pid> <grandchild pid>" once the script has written it.
std::pair<pid_t, pid_t> wait_pids(const std::string& path, std::chrono::seconds timeout = 10s) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::ifstream f(path);
    long a = 0, b = 0;
    if (f >> a >> b) return {static_cast<pid_t>(a), static_cast<pid_t>(b)};
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("no pid file " + path);
}

// /proc/<pid>/stat: state and process group (nullopt: no such process).
struct ProcInfo {
  char state;
  pid_t pgrp;
};
std::optional<ProcInfo> proc_info(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return std::nullopt;
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return std::nullopt;
  std::istringstream rest(s.substr(rp + 2));
  char state = 0;
  long ppid = 0, pgrp = 0;
  rest >> state >> ppid >> pgrp;
  return ProcInfo{state, static_cast<pid_t>(pgrp)};
}

// Gone = no such process, or a zombie (this machine's init may not reap orphans).
bool gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  auto info = proc_info(pid);
  return !info || info->state == 'Z' || info->state == 'X';
}

// Live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> live_group_members(pid_t pgid) {
  std::vector<pid_t> members;
  DIR* d = ::opendir("/proc");
  if (!d) return members;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    auto info = proc_info(static_cast<pid_t>(pid));
    if (info && info->pgrp == pgid && info->state != 'Z' && info->state != 'X')
      members.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return members;
}

// A SIGKILLed process takes a moment to die: allow a little time.
bool eventually_group_gone(pid_t pgid, std::chrono::milliseconds timeout = 2000ms) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (live_group_members(pgid).empty()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

bool eventually_gone(pid_t pid, std::chrono::milliseconds timeout = 2000ms) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (gone(pid)) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

void kill_leftovers(pid_t a, pid_t b) {  // never leave a test's processes behind
  if (a > 0) ::kill(a, SIGKILL);
  if (b > 0) ::kill(b, SIGKILL);
}

// Runs the agent on a thread; returns its future result.
std::future<jobs::AgentResult> start(CommandAgent& agent, const jobs::Job& job,
                                       jobs::CancelToken& token, RecordingSink& sink) {
  return std::async(std::launch::async, [&agent, &job, &token, &sink] {
    return agent.run(job, token, sink);
  });
}

Strings lines_of(const std::string& s) {
  Strings out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Captures what the default spdlog logger writes while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// split_command_line
// ---------------------------------------------------------------------------------------

TEST(SplitCommandLine, PlainWordsAndWhitespace) {
  EXPECT_EQ(split_command_line("praisonai run"), (Strings{"praisonai", "run"}));
  EXPECT_EQ(split_command_line("  a \t b\n c  "), (Strings{"a", "b", "c"}));
  EXPECT_EQ(split_command_line(""), Strings{});
  EXPECT_EQ(split_command_line("   \t "), Strings{});
}

TEST(SplitCommandLine, SingleQuotesKeepEverything) {
  EXPECT_EQ(split_command_line("echo 'a b'  'c\\d' '\"x\"'"),
            (Strings{"echo", "a b", "c\\d", "\"x\""}));
}

TEST(SplitCommandLine, DoubleQuotesAndTheirEscapes) {
  EXPECT_EQ(split_command_line(R"(p "a b" "q\"r" "s\\t" "\$HOME" "\`x\`" "\n\a")"),
            (Strings{"p", "a b", "q\"r", "s\\t", "$HOME", "`x`", "\\n\\a"}));
}

TEST(SplitCommandLine, BackslashOutsideQuotes) {
  EXPECT_EQ(split_command_line(R"(a\ b c\'d e\\f \"g)"),
            (Strings{"a b", "c'd", "e\\f", "\"g"}));
  EXPECT_EQ(split_command_line("a\\\nb"), Strings{"ab"});  // line continuation
  EXPECT_EQ(split_command_line("a\\"), Strings{"a\\"});    // lone trailing backslash
}

TEST(SplitCommandLine, AdjacentPartsMakeOneWordAndEmptyQuotesAWord) {
  EXPECT_EQ(split_command_line(R"(a'b'"c"d)"), Strings{"abcd"});
  EXPECT_EQ(split_command_line(R"(x '' "" y)"), (Strings{"x", "", "", "y"}));
}

TEST(SplitCommandLine, NothingIsExpanded) {
  EXPECT_EQ(split_command_line("echo $HOME ~ * $(ls) `ls` a;b | c > d"),
            (Strings{"echo", "$HOME", "~", "*", "$(ls)", "`ls`", "a;b", "|", "c", ">", "d"}));
}

TEST(SplitCommandLine, UnclosedQuotesThrow) {
  EXPECT_THROW(split_command_line("echo 'abc"), std::invalid_argument);
  EXPECT_THROW(split_command_line("echo \"abc"), std::invalid_argument);
  EXPECT_THROW(split_command_line("echo \"abc\\\""), std::invalid_argument);
}

TEST(SplitCommandLine, PraisonAIExample) {
  EXPECT_EQ(split_command_line("praisonai --framework crewai \"my agents.yaml\""),
            (Strings{"praisonai", "--framework", "crewai", "my agents.yaml"}));
}

// ---------------------------------------------------------------------------------------
// Results and errors
// ---------------------------------------------------------------------------------------

TEST(CommandAgent, IdIsCommand) { EXPECT_EQ(make_agent({"true"}).id(), "command"); }

TEST(CommandAgent, StdoutIsTheResultExactly) {
  auto agent = make_agent({script("echo.sh")});
  std::string prompt = "line one\nzwei — drei ✓ 😀\n\ttabbed\n\x01\x7f\nno newline at the end";
  auto r = run(agent, make_job(prompt));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, prompt);
  EXPECT_FALSE(r.run_id);
}

TEST(CommandAgent, InvalidUtf8BecomesReplacementCharacters) {
  // Results, errors and progress steps all end up in JSON, which must be valid UTF-8.
  auto agent = make_agent({"sh", "-c",
                           "printf 'a\\377b\\300\\257c\\355\\240\\200d \\360\\237\\230\\200 "
                           "\\342\\202';"
                           "printf '::progress 5 st\\377ep\\n' >&2"});
  RecordingSink sink;
  auto r = run(agent, make_job(), &sink);
  ASSERT_TRUE(r.ok) << r.error;
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(r.output, "a" + fffd + "b" + fffd + fffd + "c" + fffd + fffd + fffd + "d \xF0\x9F\x98\x80 " +
                          fffd + fffd);
  ASSERT_EQ(sink.steps.size(), 1u);
  EXPECT_EQ(sink.steps[0].step, "st" + fffd + "ep");

  auto failing = make_agent({"sh", "-c", "printf 'bad \\377 byte\\n' >&2; exit 1"});
  LogCapture logs;
  auto f = run(failing, make_job());
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.error, "Command exited with status 1: bad " + fffd + " byte");
}

TEST(CommandAgent, EmptyPromptAndEmptyOutput) {
  auto agent = make_agent({script("echo.sh")});
  auto r = run(agent, make_job(""));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, "");
}

TEST(CommandAgent, ProgramFoundOnPath) {
  auto agent = make_agent({"printf", "%s|%s", "a b", "c"});
  auto r = run(agent, make_job());
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, "a b|c");
}

TEST(CommandAgent, ArgumentsReachTheProgramUnchanged) {
  Strings args = {"$HOME", "a b", "*", "'q'", "", "x;y"};
  Strings argv = {script("args.py")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto agent = make_agent(argv);
  auto r = run(agent, make_job());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(nlohmann::json::parse(r.output).get<Strings>(), args);
}

TEST(CommandAgent, BigPromptAndChattyChildDoNotDeadlock) {
  // The child writes 1 MiB of stdout and ~200 KiB of stderr before it reads stdin.
  auto agent = make_agent({script("chatty.py")});
  std::string prompt(3u << 20, 'p');
  LogCapture logs;  // keep the 2000 log lines out of the test output
  auto t0 = Clock::now();
  auto r = run(agent, make_job(prompt));
  EXPECT_LT(Clock::now() - t0, 20s);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, std::string(1u << 20, 'y') + "\nread " + std::to_string(3u << 20) + " bytes");
  EXPECT_NE(logs.text().find("log line 1999"), std::string::npos);
}

TEST(CommandAgent, ChildThatNeverReadsStdinIsFine) {
  // The prompt writer gets EPIPE; the test process (SIGPIPE not ignored) must survive it.
  auto agent = make_agent({script("no_read.sh")});
  auto r = run(agent, make_job(std::string(4u << 20, 'p')));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, "hi\n");
}

TEST(CommandAgent, NonZeroExitFailsWithStatusAndStderrTail) {
  auto agent = make_agent({script("fail.sh")});
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "Command exited with status 3: error line 1\nerror line 2\nerror line 3");
}

TEST(CommandAgent, OtherExitStatusAndNoStderr) {
  auto agent = make_agent({"sh", "-c", "echo out; exit 42"});
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "Command exited with status 42");
}

TEST(CommandAgent, StderrTailKeepsOnlyTheLastLines) {
  auto agent = make_agent({script("fail.sh"), "5", "50"});
  LogCapture logs;
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  const std::string head = "Command exited with status 5: ";
  ASSERT_EQ(r.error.rfind(head, 0), 0u) << r.error;
  Strings tail = lines_of(r.error.substr(head.size()));
  ASSERT_EQ(tail.size(), 20u) << r.error;
  EXPECT_EQ(tail.front(), "error line 31");
  EXPECT_EQ(tail.back(), "error line 50");
  // ... while every line went to the log, tagged with the job id.
  EXPECT_NE(logs.text().find("job run_0123456789ab: error line 1\n"), std::string::npos);
  EXPECT_NE(logs.text().find("job run_0123456789ab: error line 50"), std::string::npos);
}

TEST(CommandAgent, StderrTailIsBoundedInBytes) {
  auto agent = make_agent({"sh", "-c",
                           "i=0; while [ $i -lt 30 ]; do printf '%05000d\\n' $i >&2; "
                           "i=$((i+1)); done; exit 1"});
  LogCapture logs;
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  EXPECT_LT(r.error.size(), 6000u);
  EXPECT_NE(r.error.find("..."), std::string::npos);  // long lines are cut
}

TEST(CommandAgent, KilledBySignal) {
  auto agent = make_agent({script("segv.sh")});
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "Command was killed by signal SIGSEGV (11): about to crash");
}

TEST(CommandAgent, ProgramNotFound) {
  {
    auto agent = make_agent({"/nonexistent/dir/prog", "x"});
    auto r = run(agent, make_job());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "Cannot run /nonexistent/dir/prog: No such file or directory");
  }
  {
    auto agent = make_agent({"runq-no-such-program-anywhere"});
    auto r = run(agent, make_job());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "Cannot run runq-no-such-program-anywhere: No such file or directory");
  }
}

TEST(CommandAgent, ProgramNotExecutable) {
  TempDir dir;
  std::string path = dir.file("plain.sh");
  std::ofstream(path) << "#!/bin/sh\necho hi\n";
  ::chmod(path.c_str(), 0644);
  auto agent = make_agent({path});
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  if (::geteuid() == 0 && r.error.find("Permission denied") == std::string::npos) {
    GTEST_SKIP() << "root may execute anything here: " << r.error;
  }
  EXPECT_EQ(r.error, "Cannot run " + path + ": Permission denied");
}

TEST(CommandAgent, EmptyArgvFails) {
  CommandAgent agent{CommandOptions{}};
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.error.empty());
}

// ---------------------------------------------------------------------------------------
// Progress and logs
// ---------------------------------------------------------------------------------------

TEST(CommandAgent, ProgressLinesReachTheSink) {
  auto agent = make_agent({script("progress.sh"), "0"});
  RecordingSink sink;
  LogCapture logs;
  auto r = run(agent, make_job(), &sink);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, "done\n");
  ASSERT_EQ(sink.steps.size(), 3u);  // the two malformed lines are ignored
  EXPECT_DOUBLE_EQ(sink.steps[0].pct, 10.0);
  EXPECT_EQ(sink.steps[0].step, "starting");
  EXPECT_EQ(sink.steps[0].done, 0);
  EXPECT_EQ(sink.steps[0].total, std::nullopt);
  EXPECT_DOUBLE_EQ(sink.steps[1].pct, 50.0);
  EXPECT_EQ(sink.steps[1].step, "half way");
  EXPECT_EQ(sink.steps[1].done, 1);
  EXPECT_DOUBLE_EQ(sink.steps[2].pct, 90.0);
  EXPECT_EQ(sink.steps[2].step, std::nullopt);
  EXPECT_EQ(sink.steps[2].done, 2);
  std::string log = logs.text();
  EXPECT_NE(log.find("job run_0123456789ab: a plain log line"), std::string::npos) << log;
  EXPECT_EQ(log.find("job run_0123456789ab: ::progress 10"), std::string::npos) << log;
}

TEST(CommandAgent, ProgressParsingDetails) {
  auto agent = make_agent({"sh", "-c",
                           "printf '::progress 12.5%%  step with  spaces  \\r\\n' >&2;"
                           "printf '::progress 150 too much\\n' >&2;"
                           "printf '::progress -3 negative\\n' >&2;"
                           "printf '::progress nan x\\n' >&2;"
                           "printf '::progressive 5 not one\\n' >&2;"
                           "printf '::progress 40 last, no newline' >&2"});
  RecordingSink sink;
  LogCapture logs;
  auto r = run(agent, make_job(), &sink);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(sink.steps.size(), 4u);
  EXPECT_DOUBLE_EQ(sink.steps[0].pct, 12.5);
  EXPECT_EQ(sink.steps[0].step, "step with  spaces");
  EXPECT_DOUBLE_EQ(sink.steps[1].pct, 100.0);  // clamped
  EXPECT_DOUBLE_EQ(sink.steps[2].pct, 0.0);
  EXPECT_DOUBLE_EQ(sink.steps[3].pct, 40.0);
  EXPECT_EQ(sink.steps[3].step, "last, no newline");
  EXPECT_NE(logs.text().find("job run_0123456789ab: ::progressive 5 not one"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Environment and process setup
// ---------------------------------------------------------------------------------------

TEST(CommandAgent, JobFieldsArriveInTheEnvironment) {
  ::setenv("RUNQ_TEST_INHERITED", "yes", 1);
  ::setenv("RUNQ_AGENT_YAML", "stale value from the server's environment", 1);
  auto agent = make_agent({script("env_dump.py")});
  auto job = make_job("the prompt");
  job.session_id = "sess-1";
  job.agent_file = "agents.yaml";
  job.recipe_name = "my-recipe";
  job.recipe_config = {{"k", 1}};
  job.framework = "crewai";
  job.config = {{"model", "x"}, {"temperature", 0.5}};
  job.metadata = {{"team", "blue"}};
  job.attempts = 2;
  job.timeout_s = 30;
  auto r = run(agent, job);
  ::unsetenv("RUNQ_TEST_INHERITED");
  ::unsetenv("RUNQ_AGENT_YAML");
  ASSERT_TRUE(r.ok) << r.error;
  auto out = nlohmann::json::parse(r.output);
  auto env = out["env"];
  EXPECT_EQ(env["RUNQ_JOB_ID"], "run_0123456789ab");
  EXPECT_EQ(env["RUNQ_SESSION_ID"], "sess-1");
  EXPECT_EQ(env["RUNQ_AGENT_FILE"], "agents.yaml");
  EXPECT_FALSE(env.contains("RUNQ_AGENT_YAML"));  // not set on the job: not passed on
  EXPECT_EQ(env["RUNQ_RECIPE_NAME"], "my-recipe");
  EXPECT_EQ(nlohmann::json::parse(env["RUNQ_RECIPE_CONFIG"].get<std::string>()), job.recipe_config);
  EXPECT_EQ(env["RUNQ_FRAMEWORK"], "crewai");
  EXPECT_EQ(nlohmann::json::parse(env["RUNQ_CONFIG"].get<std::string>()), job.config);
  EXPECT_EQ(nlohmann::json::parse(env["RUNQ_METADATA"].get<std::string>()), job.metadata);
  EXPECT_EQ(env["RUNQ_ATTEMPT"], "2");
  EXPECT_EQ(env["RUNQ_TIMEOUT"], "30");
  EXPECT_EQ(out["inherited"], "yes");
  EXPECT_EQ(out["stdin"], "the prompt");
}

TEST(CommandAgent, UnsetFieldsAreNotPassed) {
  auto agent = make_agent({script("env_dump.py")});
  jobs::Job job;
  job.id = "run_00000000000a";
  job.framework.reset();
  auto r = run(agent, job);
  ASSERT_TRUE(r.ok) << r.error;
  auto env = nlohmann::json::parse(r.output)["env"];
  EXPECT_EQ(env["RUNQ_JOB_ID"], "run_00000000000a");
  for (const char* name : {"RUNQ_SESSION_ID", "RUNQ_AGENT_FILE", "RUNQ_AGENT_YAML",
                           "RUNQ_RECIPE_NAME", "RUNQ_FRAMEWORK", "RUNQ_ATTEMPT", "RUNQ_TIMEOUT"})
    EXPECT_FALSE(env.contains(name)) << name;
  EXPECT_EQ(env["RUNQ_CONFIG"], "{}");
}

TEST(CommandAgent, ChildGetsOwnGroupCleanSignalsAndNoStrayFds) {
  // Like the server: SIGTERM/SIGINT blocked in every thread, SIGPIPE ignored, and some
  // descriptor open without O_CLOEXEC.
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  auto old_pipe = std::signal(SIGPIPE, SIG_IGN);
  int null_fd = ::open("/dev/null", O_RDONLY);
  const int stray = 100;
  ASSERT_EQ(::dup2(null_fd, stray), stray);  // dup2: no O_CLOEXEC
  ::close(null_fd);

  auto dump = make_agent({script("env_dump.py")});
  auto r = run(dump, make_job());
  // grep (unlike Python, which ignores SIGPIPE itself) shows the signal state it got.
  auto grep = make_agent({"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"});
  auto sig = run(grep, make_job());
  auto fds = make_agent({"ls", "/proc/self/fd"});
  auto fd_list = run(fds, make_job());

  ::close(stray);
  std::signal(SIGPIPE, old_pipe);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  ASSERT_TRUE(r.ok) << r.error;
  auto out = nlohmann::json::parse(r.output);
  EXPECT_EQ(out["pgid"], out["pid"]);  // its own process group
  EXPECT_NE(out["pgid"].get<int>(), ::getpgrp());
  EXPECT_EQ(out["sid"].get<int>(), ::getsid(0));  // but not a new session

  ASSERT_TRUE(sig.ok) << sig.error;
  Strings sig_lines = lines_of(sig.output);
  ASSERT_EQ(sig_lines.size(), 2u) << sig.output;
  auto mask = [](const std::string& line) {
    return std::stoull(line.substr(line.find('\t') + 1), nullptr, 16);
  };
  // Signals 1..31 (glibc's posix_spawn leaves its internal signals 32/33 ignored).
  EXPECT_EQ(mask(sig_lines[0]), 0u) << sig.output;  // nothing blocked
  EXPECT_EQ(mask(sig_lines[1]) & 0x7fffffffull, 0u) << sig.output;  // nothing ignored

  ASSERT_TRUE(fd_list.ok) << fd_list.error;
  EXPECT_EQ(fd_list.output, "0\n1\n2\n3\n");  // 3: ls's own directory handle
}

// ---------------------------------------------------------------------------------------
// Cancel, timeout, and no process left behind
// ---------------------------------------------------------------------------------------

TEST(CommandAgent, CancelKillsTheWholeProcessGroup) {
  TempDir dir;
  auto agent = make_agent({script("sleeper_tree.py")});
  auto job = make_job();
  job.config = {{"pid_file", dir.file("pids")}};
  jobs::CancelToken token;
  RecordingSink sink;
  auto fut = start(agent, job, token, sink);
  auto [leader, grandchild] = wait_pids(dir.file("pids"));
  EXPECT_FALSE(gone(leader));
  EXPECT_FALSE(gone(grandchild));
  EXPECT_EQ(proc_info(grandchild)->pgrp, leader);

  auto t0 = Clock::now();
  token.cancel(jobs::StopReason::cancelled);
  ASSERT_EQ(fut.wait_for(4s), std::future_status::ready);
  EXPECT_LT(Clock::now() - t0, 2s);  // SIGTERM was enough: no grace period wasted
  auto r = fut.get();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(gone(leader));  // reaped before run() returned
  EXPECT_TRUE(eventually_gone(grandchild));
  EXPECT_TRUE(eventually_group_gone(leader));
  kill_leftovers(leader, grandchild);
}

TEST(CommandAgent, TimeoutStopsItTheSameWay) {
  TempDir dir;
  auto agent = make_agent({script("sleeper_tree.py"), dir.file("pids")});
  auto job = make_job();
  jobs::CancelToken token;
  RecordingSink sink;
  auto fut = start(agent, job, token, sink);
  auto [leader, grandchild] = wait_pids(dir.file("pids"));
  token.cancel(jobs::StopReason::timed_out);
  ASSERT_EQ(fut.wait_for(4s), std::future_status::ready);
  auto r = fut.get();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("timed out"), std::string::npos) << r.error;
  EXPECT_TRUE(eventually_group_gone(leader));
  EXPECT_TRUE(eventually_gone(grandchild));
  kill_leftovers(leader, grandchild);
}

TEST(CommandAgent, SigtermComesFirst) {
  TempDir dir;
  auto agent = make_agent({script("term_handler.sh"), dir.file("pids"), dir.file("mark")});
  jobs::CancelToken token;
  RecordingSink sink;
  auto job = make_job();
  auto fut = start(agent, job, token, sink);
  auto [leader, grandchild] = wait_pids(dir.file("pids"));
  token.cancel(jobs::StopReason::cancelled);
  ASSERT_EQ(fut.wait_for(4s), std::future_status::ready);
  std::ifstream mark(dir.file("mark"));
  std::string word;
  mark >> word;
  EXPECT_EQ(word, "term");
  EXPECT_TRUE(eventually_group_gone(leader));
  kill_leftovers(leader, grandchild);
}

TEST(CommandAgent, SigkillAfterTheGracePeriod) {
  for (auto [argv0, grace] : {std::pair{std::string("ignore_term.sh"), 600ms},
                              std::pair{std::string("sleeper_tree.py"), 300ms}}) {
    SCOPED_TRACE(argv0);
    TempDir dir;
    Strings argv = {script(argv0)};
    if (argv0 == "sleeper_tree.py") argv.push_back("--ignore-term");
    argv.push_back(dir.file("pids"));
    auto agent = make_agent(argv, grace);
    jobs::CancelToken token;
    RecordingSink sink;
    auto job = make_job();
    auto fut = start(agent, job, token, sink);
    auto [leader, grandchild] = wait_pids(dir.file("pids"));
    auto t0 = Clock::now();
    token.cancel(jobs::StopReason::cancelled);
    ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
    auto took = Clock::now() - t0;
    EXPECT_GE(took, grace - 20ms);  // it ignored SIGTERM: only SIGKILL after the grace
    EXPECT_LT(took, grace + 1500ms);
    EXPECT_FALSE(fut.get().ok);
    EXPECT_TRUE(gone(leader));
    EXPECT_TRUE(eventually_gone(grandchild));
    EXPECT_TRUE(eventually_group_gone(leader));
    kill_leftovers(leader, grandchild);
  }
}

TEST(CommandAgent, CancelledBeforeItStartsRunsNothing) {
  TempDir dir;
  auto agent = make_agent({script("sleeper_tree.py"), dir.file("pids")});
  jobs::CancelToken token;
  token.cancel(jobs::StopReason::cancelled);
  RecordingSink sink;
  auto t0 = Clock::now();
  auto r = agent.run(make_job(), token, sink);
  EXPECT_LT(Clock::now() - t0, 500ms);
  EXPECT_FALSE(r.ok);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(std::filesystem::exists(dir.file("pids")));
}

TEST(CommandAgent, GrandchildLeftBehindOnNormalExitIsKilled) {
  TempDir dir;
  auto agent = make_agent({script("sleeper_tree.py"), "--exit", dir.file("pids")});
  auto t0 = Clock::now();
  auto r = run(agent, make_job());
  // The grandchild holds stdout open; runq must not wait for it.
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, "leaving\n");
  auto [leader, grandchild] = wait_pids(dir.file("pids"), 1s);
  EXPECT_TRUE(gone(leader));
  EXPECT_TRUE(eventually_gone(grandchild));
  EXPECT_TRUE(eventually_group_gone(leader));
  kill_leftovers(leader, grandchild);
}

TEST(CommandAgent, ChildThatClosedItsPipesIsStillStopped) {
  TempDir dir;
  auto agent = make_agent({script("close_and_sleep.sh"), dir.file("pids")});
  jobs::CancelToken token;
  RecordingSink sink;
  auto job = make_job();
  auto fut = start(agent, job, token, sink);
  auto [leader, unused] = wait_pids(dir.file("pids"));
  std::this_thread::sleep_for(200ms);  // let it close its pipes
  EXPECT_EQ(fut.wait_for(0ms), std::future_status::timeout);
  token.cancel(jobs::StopReason::cancelled);
  ASSERT_EQ(fut.wait_for(4s), std::future_status::ready);
  EXPECT_FALSE(fut.get().ok);
  EXPECT_TRUE(eventually_group_gone(leader));
  kill_leftovers(leader, 0);
}

TEST(CommandAgent, ManyJobsAtOnce) {
  auto agent = make_agent({script("echo.sh")});
  std::vector<std::future<jobs::AgentResult>> futs;
  std::vector<jobs::Job> jobs_(8);
  std::vector<jobs::CancelToken> tokens(8);
  std::vector<RecordingSink> sinks(8);
  for (int i = 0; i < 8; ++i) {
    jobs_[i] = make_job("job number " + std::to_string(i));
    futs.push_back(start(agent, jobs_[i], tokens[i], sinks[i]));
  }
  for (int i = 0; i < 8; ++i) {
    auto r = futs[i].get();
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.output, "job number " + std::to_string(i));
  }
}

// ---------------------------------------------------------------------------------------
// Output limit
// ---------------------------------------------------------------------------------------

TEST(CommandAgent, OutputAtTheLimitIsFine) {
  auto agent = make_agent({script("big_output.py"), "1000"}, 5000ms, 1000);
  auto r = run(agent, make_job());
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output, std::string(1000, 'x'));
}

TEST(CommandAgent, OutputOverTheLimitFails) {
  auto agent = make_agent({script("big_output.py"), "1001"}, 5000ms, 1000);
  auto r = run(agent, make_job());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "Output exceeded the limit of 1000 bytes");
  EXPECT_TRUE(r.output.empty());
}

TEST(CommandAgent, OutputOverTheLimitStopsAProgramThatKeepsRunning) {
  auto agent = make_agent({script("big_output.py"), "5000000", "--then-sleep"}, 500ms, 100000);
  auto t0 = Clock::now();
  auto r = run(agent, make_job());
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "Output exceeded the limit of 100000 bytes");
}

TEST(CommandAgent, DefaultLimitIs16MiB) {
  {
    auto agent = make_agent({script("big_output.py"), std::to_string(16u << 20)});
    auto r = run(agent, make_job());
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.output.size(), 16u << 20);
  }
  {
    auto agent = make_agent({script("big_output.py"), std::to_string((16u << 20) + 1)});
    auto r = run(agent, make_job());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "Output exceeded the limit of 16777216 bytes");
  }
}
