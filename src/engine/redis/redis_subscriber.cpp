// The pub/sub connection (redis_subscriber.hpp). `server_` mirrors what this
// connection asked Redis for, so a turn's batch is computed from the
// channels touched in that turn only: subscribe + unsubscribe of one channel
// in one turn sends nothing.
#include "engine/redis/redis_subscriber.hpp"

#include <boost/asio/post.hpp>

#include "engine/redis/cluster_slots.hpp"

namespace herald::engine::redis {

RedisSubscriber::RedisSubscriber(boost::asio::any_io_executor executor, RedisUrl url,
                                 SubscriberOptions options)
    : executor_(executor),
      options_(options),
      link_(std::make_shared<Link>(executor, std::move(url),
                                   static_cast<const LinkOptions&>(options),
                                   static_cast<LinkHandler&>(*this))),
      ping_timer_(executor) {
  link_->start();
  arm_ping();
}

void RedisSubscriber::arm_ping() {
  if (options_.ping_interval.count() <= 0) return;
  ping_timer_.expires_after(options_.ping_interval);
  ping_timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    if (link_->up()) {
      if (options_.sharded) asked_.emplace_back();
      append_command(link_->out(), {"PING"});
      link_->expect(1);
      link_->flush_soon();
    }
    arm_ping();
  });
}

RedisSubscriber::~RedisSubscriber() {
  close();
}

void RedisSubscriber::close() {
  ping_timer_.cancel();
  link_->close();
}

void RedisSubscriber::subscribe(std::string_view channel) {
  if (channels_.emplace(channel).second) touched(channel);
}

void RedisSubscriber::unsubscribe(std::string_view channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  channels_.erase(it);
  touched(channel);
}

void RedisSubscriber::touched(std::string_view channel) {
  dirty_.emplace(channel);
  if (flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(executor_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) flush();
  });
}

void RedisSubscriber::flush() {
  flush_posted_ = false;
  if (!link_->up()) {  // link_up() subscribes the whole set
    dirty_.clear();
    return;
  }
  std::vector<std::string_view> subscribe, unsubscribe;
  for (const std::string& channel : dirty_) {
    bool wanted = channels_.contains(channel);
    bool asked = server_.contains(channel);
    if (wanted && !asked) subscribe.push_back(channel);
    if (!wanted && asked) unsubscribe.push_back(channel);
  }
  send(options_.sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", unsubscribe);
  send(options_.sharded ? "SSUBSCRIBE" : "SUBSCRIBE", subscribe);
  for (std::string_view channel : unsubscribe) server_.erase(channel);
  for (std::string_view channel : subscribe) server_.emplace(channel);
  dirty_.clear();  // last: the views above point into it
}

void RedisSubscriber::send(const char* command, const std::vector<std::string_view>& channels) {
  if (channels.empty()) return;
  std::string& out = link_->out();
  if (options_.sharded) {
    const bool unsubscribe = std::string_view(command) == "SUNSUBSCRIBE";
    for (std::string_view channel : channels) {
      append_command(out, {command, channel});
      asked_.emplace_back(channel);
      if (unsubscribe) ++unsubscribing_[std::string(channel)];
    }
  } else {
    std::vector<std::string_view> args;
    args.reserve(channels.size() + 1);
    args.push_back(command);
    args.insert(args.end(), channels.begin(), channels.end());
    append_command(out, args);
  }
  link_->expect(channels.size());  // one confirmation per channel
  link_->flush_soon();
}

void RedisSubscriber::link_up() {
  was_up_ = true;
  std::weak_ptr<int> alive = alive_;
  if (on_state_) on_state_(true);
  if (alive.expired() || !link_->up()) return;
  server_ = channels_;
  dirty_.clear();
  std::vector<std::string_view> all(channels_.begin(), channels_.end());
  resubscribing_ = true;
  resubscribe_left_ = all.size();
  send(options_.sharded ? "SSUBSCRIBE" : "SUBSCRIBE", all);
  if (resubscribe_left_ == 0) {
    resubscribing_ = false;
    if (on_resubscribed_) on_resubscribed_();
  }
}

void RedisSubscriber::link_reply(Reply&& reply) {
  if (reply.is_error()) {
    if (options_.sharded && on_moved_ && !asked_.empty() && !asked_.front().empty() &&
        (parse_redirect(reply.str) || is_cluster_retry(reply.str))) {
      const std::string channel = std::move(asked_.front());
      asked_.pop_front();
      link_->answered();
      server_.erase(channel);
      if (auto it = unsubscribing_.find(channel); it != unsubscribing_.end() && --it->second == 0)
        unsubscribing_.erase(it);
      std::weak_ptr<int> alive = alive_;
      if (channels_.contains(channel)) on_moved_(channel, reply.str);
      if (alive.expired()) return;
      if (resubscribing_ && --resubscribe_left_ == 0) {
        resubscribing_ = false;
        if (on_resubscribed_) on_resubscribed_();
      }
      return;
    }
    link_->fail("pub/sub command failed: " + reply.str);
    return;
  }
  // PING's answer: +PONG before any SUBSCRIBE, ["pong", ""] in pub/sub mode.
  if ((reply.kind == Reply::Kind::status && reply.str == "PONG") ||
      (reply.kind == Reply::Kind::array && reply.elements.size() == 2 &&
       reply.elements[0].kind == Reply::Kind::string && reply.elements[0].str == "pong")) {
    if (!asked_.empty()) asked_.pop_front();
    link_->answered();
    return;
  }
  if (reply.kind != Reply::Kind::array || reply.elements.size() != 3 ||
      reply.elements[0].kind != Reply::Kind::string) {
    link_->fail("unexpected pub/sub reply " + to_string(reply));
    return;
  }
  const std::string& kind = reply.elements[0].str;
  const std::string& channel = reply.elements[1].str;
  if (kind == "message" || kind == "smessage") {
    // Not for channels dropped since: their UNSUBSCRIBE may still be on its way.
    if (on_message_ && channels_.contains(channel)) on_message_(channel, reply.elements[2].str);
    return;
  }
  if (kind != "subscribe" && kind != "unsubscribe" && kind != "ssubscribe" &&
      kind != "sunsubscribe") {
    link_->fail("unexpected pub/sub reply " + to_string(reply));
    return;
  }
  if (kind == "sunsubscribe") {
    auto it = unsubscribing_.find(channel);
    if (it == unsubscribing_.end()) {
      // Not an answer: Redis dropped the subscription (the slot moved).
      server_.erase(channel);
      if (on_moved_ && channels_.contains(channel)) on_moved_(channel, "slot moved");
      return;
    }
    if (--it->second == 0) unsubscribing_.erase(it);
  }
  if (options_.sharded && !asked_.empty()) asked_.pop_front();
  link_->answered();
  if ((kind == "subscribe" || kind == "ssubscribe") && on_subscribed_ &&
      channels_.contains(channel)) {
    std::weak_ptr<int> alive = alive_;
    on_subscribed_(channel);
    if (alive.expired()) return;
  }
  if (resubscribing_ && --resubscribe_left_ == 0) {
    resubscribing_ = false;
    if (on_resubscribed_) on_resubscribed_();
  }
}

void RedisSubscriber::link_down(const std::string&) {
  server_.clear();
  asked_.clear();
  unsubscribing_.clear();
  resubscribing_ = false;
  if (was_up_) {
    was_up_ = false;
    if (on_state_) on_state_(false);
  }
}

}  // namespace herald::engine::redis
