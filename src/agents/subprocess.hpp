#pragma once
// The child process of a command job: file descriptors, spawning into a process group of
// its own (so cancel and timeout can kill everything it started), SIGPIPE handling, and
// reaping. POSIX only; no knowledge of jobs.
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace runq::agents::detail {

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
  SigpipeBlock();
  ~SigpipeBlock();
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  bool got_epipe = false;

 private:
  sigset_t old_;
  bool blocked_here_ = false;
};

// Makes sure the child is gone and reaped whatever happens (also on exceptions).
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard();
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  int reap();  // waits for the child; its wait status

 private:
  pid_t pid_;
  bool reaped_ = false;
};

// Starts argv[0] (looked up in PATH unless it contains a '/') with `env` as its whole
// environment, stdin/stdout/stderr on the given descriptors and no other descriptor open,
// in a process group of its own (pgid = pid), with an empty signal mask and default
// signal dispositions. Returns 0 and sets `pid`, or an errno value.
int spawn_in_own_group(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       int stdin_fd, int stdout_fd, int stderr_fd, pid_t& pid);

bool set_nonblocking(int fd);
std::string errno_text(int err);
std::string signal_name(int sig);  // "SIGKILL", "SIGRTMIN+3"

}  // namespace runq::agents::detail
