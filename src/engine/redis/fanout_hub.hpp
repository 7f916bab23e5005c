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
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

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
  explicit FanoutHub(const RedisEngineOptions& options);
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

  boost::asio::io_context io_;
  std::unique_ptr<RedisSubscriber> sub_;  // used on the hub thread only
  std::mutex mu_;
  std::unordered_map<std::string, Route> routes_;  // under mu_
  std::thread thread_;
};

}  // namespace herald::engine::redis
