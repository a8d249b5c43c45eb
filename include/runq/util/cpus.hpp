#pragma once
// How many CPUs this process may use: what a default thread count should follow. Not the
// host's count (std::thread::hardware_concurrency): a process pinned with taskset, or a
// container given 2 CPUs of a 64-core host, gets far less, and threads beyond it only
// take turns on the same cores.
#include <optional>
#include <string>
#include <string_view>

namespace runq::util {

// CPUs in this thread's affinity mask, capped by the cgroup CPU quota (rounded up), at
// least 1. Reads /proc/self/cgroup and /sys/fs/cgroup.
int usable_cpus();

// The parts, for tests (`root` stands for "/": a tree of fake files).
// The CPU quota of this process's cgroup (v2 cpu.max, or v1 cpu.cfs_quota_us over
// cpu.cfs_period_us), in CPUs; nullopt when there is none ("max", -1) or none is found.
// `proc_self_cgroup` is the text of /proc/self/cgroup.
std::optional<double> cgroup_cpu_quota(const std::string& root, std::string_view proc_self_cgroup);
// "150000 100000" -> 1.5; "max 100000" -> nullopt.
std::optional<double> parse_cpu_max(std::string_view text);
// The count the quota leaves of `affinity_cpus`: ceil(quota), at most affinity_cpus, >= 1.
int cpus_within_quota(int affinity_cpus, std::optional<double> quota);

}  // namespace runq::util
