#include "runq/util/cpus.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace runq::util {

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<double> to_number(std::string_view text) {
  try {
    std::size_t used = 0;
    const double v = std::stod(std::string(text), &used);
    return used > 0 ? std::optional<double>(v) : std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
}

// The cgroup's own directory first (a host's view), then the mount's root (a container
// sees its own cgroup there).
std::vector<std::string> candidates(const std::string& mount, const std::string& path) {
  std::vector<std::string> dirs;
  if (!path.empty() && path != "/") dirs.push_back(mount + path);
  dirs.push_back(mount);
  return dirs;
}

}  // namespace

std::optional<double> parse_cpu_max(std::string_view text) {
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view quota = text.substr(0, space);
  if (quota == "max") return std::nullopt;
  const auto q = to_number(quota);
  const auto p = to_number(text.substr(space + 1));
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
  return *q / *p;
}

std::optional<double> cgroup_cpu_quota(const std::string& root, std::string_view proc_self_cgroup) {
  std::istringstream lines{std::string(proc_self_cgroup)};
  std::string line;
  while (std::getline(lines, line)) {
    // "hierarchy-id:controllers:path"
    const auto a = line.find(':');
    const auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (controllers.empty()) {  // v2: one unified hierarchy
      for (const auto& dir : candidates(root + "/sys/fs/cgroup", path))
        if (auto text = read_file(dir + "/cpu.max")) return parse_cpu_max(*text);
      continue;
    }
    std::istringstream names(controllers);
    for (std::string name; std::getline(names, name, ',');) {
      if (name != "cpu") continue;  // v1: the cpu controller, mounted as "cpu" or "cpu,cpuacct"
      for (const std::string& mount :
           {std::string("/sys/fs/cgroup/cpu"), "/sys/fs/cgroup/" + controllers}) {
        for (const auto& dir : candidates(root + mount, path)) {
          const auto quota = read_file(dir + "/cpu.cfs_quota_us");
          const auto period = read_file(dir + "/cpu.cfs_period_us");
          if (!quota || !period) continue;
          const auto q = to_number(*quota);
          const auto p = to_number(*period);
          if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;  // -1: no quota
          return *q / *p;
        }
      }
    }
  }
  return std::nullopt;
}

int cpus_within_quota(int affinity_cpus, std::optional<double> quota) {
  int n = std::max(1, affinity_cpus);
  if (quota) n = std::min(n, static_cast<int>(std::ceil(*quota - 1e-9)));
  return std::max(1, n);
}

int usable_cpus() {
  int affinity = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) affinity = CPU_COUNT(&set);
  if (affinity <= 0) affinity = static_cast<int>(std::thread::hardware_concurrency());
  const auto cgroup = read_file("/proc/self/cgroup");
  return cpus_within_quota(affinity, cgroup ? cgroup_cpu_quota("", *cgroup) : std::nullopt);
}

}  // namespace runq::util
