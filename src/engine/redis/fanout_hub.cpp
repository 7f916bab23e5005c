// FanoutHub: see fanout_hub.hpp.
#include "engine/redis/fanout_hub.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <vector>

namespace herald::engine::redis {

FanoutHub::FanoutHub(const RedisEngineOptions& options, const SlotMap* slots) : options_(options) {
  if (slots) {
    router_ = std::make_unique<ClusterRouter>(io_.get_executor(), options.url, options.connection,
                                              *slots);
    router_->on_map([this] { rebalance(); });
    refresh_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    arm_refresh();
  } else {
    sub_ = make_subscriber(options.url);
  }
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

std::unique_ptr<RedisSubscriber> FanoutHub::make_subscriber(const RedisUrl& url) {
  SubscriberOptions so;
  static_cast<LinkOptions&>(so) = static_cast<const LinkOptions&>(options_.connection);
  so.sharded = options_.sharded || options_.cluster;
  so.ping_interval = options_.pubsub_ping_interval;
  auto sub = std::make_unique<RedisSubscriber>(io_.get_executor(), url, so);
  sub->on_message([this](std::string_view pubsub, std::string_view payload) {
    auto r = route(pubsub);
    if (!r) return;
    boost::asio::post(r->mailbox->executor, [mb = r->mailbox, channel = std::move(r->channel),
                                             payload = std::string(payload)] {
      if (!mb->alive.expired()) mb->store->pubsub_message(channel, payload);
    });
  });
  // Every confirmation, the reconnects' included (each reconnect confirms
  // every channel again: on_resubscribed adds nothing to it).
  sub->on_subscribed([this](std::string_view pubsub) {
    auto r = route(pubsub);
    if (!r) return;
    boost::asio::post(r->mailbox->executor, [mb = r->mailbox, channel = std::move(r->channel)] {
      if (!mb->alive.expired()) mb->store->pubsub_subscribed(channel);
    });
  });
  if (router_) {
    const std::string node = url.host + ":" + std::to_string(url.port);
    sub->on_moved([this, node](std::string_view pubsub, std::string_view why) {
      moved(node, std::string(pubsub), why);
    });
    sub->on_state([this](bool up) {
      if (!up) router_->refresh();  // maybe a failover
    });
  }
  return sub;
}

FanoutHub::~FanoutHub() {
  stop();
}

void FanoutHub::arm_refresh() {
  refresh_timer_->expires_after(kMapRefresh);
  refresh_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec || !router_) return;
    router_->refresh();
    arm_refresh();
  });
}

void FanoutHub::stop() {
  if (!thread_.joinable()) return;
  boost::asio::post(io_, [this] {
    sub_.reset();
    subs_.clear();
    router_.reset();
    refresh_timer_.reset();
    io_.stop();
  });
  thread_.join();
}

std::optional<FanoutHub::Route> FanoutHub::route(std::string_view pubsub) {
  std::lock_guard lock(mu_);
  auto it = routes_.find(std::string(pubsub));
  if (it == routes_.end()) return std::nullopt;
  return it->second;
}

void FanoutHub::watch(const std::string& pubsub, const std::string& channel,
                      const std::shared_ptr<Mailbox>& mailbox) {
  {
    std::lock_guard lock(mu_);
    routes_[pubsub] = Route{mailbox, channel};
  }
  boost::asio::post(io_, [this, pubsub] { sync(pubsub); });
}

void FanoutHub::unwatch(const std::string& pubsub, const std::shared_ptr<Mailbox>& mailbox) {
  {
    std::lock_guard lock(mu_);
    auto it = routes_.find(pubsub);
    if (it == routes_.end() || it->second.mailbox != mailbox) return;
    routes_.erase(it);
  }
  boost::asio::post(io_, [this, pubsub] { sync(pubsub); });
}

// Whatever the order the posts of several watch()/unwatch() run in, the
// subscription ends up as the routes are.
void FanoutHub::sync(const std::string& pubsub) {
  bool wanted = false;
  {
    std::lock_guard lock(mu_);
    wanted = routes_.contains(pubsub);
  }
  if (router_) {
    auto placed = placed_.find(pubsub);
    if (!wanted) {
      if (placed != placed_.end()) {
        if (auto it = subs_.find(placed->second); it != subs_.end())
          it->second->unsubscribe(pubsub);
        placed_.erase(placed);
      }
      lost_.erase(pubsub);
      return;
    }
    const ClusterNode* master = router_->master(key_slot(pubsub));
    const std::string node =
        master ? master->name() : options_.url.host + ":" + std::to_string(options_.url.port);
    if (placed != placed_.end()) {
      if (placed->second == node) return;
      if (auto it = subs_.find(placed->second); it != subs_.end()) it->second->unsubscribe(pubsub);
    }
    placed_[pubsub] = node;
    subscriber_for(node).subscribe(pubsub);
    return;
  }
  if (!sub_) return;
  if (wanted)
    sub_->subscribe(pubsub);
  else
    sub_->unsubscribe(pubsub);
}

RedisSubscriber& FanoutHub::subscriber_for(const std::string& node) {
  auto& sub = subs_[node];
  if (!sub) {
    const size_t colon = node.rfind(':');
    sub = make_subscriber(node_url(
        options_.url, ClusterNode{node.substr(0, colon),
                                  static_cast<uint16_t>(std::stoul(node.substr(colon + 1)))}));
  }
  return *sub;
}

// From a subscriber's hook (so nothing is destroyed here): the map is read
// again, and rebalance() moves what must move once it is.
void FanoutHub::moved(const std::string& node, const std::string& pubsub, std::string_view why) {
  lost_[pubsub] = node;
  if (auto redirect = parse_redirect(why); redirect && !redirect->ask)
    router_->moved(*redirect);  // reads the map too
  else
    router_->refresh();
}

// After a map read: every subscribed channel whose master changed, or
// whose subscriber lost it, goes to its master now. A subscriber that lost
// any is replaced (its Redis-side state is unknown: a channel Redis dropped
// is still in its set), so every channel it kept is subscribed again too.
void FanoutHub::rebalance() {
  std::unordered_map<std::string, bool> replace;  // node -> its subscriber goes
  for (const auto& [pubsub, node] : placed_) {
    const ClusterNode* master = router_->master(key_slot(pubsub));
    if (lost_.contains(pubsub) || !master || master->name() != node) replace[node] = true;
  }
  lost_.clear();
  std::vector<std::string> again;
  for (const auto& [node, _] : replace) {
    auto it = subs_.find(node);
    if (it == subs_.end()) continue;
    for (auto& [pubsub, where] : placed_)
      if (where == node) again.push_back(pubsub);
    subs_.erase(it);
  }
  for (const std::string& pubsub : again) {
    placed_.erase(pubsub);
    sync(pubsub);
  }
}

}  // namespace herald::engine::redis
