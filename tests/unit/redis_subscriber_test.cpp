// Unit tests for RedisSubscriber (src/engine/redis/redis_subscriber.*)
// against a real redis-server (redis_server.hpp), no mocks: channels asked
// in one loop turn go in one SUBSCRIBE (counted by INFO commandstats),
// PUBLISH from another connection reaches on_message, CLIENT KILL TYPE
// pubsub and a server restart end in an automatic resubscribe followed by
// on_resubscribed, unsubscribe stops delivery at once, a subscribe and an
// unsubscribe of one channel in one turn send nothing, and sharded mode
// (SSUBSCRIBE, SPUBLISH), on_subscribed for every confirmed channel (again
// after a reconnect), and the keep-alive PING noticing a server that stopped
// answering.
#include "engine/redis/redis_subscriber.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <string>
#include <utility>
#include <vector>

#include "redis_server.hpp"

namespace herald::engine::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::run_until;
using Message = std::pair<std::string, std::string>;

// calls=N of `cmdstat_<command>` in INFO commandstats (0 when never called).
int64_t calls(const RedisServer& server, const std::string& command) {
  std::string info = server.call({"INFO", "commandstats"}).str;
  std::string key = "cmdstat_" + command + ":calls=";
  size_t at = info.find(key);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + key.size()));
}

int64_t receivers(const RedisServer& server, const std::string& channel) {
  return server.call({"PUBSUB", "NUMSUB", channel}).elements.at(1).integer;
}

class RedisSubscriberTest : public ::testing::Test {
 protected:
  void make(const RedisServer& server, bool sharded = false,
            std::chrono::milliseconds ping_interval = 5000ms,
            std::chrono::milliseconds command_timeout = 5000ms) {
    SubscriberOptions options;
    options.reconnect_min = 10ms;
    options.reconnect_max = 200ms;
    options.sharded = sharded;
    options.ping_interval = ping_interval;
    options.command_timeout = command_timeout;
    sub = std::make_unique<RedisSubscriber>(io.get_executor(), parse_redis_url(server.url()),
                                            options);
    sub->on_message([this](std::string_view channel, std::string_view payload) {
      messages.emplace_back(channel, payload);
    });
    sub->on_resubscribed([this] { ++resubscribed; });
    sub->on_subscribed([this](std::string_view channel) { confirmed.emplace_back(channel); });
    sub->on_state([this](bool up) { states.push_back(up); });
  }

  boost::asio::io_context io;
  std::unique_ptr<RedisSubscriber> sub;
  std::vector<Message> messages;
  int resubscribed = 0;
  std::vector<bool> states;
  std::vector<std::string> confirmed;
};

TEST_F(RedisSubscriberTest, EveryConfirmedChannelIsReportedAgainAfterAReconnect) {
  RedisServer server;
  make(server);
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  sub->subscribe("a");
  sub->subscribe("b");
  ASSERT_TRUE(run_until(io, [&] { return confirmed.size() == 2; }));
  std::sort(confirmed.begin(), confirmed.end());
  EXPECT_EQ(confirmed, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(receivers(server, "a"), 1);  // active when reported
  sub->unsubscribe("b");
  confirmed.clear();
  server.call({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 2; }));
  EXPECT_EQ(confirmed, (std::vector<std::string>{"a"}));
}

TEST_F(RedisSubscriberTest, KeepAlivePingNoticesAServerThatStoppedAnswering) {
  RedisServer server;
  make(server, false, 50ms, 300ms);
  sub->subscribe("a");
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  testing::run_for(io, 200ms);  // PINGs answered: still up
  EXPECT_EQ(states, (std::vector<bool>{true}));
  EXPECT_GE(calls(server, "ping"), 2);
  // Paused clients get no answer (as from a peer that vanished): the PING
  // times out, the link breaks and comes back, subscribed again.
  server.call({"CLIENT", "PAUSE", "1000", "ALL"});
  ASSERT_TRUE(run_until(
      io, [&] { return states.size() >= 2; }, 3s));
  EXPECT_FALSE(states[1]);
  ASSERT_TRUE(run_until(
      io, [&] { return resubscribed >= 2; }, 5s));
}

TEST_F(RedisSubscriberTest, OneSubscribePerTurnAndMessagesArrive) {
  RedisServer server;
  make(server);
  sub->subscribe("a");
  sub->subscribe("b");
  sub->subscribe("c");
  sub->subscribe("a");  // already held
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  EXPECT_EQ(calls(server, "subscribe"), 1);
  for (const char* channel : {"a", "b", "c"}) {
    EXPECT_EQ(server.call({"PUBLISH", channel, std::string("to-") + channel}).integer, 1);
  }
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 3; }));
  EXPECT_EQ(messages, (std::vector<Message>{{"a", "to-a"}, {"b", "to-b"}, {"c", "to-c"}}));

  // Once up: the channels of one turn in one more SUBSCRIBE.
  sub->subscribe("d");
  sub->subscribe("e");
  ASSERT_TRUE(run_until(io, [&] { return receivers(server, "e") == 1; }));
  EXPECT_EQ(calls(server, "subscribe"), 2);
  EXPECT_EQ(resubscribed, 1);
  EXPECT_EQ(sub->channel_count(), 5u);
}

