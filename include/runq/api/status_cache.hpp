#pragma once
// Rendered status objects of finished jobs, so repeated polls of a finished job are
// answered from memory like those of a running one (whose live view is in memory too)
// instead of reading the store. A finished job's status object never changes; it only
// goes away, by DELETE or the retention sweep. An entry is therefore valid only for the
// removal generation it was made in (JobService::removals()): any removal makes every
// older entry stale. (One node's removals; a store shared by several nodes needs a
// removal feed before this cache may serve it.)
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace runq::api {

class StatusCache {
 public:
  // At most `capacity` entries; when full, the cache starts over empty.
  explicit StatusCache(std::size_t capacity) : capacity_(capacity) {}

  // The body for job `id` if cached in `generation`, and `caller` may see it (no caller:
  // keys are off). nullopt otherwise: ask the store.
  std::optional<std::string> find(const std::string& id, const std::optional<std::string>& caller,
                                  std::uint64_t generation);

  // Remembers the body of finished job `id` of `owner`, read in `generation` — which
  // must have been taken before the store was read.
  void put(const std::string& id, const std::string& owner, const std::string& body,
           std::uint64_t generation);

  std::size_t size();

 private:
  struct Entry {
    std::string owner;
    std::string body;
    std::uint64_t generation = 0;
  };
  const std::size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace runq::api
