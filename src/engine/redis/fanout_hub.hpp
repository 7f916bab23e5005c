// FanoutHub: the node's one pub/sub connection (RedisSubscriber) for the
// redis engine's cross-node fan-out, on a thread of its own so that its
// lifetime is the engine's whatever order the core stops its workers in,
// and the routes from a channel's pub/sub name to the one store (the owner
// shard's) that watches it. What arrives is posted to that store's
// executor through its Mailbox, and dropped if the store is gone.
// Thread-safety: the routes are a small map under a mutex (stores change it
// from their threads, the hub thread reads it for every message); the
// subscriber is touched on the hub thread only. See redis_engine.cpp's
// opening comment and LAYOUT.md ("Cross-node fan-out").
//
// Redis Cluster (a slot map given): one sharded subscriber per master that
// serves a watched channel, each channel SSUBSCRIBEd on its slot's master
// (the hub's own ClusterRouter keeps the map). When a subscriber says a
// channel left it (on_moved: MOVED on SSUBSCRIBE, or Redis' own
// `sunsubscribe` after its slot moved), the map is read again, and the
// subscriber of every node that lost a channel is replaced by a new one
// with the channels it keeps, while the others go to their new master: each
// is confirmed again, so its store checks the stream and fills what it
// missed meanwhile (the same path as after a pub/sub reconnect). The map is
// also read every second, and when a subscriber's connection breaks, so
// that a master replaced by its replica (failover) is followed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "engine/redis/cluster_router.hpp"
#include "engine/redis/cluster_slots.hpp"
#include "engine/redis/redis_engine.hpp"
#include "engine/redis/redis_subscriber.hpp"

namespace herald::engine::redis {

// What a store is told about its watched channels (on its own executor).
class FanoutListener {
 public:
  virtual ~FanoutListener() = default;
  // A pub/sub message of `channel` (the Herald channel's name).
  virtual void pubsub_message(const std::string& channel, const std::string& payload) = 0;
  // Redis confirmed the subscription (again after each reconnect).
  virtual void pubsub_subscribed(const std::string& channel) = 0;
};

// Where the hub posts what arrives for a store's watched channels: the
// store's executor, and the store while it lives (checked on that executor,
// where the store is also destroyed).
struct Mailbox {
  boost::asio::any_io_executor executor;
  std::weak_ptr<int> alive;
  FanoutListener* store = nullptr;
};

// The node's one pub/sub connection (RedisSubscriber), on a thread of its
// own, and the routes from a pub/sub channel to the store that watches it
// (a small map under a mutex: stores change it from their threads, the hub
// thread reads it for every message).
class FanoutHub {
 public:
  // `slots`: Redis Cluster's map at start (null: one Redis).
  FanoutHub(const RedisEngineOptions& options, const SlotMap* slots);
  ~FanoutHub();
  FanoutHub(const FanoutHub&) = delete;
  FanoutHub& operator=(const FanoutHub&) = delete;

  void watch(const std::string& pubsub, const std::string& channel,
             const std::shared_ptr<Mailbox>& mailbox);
  void unwatch(const std::string& pubsub, const std::shared_ptr<Mailbox>& mailbox);
  // Closes the pub/sub connection and joins the hub thread: nothing is
  // posted to any store afterwards (watch/unwatch then change routes only).
  void stop();

 private:
  struct Route {
    std::shared_ptr<Mailbox> mailbox;
    std::string channel;
  };
  void sync(const std::string& pubsub);  // on the hub thread
  std::optional<Route> route(std::string_view pubsub);
  std::unique_ptr<RedisSubscriber> make_subscriber(const RedisUrl& url);
  // Cluster, on the hub thread.
  RedisSubscriber& subscriber_for(const std::string& node);
  void moved(const std::string& node, const std::string& pubsub, std::string_view why);
  void rebalance();

  const RedisEngineOptions options_;
  boost::asio::io_context io_;
  std::unique_ptr<RedisSubscriber> sub_;  // used on the hub thread only
  // Cluster (hub thread only): the map, a subscriber per master ("host:port"),
  // where each subscribed channel is, and the channels a subscriber lost.
  std::unique_ptr<ClusterRouter> router_;
  std::map<std::string, std::unique_ptr<RedisSubscriber>> subs_;
  std::unordered_map<std::string, std::string> placed_;
  std::unordered_map<std::string, std::string> lost_;  // pubsub -> node it left
  // Cluster: the map is read every kMapRefresh too, so a failed-over
  // master (its subscriber reconnecting in vain) is replaced.
  static constexpr std::chrono::milliseconds kMapRefresh{1000};
  std::unique_ptr<boost::asio::steady_timer> refresh_timer_;
  void arm_refresh();
  std::mutex mu_;
  std::unordered_map<std::string, Route> routes_;  // under mu_
  std::thread thread_;
};

}  // namespace herald::engine::redis
