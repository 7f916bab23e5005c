// The value of a presence member's field in the redis engine's presence hash
// (redis_presence.hpp): what one node writes, every node must read back, and
// anything else is refused (a reader then drops and deletes the field).
#include "engine/redis/redis_presence.hpp"

#include <gtest/gtest.h>

namespace herald::engine::redis {
namespace {

TEST(RedisPresenceValueTest, RoundTripsUserAndInfoWithSeparators) {
  const PresenceMember m{"c1", "a:b:", R"({"x":"1:2"})"};
  const std::string v = encode_presence_value(1700000000123, m);
  EXPECT_EQ(v, R"(1700000000123:4:a:b:{"x":"1:2"})");
  const auto back = decode_presence_value(v);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->expires_ms, 1700000000123);
  EXPECT_EQ(back->user, "a:b:");
  EXPECT_EQ(back->info, R"({"x":"1:2"})");
}

TEST(RedisPresenceValueTest, AnonymousWithoutInfo) {
  const auto back = decode_presence_value(encode_presence_value(5, PresenceMember{"c", "", ""}));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->expires_ms, 5);
  EXPECT_EQ(back->user, "");
  EXPECT_EQ(back->info, "");
}

TEST(RedisPresenceValueTest, RejectsMalformed) {
  for (const char* bad : {"", "5", "5:", ":0:", "x:0:", "5:x:", "5:3:ab", "5:-1:", "5:1"}) {
    EXPECT_FALSE(decode_presence_value(bad)) << bad;
  }
}

}  // namespace
}  // namespace herald::engine::redis
