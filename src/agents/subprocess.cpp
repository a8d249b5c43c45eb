#include "subprocess.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

#include <cerrno>

namespace runq::agents::detail {

SigpipeBlock::SigpipeBlock() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, &old_);
  blocked_here_ = !sigismember(&old_, SIGPIPE);
}

SigpipeBlock::~SigpipeBlock() {
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

ChildGuard::~ChildGuard() {
  if (reaped_) return;
  ::killpg(pid_, SIGKILL);
  reap();
}

int ChildGuard::reap() {
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  return status;
}

int spawn_in_own_group(const std::vector<std::string>& argv_strings,
                       const std::vector<std::string>& env_strings, int stdin_fd,
                       int stdout_fd, int stderr_fd, pid_t& pid) {
  // posix_spawn wants mutable char*; copies keep the callers' strings const.
  std::vector<std::string> env_copy = env_strings, argv_copy = argv_strings;
  std::vector<char*> envp;
  envp.reserve(env_copy.size() + 1);
  for (auto& s : env_copy) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  argv.reserve(argv_copy.size() + 1);
  for (auto& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string& program = argv_copy.front();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
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

  pid = -1;
  int rc = program.find('/') == std::string::npos
               ? ::posix_spawnp(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data())
               : ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc;
}

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

}  // namespace runq::agents::detail
