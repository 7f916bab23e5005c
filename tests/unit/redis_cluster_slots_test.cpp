// Unit tests for Redis Cluster's addressing (src/engine/redis/cluster_slots.*):
// key_slot() against the values `redis-cli CLUSTER KEYSLOT` gave on Redis
// 7.0.15 (hard-coded here: hash tags, empty tags, nested braces, the engine's
// own keys), parsing of MOVED/ASK replies and refusal of anything else, the
// retryable cluster errors, and the slot map read from a CLUSTER SLOTS reply
// (an empty host meaning "the host asked") and updated by a MOVED.
#include <gtest/gtest.h>

#include <string>

#include "engine/redis/cluster_slots.hpp"
#include "engine/redis/redis_engine.hpp"

namespace herald::engine::redis {
namespace {

TEST(RedisClusterSlotsTest, KeySlotMatchesRedis) {
  // redis-cli -p <cluster node> CLUSTER KEYSLOT <key>, Redis 7.0.15.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("{user1000}.following"), 3443);
  EXPECT_EQ(key_slot("herald:{chat}:meta"), 14028);
  EXPECT_EQ(key_slot("herald:{a%7Db}:events"), 13663);
  EXPECT_EQ(key_slot(""), 0);
  EXPECT_EQ(key_slot("{}x"), 10595);     // empty tag: the whole key
  EXPECT_EQ(key_slot("a{}{b}"), 15033);  // first '{' then first '}': empty, whole key
  EXPECT_EQ(key_slot("x{b}"), 3300);
  EXPECT_EQ(key_slot("herald:key_seed"), 1725);
  EXPECT_EQ(key_slot("{{x}}"), 11068);  // tag "{x"
  EXPECT_EQ(key_slot("chan"), 1463);
}

TEST(RedisClusterSlotsTest, EveryKeyOfAChannelSharesItsSlot) {
  const uint16_t slot = key_slot(channel_key("herald", "room:1", "meta"));
  for (const char* what : {"stream", "keys", "keyq", "events", "presence"})
    EXPECT_EQ(key_slot(channel_key("herald", "room:1", what)), slot) << what;
  EXPECT_EQ(slot, key_slot("room:1"));
}

TEST(RedisClusterSlotsTest, ParsesRedirections) {
  auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_FALSE(moved->ask);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->node.host, "127.0.0.1");
  EXPECT_EQ(moved->node.port, 6381);
  EXPECT_EQ(moved->node.name(), "127.0.0.1:6381");

  auto ask = parse_redirect("ASK 16383 redis-2.local:7000");
  ASSERT_TRUE(ask);
  EXPECT_TRUE(ask->ask);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->node.host, "redis-2.local");
  EXPECT_EQ(ask->node.port, 7000);

  auto v6 = parse_redirect("MOVED 1 ::1:7001");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->node.host, "::1");
  EXPECT_EQ(v6->node.port, 7001);

  for (const char* bad :
       {"ERR unknown command", "MOVED", "MOVED 3999", "MOVED x 1.2.3.4:5", "MOVED 16384 1.2.3.4:5",
        "MOVED 1 1.2.3.4", "MOVED 1 1.2.3.4:0", "MOVED 1 :5", "ASK 1 1.2.3.4:99999",
        "moved 1 1.2.3.4:5", "TRYAGAIN Multiple keys request during rehashing of slot"})
    EXPECT_FALSE(parse_redirect(bad)) << bad;

  EXPECT_TRUE(is_cluster_retry("TRYAGAIN Multiple keys request during rehashing of slot"));
  EXPECT_TRUE(is_cluster_retry("CLUSTERDOWN The cluster is down"));
  EXPECT_FALSE(is_cluster_retry("MOVED 1 1.2.3.4:5"));
  EXPECT_FALSE(is_cluster_retry("ERR x"));
}

Reply integer(int64_t n) {
  Reply r;
  r.kind = Reply::Kind::integer;
  r.integer = n;
  return r;
}
Reply bulk(std::string s) {
  Reply r;
  r.kind = Reply::Kind::string;
  r.str = std::move(s);
  return r;
}
Reply array(std::vector<Reply> elements) {
  Reply r;
  r.kind = Reply::Kind::array;
  r.elements = std::move(elements);
  return r;
}
Reply range(int64_t from, int64_t to, std::string host, int64_t port) {
  return array({integer(from), integer(to),
                array({bulk(std::move(host)), integer(port), bulk("id")}),
                array({bulk("127.0.0.9"), integer(9999), bulk("replica")})});
}

TEST(RedisClusterSlotsTest, ReadsTheSlotMap) {
  Reply reply = array({range(0, 5460, "127.0.0.1", 7001), range(5461, 10922, "", 7002),
                       range(10923, 16383, "127.0.0.1", 7003)});
  auto map = SlotMap::parse(reply, "10.0.0.5");
  ASSERT_TRUE(map);
  ASSERT_EQ(map->nodes().size(), 3u);
  EXPECT_EQ(map->master(0)->name(), "127.0.0.1:7001");
  EXPECT_EQ(map->master(5460)->name(), "127.0.0.1:7001");
  EXPECT_EQ(map->master(5461)->name(), "10.0.0.5:7002");  // "" is the host asked
  EXPECT_EQ(map->master(16383)->name(), "127.0.0.1:7003");

  map->assign(5460, ClusterNode{"127.0.0.1", 7003});  // a MOVED
  EXPECT_EQ(map->master(5460)->name(), "127.0.0.1:7003");
  EXPECT_EQ(map->master(5459)->name(), "127.0.0.1:7001");
  EXPECT_EQ(map->nodes().size(), 3u);

  auto partial = SlotMap::parse(array({range(0, 10, "h", 1)}), "x");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->master(11), nullptr);  // unserved

  EXPECT_FALSE(SlotMap::parse(bulk("no"), "x"));
  EXPECT_FALSE(SlotMap::parse(array({range(10, 5, "h", 1)}), "x"));
  EXPECT_FALSE(SlotMap::parse(array({range(0, 16384, "h", 1)}), "x"));
  EXPECT_FALSE(SlotMap::parse(array({range(0, 1, "h", 0)}), "x"));
}

}  // namespace
}  // namespace herald::engine::redis
