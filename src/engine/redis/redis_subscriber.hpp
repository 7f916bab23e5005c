// RedisSubscriber: the pub/sub connection of one node, on one executor
// (single-threaded use: every call and every callback on its thread).
//
// It holds the set of channels the node wants. subscribe() and
// unsubscribe() change that set at once (on_message is only called for
// channels in it) and the changes of one loop turn go to Redis as one
// SUBSCRIBE and one UNSUBSCRIBE with many channels. While the connection is
// down, changes only touch the set; each (re)connect subscribes the whole
// set, and once Redis has confirmed every channel, on_resubscribed() runs
// (after the first connection too): pub/sub messages published while the
// connection was down are lost (Redis does not buffer them). The redis
// engine checks for gaps per channel, on on_subscribed (below), which also
// covers a channel subscribed for the first time.
//
// sharded = true uses SSUBSCRIBE/SUNSUBSCRIBE and `smessage` (Redis 7,
// needed for Redis Cluster): one command per channel, since a cluster refuses
// one SSUBSCRIBE over channels of different slots. Finding the node that
// serves a slot, and slot migrations, are the caller's business (one
// subscriber per cluster node, fanout_hub.hpp): when sharded, a redirection
// or cluster error in answer to an SSUBSCRIBE (MOVED, ASK, TRYAGAIN,
// CLUSTERDOWN), and an `sunsubscribe` Redis sends on its own for a channel
// still wanted (its slot moved to another node, Redis 7), go to on_moved
// instead of breaking the connection; the channel then stays in the set but
// no longer in Redis: the caller moves it elsewhere.
//
// on_subscribed(channel) runs for every channel Redis confirmed (each
// SUBSCRIBE's, and each channel of a reconnect's): from then on, every
// message published to it reaches this connection, so what was published
// before can be found by a command sent after it (the engine's check).
//
// Keep-alive: a PING every ping_interval while up (0: never); like any
// command, one without an answer within command_timeout breaks the
// connection. A pub/sub connection otherwise only reads, so a peer that
// vanished silently (no FIN, no RST) would go unnoticed, and with it every
// message published meanwhile; the reconnect then runs on_subscribed for
// every channel and the engine finds what it missed.
//
// Connect timeout, command timeout (on unconfirmed (UN)SUBSCRIBEs and PINGs)
// and reconnect backoff are the same as RedisConnection's (redis_link.hpp).
// An error reply (e.g. an ACL refusing a channel) breaks the connection,
// which then retries with backoff.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/redis/redis_connection.hpp"
#include "engine/redis/redis_link.hpp"

namespace herald::engine::redis {

struct SubscriberOptions : LinkOptions {
  bool sharded = false;                           // SSUBSCRIBE / smessage
  std::chrono::milliseconds ping_interval{5000};  // 0: no keep-alive PING
};

class RedisSubscriber final : LinkHandler {
 public:
  using MessageHook = std::function<void(std::string_view channel, std::string_view payload)>;

  // Starts connecting at once (rediss://: TLS, see redis_tls.hpp).
  RedisSubscriber(boost::asio::any_io_executor executor, RedisUrl url,
                  SubscriberOptions options = {});
  ~RedisSubscriber() override;
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  void subscribe(std::string_view channel);
  void unsubscribe(std::string_view channel);
  bool subscribed(std::string_view channel) const { return channels_.contains(channel); }
  size_t channel_count() const { return channels_.size(); }

  void on_message(MessageHook hook) { on_message_ = std::move(hook); }
  void on_resubscribed(std::function<void()> hook) { on_resubscribed_ = std::move(hook); }
  void on_subscribed(std::function<void(std::string_view channel)> hook) {
    on_subscribed_ = std::move(hook);
  }
  void on_state(std::function<void(bool up)> hook) { on_state_ = std::move(hook); }
  // sharded: `channel` is not subscribed here any more; `why` is Redis'
  // error ("MOVED 12 host:port"...) or "slot moved" (see above).
  void on_moved(std::function<void(std::string_view channel, std::string_view why)> hook) {
    on_moved_ = std::move(hook);
  }
  bool up() const { return link_->up(); }
  // The channels wanted (for a caller moving them to another subscriber).
  std::vector<std::string> channels() const { return {channels_.begin(), channels_.end()}; }

  // Stops for good: no hook runs afterwards.
  void close();

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using Set = boost::unordered_flat_set<std::string, Hash, std::equal_to<>>;

  void touched(std::string_view channel);
  void flush();
  void send(const char* command, const std::vector<std::string_view>& channels);
  void arm_ping();

  // LinkHandler
  void link_up() override;
  void link_reply(Reply&& reply) override;
  void link_down(const std::string& why) override;

  boost::asio::any_io_executor executor_;
  SubscriberOptions options_;
  std::shared_ptr<Link> link_;
  Set channels_;  // wanted by the node
  Set server_;    // asked of Redis on this connection (by SUBSCRIBE minus UNSUBSCRIBE)
  Set dirty_;     // changed this loop turn
  // sharded: what each expected answer is for, in order ("" for a PING),
  // and how many SUNSUBSCRIBEs of a channel are unanswered (an
  // `sunsubscribe` beyond them is Redis' own: the slot moved).
  std::deque<std::string> asked_;
  boost::unordered_flat_map<std::string, size_t, Hash, std::equal_to<>> unsubscribing_;
  bool flush_posted_ = false;
  size_t resubscribe_left_ = 0;  // confirmations until on_resubscribed
  bool resubscribing_ = false;
  bool was_up_ = false;
  MessageHook on_message_;
  std::function<void()> on_resubscribed_;
  std::function<void(std::string_view)> on_subscribed_;
  boost::asio::steady_timer ping_timer_;
  std::function<void(bool)> on_state_;
  std::function<void(std::string_view, std::string_view)> on_moved_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace herald::engine::redis
