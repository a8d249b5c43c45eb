#include "listener.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <charconv>

namespace runq::store::postgres {

namespace {
using std::chrono::milliseconds;
constexpr milliseconds kPollInterval{200};  // how soon a stop is noticed
constexpr milliseconds kRetryInterval{250};  // between two tries to reconnect
}  // namespace

Listener::Listener(ConnSettings settings, std::function<std::string()> lease_id)
    : settings_(std::move(settings)), lease_id_(std::move(lease_id)) {
  conn_ = std::make_unique<Connection>(settings_);
  thread_ = std::thread([this] { run(); });
}

Listener::~Listener() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Listener::on_news(jobs::Store::ClusterNews news) {
  std::lock_guard lock(news_mu_);
  news_ = std::move(news);
}

bool Listener::pause(milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void Listener::listen() {
  conn_->ensure_open();
  conn_->exec("LISTEN runq_jobs; LISTEN runq_cancel; LISTEN runq_queued");
  // What was missed while not listening (nothing, the first time: no stream, no job).
  Result cancels = conn_->run(s_cancels_for, Params().add(lease_id_()));
  std::lock_guard lock(news_mu_);
  if (news_.jobs_changed) news_.jobs_changed({});
  if (news_.jobs_queued) news_.jobs_queued(1);
  if (news_.cancel_requested)
    for (int i = 0; i < cancels.rows(); ++i) news_.cancel_requested(cancels.text(i, 0));
}

void Listener::run() {
  bool listening = false;
  bool failing = false;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    try {
      if (!listening) {
        listen();
        listening = true;
        if (failing) spdlog::warn("listening to the other nodes again ({})", settings_.where);
        failing = false;
      }
      pollfd p{conn_->socket(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kPollInterval.count())) > 0)
        dispatch(conn_->notifications());
    } catch (const std::exception& e) {
      if (!failing)
        spdlog::warn("cannot listen to the other nodes (retrying): {}", e.what());
      failing = true;
      listening = false;
      if (!pause(kRetryInterval)) return;
    }
  }
}

void Listener::dispatch(const std::vector<Connection::Notification>& ns) {
  std::vector<std::string> changed;
  std::vector<std::string> cancels;
  int queued = 0;
  for (const auto& n : ns) {
    if (n.channel == "runq_jobs") {
      std::string_view rest = n.payload;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        if (comma != 0) changed.emplace_back(rest.substr(0, comma));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (n.channel == "runq_cancel") {
      cancels.push_back(n.payload);
    } else if (n.channel == "runq_queued") {
      int k = 0;
      std::from_chars(n.payload.data(), n.payload.data() + n.payload.size(), k);
      queued += std::max(k, 1);
    }
  }
  std::lock_guard lock(news_mu_);
  if (!changed.empty() && news_.jobs_changed) news_.jobs_changed(changed);
  if (news_.cancel_requested)
    for (const auto& id : cancels) news_.cancel_requested(id);
  if (queued > 0 && news_.jobs_queued) news_.jobs_queued(queued);
}

}  // namespace runq::store::postgres
