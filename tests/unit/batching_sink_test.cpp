// Tests of the sink that writes the access log in batches: order kept, any other record
// writes the pending lines first, a batch goes out after the interval, at the size
// threshold, at stop and at destruction, and all of it through a full non-blocking pipe.
#include "runq/util/batching_sink.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using runq::util::log::BatchingSink;
using namespace std::chrono_literals;

namespace {

constexpr char kAccess[] = "access";
constexpr auto kNever = std::chrono::hours(1);  // an interval that never comes in a test

// A temporary file as the sink's fd, and the two loggers of a server on one sink: the
// access log (batched) and the default one. Lines are "%v\n": a record's bytes are known.
class Fixture {
 public:
  explicit Fixture(std::chrono::milliseconds interval = kNever,
                   std::size_t batch_bytes = BatchingSink::kBatchBytes) {
    char path[] = "/tmp/runq-batching-sink-XXXXXX";
    fd_ = mkstemp(path);
    EXPECT_GE(fd_, 0);
    path_ = path;
    sink = std::make_shared<BatchingSink>(fd_, kAccess, interval, batch_bytes);
    sink->set_pattern("%v");
    access = std::make_shared<spdlog::logger>(kAccess, sink);
    other = std::make_shared<spdlog::logger>("runq", sink);
  }
  ~Fixture() {
    access.reset();
    other.reset();
    sink.reset();
    close(fd_);
    unlink(path_.c_str());
  }
  // What was written so far.
  std::string written() const {
    std::string out;
    char buf[65536];
    for (off_t at = 0;;) {
      const ssize_t n = pread(fd_, buf, sizeof buf, at);
      if (n <= 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
      at += n;
    }
  }
  // Polls (bounded) until written() is `want`; returns the last content seen.
  std::string wait_for(const std::string& want, std::chrono::seconds limit = 10s) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::string got = written();
    while (got != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
      got = written();
    }
    return got;
  }

  std::shared_ptr<BatchingSink> sink;
  std::shared_ptr<spdlog::logger> access, other;

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace

TEST(BatchingSink, AnotherRecordWritesThePendingLinesFirst) {
  Fixture f;
  f.access->info("a1");
  f.access->info("a2");
  EXPECT_EQ(f.written(), "");  // batched
  f.other->warn("w1");
  EXPECT_EQ(f.written(), "a1\na2\nw1\n");
  f.other->error("w2");  // nothing pending: at once too
  EXPECT_EQ(f.written(), "a1\na2\nw1\nw2\n");
  f.access->info("a3");
  EXPECT_EQ(f.written(), "a1\na2\nw1\nw2\n");
  f.access->flush();  // a logger's flush writes the batch
  EXPECT_EQ(f.written(), "a1\na2\nw1\nw2\na3\n");
}

TEST(BatchingSink, BatchWrittenAfterTheIntervalWithoutAnotherRecord) {
  Fixture f(50ms);
  for (int round = 0; round < 3; ++round) {  // each time from a flusher with nothing to do
    std::string want = f.written();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) {
      const std::string line = "r" + std::to_string(round) + "-" + std::to_string(i);
      f.access->info(line);
      want += line + "\n";
    }
    EXPECT_EQ(f.wait_for(want), want);
    // Never before the interval (the deadline counts from the first line, after `start`).
    EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  }
}

TEST(BatchingSink, BatchWrittenAtTheSizeThreshold) {
  Fixture f;  // kBatchBytes
  const std::string payload(99, 'x');  // 100 bytes a line
  std::size_t bytes = 0;
  int lines = 0;
  while (bytes + 100 < BatchingSink::kBatchBytes) {
    f.access->info(payload);
    bytes += 100;
    ++lines;
  }
  EXPECT_EQ(f.written(), "");
  f.access->info(payload);  // passes kBatchBytes: written with all before it
  ++lines;
  EXPECT_EQ(f.written().size(), static_cast<std::size_t>(lines) * 100);
  EXPECT_GE(f.written().size(), BatchingSink::kBatchBytes);
  f.access->info("next");
  EXPECT_EQ(f.written().size(), static_cast<std::size_t>(lines) * 100);  // a new batch
}

TEST(BatchingSink, PendingLinesWrittenAtStopAndDestruction) {
  {
    Fixture f;
    f.access->info("a1");
    f.access->info("a2");
    f.sink->stop();
    EXPECT_EQ(f.written(), "a1\na2\n");
    f.access->info("a3");  // after stop(): at once
    EXPECT_EQ(f.written(), "a1\na2\na3\n");
  }
  char path[] = "/tmp/runq-batching-sink-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  {
    auto sink = std::make_shared<BatchingSink>(fd, kAccess, kNever);
    sink->set_pattern("%v");
    spdlog::logger access(kAccess, sink);
    sink.reset();
    access.info("last");
  }  // the logger holds the last reference
  char buf[64] = {};
  EXPECT_EQ(pread(fd, buf, sizeof buf, 0), 5);
  EXPECT_STREQ(buf, "last\n");
  close(fd);
  unlink(path);
}

TEST(BatchingSink, ConcurrentLoggersKeepEachThreadsOrder) {
  Fixture f(1ms, 4096);  // batches written by the flusher and by the loggers alike
  constexpr int kThreads = 4, kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&f, t] {
      for (int i = 0; i < kLines; ++i) {
        const std::string line = std::to_string(t) + " " + std::to_string(i);
        if (i % 100 == 99) f.other->warn(line);
        else f.access->info(line);
      }
    });
  for (auto& t : threads) t.join();
  f.sink->stop();
  std::vector<int> next(kThreads, 0);
  const std::string all = f.written();
  std::size_t at = 0, lines = 0;
  for (std::size_t end; (end = all.find('\n', at)) != std::string::npos; at = end + 1, ++lines) {
    const int t = std::atoi(all.c_str() + at);
    const int i = std::atoi(all.c_str() + all.find(' ', at) + 1);
    ASSERT_EQ(i, next[t]) << "thread " << t;
    ++next[t];
  }
  EXPECT_EQ(at, all.size());
  EXPECT_EQ(lines, static_cast<std::size_t>(kThreads * kLines));
}

// A full pipe whose write end is non-blocking: short writes and EAGAIN until the reader
// catches up; every byte arrives, in order.
TEST(BatchingSink, ShortWritesToAFullNonBlockingPipe) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK), 0);
  fcntl(fds[1], F_SETPIPE_SZ, 4096);  // the smallest pipe (a page)
  std::string got;
  std::thread reader([&] {
    char buf[1000];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) != 0;) {
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
      std::this_thread::sleep_for(100us);  // slower than the writer
    }
  });
  std::string want;
  {
    auto sink = std::make_shared<BatchingSink>(fds[1], kAccess, kNever);
    sink->set_pattern("%v");
    spdlog::logger access(kAccess, sink), other("runq", sink);
    for (int i = 0; i < 5000; ++i) {
      const std::string line = "line " + std::to_string(i) + std::string(i % 50, '.');
      if (i % 1000 == 999) other.warn(line);
      else access.info(line);
      want += line + "\n";
    }
  }  // destroyed: the rest written
  close(fds[1]);
  reader.join();
  close(fds[0]);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
}
