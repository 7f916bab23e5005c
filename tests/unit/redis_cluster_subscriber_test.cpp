// Unit tests for RedisSubscriber's Redis Cluster behaviour (sharded mode
// with on_moved, src/engine/redis/redis_subscriber.*) against a real
// one-node redis-server cluster (redis_server.hpp) that serves only slots
// 0-8000 (cluster-require-full-coverage no): an SSUBSCRIBE of a channel in
// a slot it does not serve goes to on_moved with Redis' error and keeps the
// connection (the other channel stays subscribed and receives), and when
// the node stops serving a subscribed channel's slot (CLUSTER DELSLOTS:
// Redis 7 ends the sharded subscriptions of that slot with its own
// `sunsubscribe`), on_moved says "slot moved" and the connection stays up
// with its command accounting intact (a later SSUBSCRIBE is confirmed, no
// command timeout).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/redis/cluster_slots.hpp"
#include "engine/redis/redis_subscriber.hpp"
#include "redis_server.hpp"

namespace herald::engine::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::run_until;

// A channel name whose slot is in [from, to].
std::string channel_in(uint16_t from, uint16_t to, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string ch = prefix + std::to_string(i);
    const uint16_t s = key_slot(ch);
    if (s >= from && s <= to) return ch;
  }
}

uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(
      io, {boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(0)});
  return a.local_endpoint().port();
}

bool cluster_ok(const RedisServer& server) {
  for (int i = 0; i < 500; ++i) {
    if (server.call({"CLUSTER", "INFO"}).str.find("cluster_state:ok") != std::string::npos)
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::vector<std::string> cluster_args() {
  return {"--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-port",
          std::to_string(free_port()),
          "--cluster-require-full-coverage",
          "no"};
}

TEST(RedisClusterSubscriberTest, MovedSlotsGoToOnMovedAndKeepTheConnection) {
  RedisServer server(cluster_args());
  server.call({"CLUSTER", "ADDSLOTSRANGE", "0", "8000"});
  ASSERT_TRUE(cluster_ok(server));

  boost::asio::io_context io;
  SubscriberOptions options;
  options.sharded = true;
  options.reconnect_min = 10ms;
  options.reconnect_max = 200ms;
  options.command_timeout = 500ms;
  RedisSubscriber sub(io.get_executor(), parse_redis_url(server.url()), options);
  std::vector<std::pair<std::string, std::string>> moved, messages;
  std::vector<std::string> confirmed;
  std::vector<bool> states;
  sub.on_moved([&](std::string_view ch, std::string_view why) { moved.emplace_back(ch, why); });
  sub.on_message([&](std::string_view ch, std::string_view p) { messages.emplace_back(ch, p); });
  sub.on_subscribed([&](std::string_view ch) { confirmed.emplace_back(ch); });
  sub.on_state([&](bool up) { states.push_back(up); });

  const std::string served = channel_in(0, 8000, "a");
  const std::string unserved = channel_in(8001, 16383, "b");
  sub.subscribe(served);
  sub.subscribe(unserved);
  ASSERT_TRUE(run_until(io, [&] { return confirmed.size() == 1 && moved.size() == 1; }));
  EXPECT_EQ(confirmed[0], served);
  EXPECT_EQ(moved[0].first, unserved);
  EXPECT_TRUE(moved[0].second.starts_with("CLUSTERDOWN")) << moved[0].second;
  EXPECT_EQ(server.call({"SPUBLISH", served, "x"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 1; }));

  // The node stops serving the subscribed channel's slot.
  server.call({"CLUSTER", "DELSLOTS", std::to_string(key_slot(served))});
  ASSERT_TRUE(run_until(io, [&] { return moved.size() == 2; }));
  EXPECT_EQ(moved[1], (std::pair<std::string, std::string>{served, "slot moved"}));

  // Still the same connection, its accounting intact: a new channel is
  // confirmed, and nothing times out (command_timeout 500 ms).
  const std::string other = channel_in(0, 8000, "c");
  ASSERT_NE(key_slot(other), key_slot(served));
  sub.subscribe(other);
  ASSERT_TRUE(run_until(io, [&] { return confirmed.size() == 2; }));
  EXPECT_EQ(confirmed[1], other);
  testing::run_for(io, 1200ms);
  EXPECT_EQ(states, std::vector<bool>{true});
  EXPECT_EQ(server.call({"SPUBLISH", other, "y"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 2; }));
}

}  // namespace
}  // namespace herald::engine::redis