TEST_F(RedisSubscriberTest, ClientKillPubsubResubscribes) {
  RedisServer server;
  make(server);
  for (const char* channel : {"a", "b", "c"}) sub->subscribe(channel);
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  EXPECT_EQ(server.call({"CLIENT", "KILL", "TYPE", "pubsub"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 2; }));
  EXPECT_EQ(states, (std::vector<bool>{true, false, true}));
  for (const char* channel : {"a", "b", "c"}) {
    EXPECT_EQ(server.call({"PUBLISH", channel, "again"}).integer, 1);
  }
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 3; }));
  EXPECT_EQ(messages.back(), (Message{"c", "again"}));
}

TEST_F(RedisSubscriberTest, ServerRestartResubscribesWhatWasAskedWhileDown) {
  RedisServer server;
  make(server);
  sub->subscribe("kept");
  sub->subscribe("dropped");
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  server.stop();
  ASSERT_TRUE(run_until(io, [&] { return !sub->up(); }));
  sub->subscribe("new");
  sub->unsubscribe("dropped");
  testing::run_for(io, 50ms);
  server.start();
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 2; }));
  EXPECT_EQ(receivers(server, "kept"), 1);
  EXPECT_EQ(receivers(server, "new"), 1);
  EXPECT_EQ(receivers(server, "dropped"), 0);
  EXPECT_EQ(server.call({"PUBLISH", "new", "n"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 1; }));
  EXPECT_EQ(messages[0], (Message{"new", "n"}));
}

TEST_F(RedisSubscriberTest, UnsubscribeStopsDelivery) {
  RedisServer server;
  make(server);
  sub->subscribe("a");
  sub->subscribe("b");
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  sub->unsubscribe("b");
  EXPECT_FALSE(sub->subscribed("b"));
  ASSERT_TRUE(run_until(io, [&] { return receivers(server, "b") == 0; }));
  EXPECT_EQ(server.call({"PUBLISH", "b", "gone"}).integer, 0);
  EXPECT_EQ(server.call({"PUBLISH", "a", "here"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 1; }));
  testing::run_for(io, 50ms);
  EXPECT_EQ(messages, (std::vector<Message>{{"a", "here"}}));
  sub->unsubscribe("not-held");  // nothing to do
  EXPECT_EQ(sub->channel_count(), 1u);
}

TEST_F(RedisSubscriberTest, SubscribeAndUnsubscribeInOneTurnSendsNothing) {
  RedisServer server;
  make(server);
  sub->subscribe("a");
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  sub->subscribe("x");
  sub->unsubscribe("x");
  testing::run_for(io, 100ms);
  EXPECT_EQ(calls(server, "subscribe"), 1);
  EXPECT_EQ(calls(server, "unsubscribe"), 0);
  EXPECT_TRUE(sub->up());
}

TEST_F(RedisSubscriberTest, ShardedUsesSsubscribe) {
  RedisServer server;
  make(server, /*sharded=*/true);
  sub->subscribe("s1");
  sub->subscribe("s2");
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  EXPECT_EQ(calls(server, "ssubscribe"), 2);  // one per channel (cluster slots)
  EXPECT_EQ(server.call({"SPUBLISH", "s2", "sharded"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 1; }));
  EXPECT_EQ(messages[0], (Message{"s2", "sharded"}));
  sub->unsubscribe("s2");
  ASSERT_TRUE(run_until(io, [&] { return calls(server, "sunsubscribe") == 1; }));
  EXPECT_EQ(server.call({"SPUBLISH", "s2", "x"}).integer, 0);
}

TEST_F(RedisSubscriberTest, DestroyedInsideOnMessage) {
  RedisServer server;
  make(server);
  sub->subscribe("a");
  ASSERT_TRUE(run_until(io, [&] { return resubscribed == 1; }));
  int seen = 0;
  sub->on_message([&](std::string_view, std::string_view) {
    ++seen;
    sub.reset();
  });
  server.call({"PUBLISH", "a", "1"});
  server.call({"PUBLISH", "a", "2"});
  ASSERT_TRUE(run_until(io, [&] { return seen == 1; }));
  testing::run_for(io, 100ms);
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace herald::engine::redis
