// FanoutHub: see fanout_hub.hpp.
#include "engine/redis/fanout_hub.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

namespace herald::engine::redis {

FanoutHub::FanoutHub(const RedisEngineOptions& options) {
  SubscriberOptions so;
  static_cast<LinkOptions&>(so) = static_cast<const LinkOptions&>(options.connection);
  so.sharded = options.sharded;
  so.ping_interval = options.pubsub_ping_interval;
  sub_ = std::make_unique<RedisSubscriber>(io_.get_executor(), options.url, so);
  sub_->on_message([this](std::string_view pubsub, std::string_view payload) {
    auto r = route(pubsub);
    if (!r) return;
    boost::asio::post(r->mailbox->executor, [mb = r->mailbox, channel = std::move(r->channel),
                                             payload = std::string(payload)] {
      if (!mb->alive.expired()) mb->store->pubsub_message(channel, payload);
    });
  });
  // Every confirmation, the reconnects' included (each reconnect confirms
  // every channel again: on_resubscribed adds nothing to it).
  sub_->on_subscribed([this](std::string_view pubsub) {
    auto r = route(pubsub);
    if (!r) return;
    boost::asio::post(r->mailbox->executor, [mb = r->mailbox, channel = std::move(r->channel)] {
      if (!mb->alive.expired()) mb->store->pubsub_subscribed(channel);
    });
  });
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

FanoutHub::~FanoutHub() {
  stop();
}

void FanoutHub::stop() {
  if (!thread_.joinable()) return;
  boost::asio::post(io_, [this] {
    sub_.reset();
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
  if (!sub_) return;
  bool wanted = false;
  {
    std::lock_guard lock(mu_);
    wanted = routes_.contains(pubsub);
  }
  if (wanted)
    sub_->subscribe(pubsub);
  else
    sub_->unsubscribe(pubsub);
}

}  // namespace herald::engine::redis
