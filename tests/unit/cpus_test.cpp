// util::usable_cpus and its parts: the affinity mask capped by the cgroup's CPU quota, read
// from real files laid out as /proc/self/cgroup and /sys/fs/cgroup are (v1 and v2).
#include "runq/util/cpus.hpp"

#include <gtest/gtest.h>

#include <sched.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace fs = std::filesystem;
using runq::util::cgroup_cpu_quota;
using runq::util::cpus_within_quota;
using runq::util::parse_cpu_max;

namespace {

class FakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("runq-cpus-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& path, const std::string& text) {
    const fs::path p = root_ / path.substr(1);
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string root() const { return root_.string(); }
  fs::path root_;
};

}  // namespace

TEST(CpuMax, Parsed) {
  EXPECT_EQ(parse_cpu_max("200000 100000\n"), 2.0);
  EXPECT_EQ(parse_cpu_max("150000 100000"), 1.5);
  EXPECT_EQ(parse_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_EQ(parse_cpu_max(""), std::nullopt);
  EXPECT_EQ(parse_cpu_max("garbage"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("0 100000"), std::nullopt);
}

TEST(CpusWithinQuota, RoundsUpAndNeverExceedsTheMask) {
  EXPECT_EQ(cpus_within_quota(8, std::nullopt), 8);
  EXPECT_EQ(cpus_within_quota(8, 2.0), 2);
  EXPECT_EQ(cpus_within_quota(8, 1.5), 2);
  EXPECT_EQ(cpus_within_quota(8, 0.5), 1);
  EXPECT_EQ(cpus_within_quota(2, 16.0), 2);
  EXPECT_EQ(cpus_within_quota(0, std::nullopt), 1);
}

TEST_F(FakeRoot, CgroupV2InTheProcessesOwnGroup) {
  write("/sys/fs/cgroup/system.slice/runq.service/cpu.max", "300000 100000\n");
  write("/sys/fs/cgroup/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_quota(root(), "0::/system.slice/runq.service\n"), 3.0);
}

TEST_F(FakeRoot, CgroupV2InAContainerSeesItsGroupAtTheRoot) {
  write("/sys/fs/cgroup/cpu.max", "200000 100000\n");
  EXPECT_EQ(cgroup_cpu_quota(root(), "0::/\n"), 2.0);
  // The path names the host's view, which the container does not have.
  EXPECT_EQ(cgroup_cpu_quota(root(), "0::/docker/abc\n"), 2.0);
}

TEST_F(FakeRoot, CgroupV2WithoutQuota) {
  write("/sys/fs/cgroup/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_quota(root(), "0::/\n"), std::nullopt);
  EXPECT_EQ(cgroup_cpu_quota(root() + "/nowhere", "0::/\n"), std::nullopt);
}

TEST_F(FakeRoot, CgroupV1CpuController) {
  write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  const std::string cgroup = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n";
  EXPECT_EQ(cgroup_cpu_quota(root(), cgroup), 1.5);
}

TEST_F(FakeRoot, CgroupV1NoQuotaIsMinusOne) {
  write("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
  write("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_quota(root(), "1:cpu:/\n0::/\n"), std::nullopt);
}

// This process: at most its affinity mask, at least 1.
TEST(UsableCpus, AtMostTheAffinityMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  const int n = runq::util::usable_cpus();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, CPU_COUNT(&set));
  // Pinned to one CPU: one.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) {
      CPU_SET(c, &one);
      break;
    }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  EXPECT_EQ(runq::util::usable_cpus(), 1);
  sched_setaffinity(0, sizeof set, &set);
}
