#pragma once
// Private to the PostgreSQL store: the node's connections, lent to one call at a time.
#include "connection.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace runq::store::postgres {

class Pool {
 public:
  // One connection lent out; back to the pool (with no transaction left open) when it
  // goes out of scope.
  class Lease {
   public:
    Lease(Pool& pool, Connection& c) : pool_(&pool), c_(&c) {}
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), c_(o.c_) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (!pool_) return;
      c_->rollback_if_open();
      pool_->give_back(*c_);
    }
    Connection& operator*() const { return *c_; }
    Connection* operator->() const { return c_; }

   private:
    Pool* pool_;
    Connection* c_;
  };

  void add(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mu_);
    free_.push_back(c.get());
    all_.push_back(std::move(c));
  }
  std::size_t size() const { return all_.size(); }

  // A free connection; waits for one if all are lent out.
  Lease take() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    Connection* c = free_.back();  // the most recently used: its socket is warm
    free_.pop_back();
    return Lease(*this, *c);
  }

 private:
  void give_back(Connection& c) {
    {
      std::lock_guard lock(mu_);
      free_.push_back(&c);
    }
    cv_.notify_one();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> all_;
  std::vector<Connection*> free_;  // guarded by mu_
};

}  // namespace runq::store::postgres
