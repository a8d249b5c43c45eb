#include "runq/api/status_cache.hpp"

namespace runq::api {

std::optional<std::string> StatusCache::find(const std::string& id,
                                             const std::optional<std::string>& caller,
                                             std::uint64_t generation) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.generation != generation) {
    entries_.erase(it);
    return std::nullopt;
  }
  if (caller && it->second.owner != *caller) return std::nullopt;
  return it->second.body;
}

void StatusCache::put(const std::string& id, const std::string& owner, const std::string& body,
                      std::uint64_t generation) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_) entries_.clear();
  entries_.insert_or_assign(id, Entry{owner, body, generation});
}

std::size_t StatusCache::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace runq::api
