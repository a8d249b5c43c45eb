#pragma once
// Private to the PostgreSQL store: news from the other nodes. A thread of the store with
// a connection of its own LISTENs on three channels and hands what arrives to the
// service's handlers (Store::ClusterNews):
//   runq_jobs    job ids, comma-separated: their events, end, cancel or delete (publish,
//                the rescue);
//   runq_cancel  one job id: a node asks the node that runs it to cancel it;
//   runq_queued  a count: jobs were queued (insert, the rescue).
// NOTIFY is delivered only to connections listening at the time: after (re)connecting it
// tells the handlers to look at everything again, and asks the database which of this
// node's jobs have a cancel pending.
#include "connection.hpp"
#include "runq/jobs/store.hpp"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace runq::store::postgres {

class Listener {
 public:
  // `lease_id` gives this node's current lease (whose jobs' cancels it looks up).
  Listener(ConnSettings settings, std::function<std::string()> lease_id);
  ~Listener();  // stops and joins the thread
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Once it returns, no call of the old handlers is running or will start.
  void on_news(jobs::Store::ClusterNews news);

 private:
  void run();
  void listen();  // (re)connects, LISTENs, then catches up
  void dispatch(const std::vector<Connection::Notification>& ns);
  bool pause(std::chrono::milliseconds d);  // false: stopping

  ConnSettings settings_;  // before conn_: the connection refers to it
  std::function<std::string()> lease_id_;
  std::unique_ptr<Connection> conn_;  // the thread's only

  std::mutex news_mu_;  // held during a call of a handler
  jobs::Store::ClusterNews news_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;     // last
};

}  // namespace runq::store::postgres
