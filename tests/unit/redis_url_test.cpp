// Unit tests for the redis engine's URL parser and RESP codec
// (src/engine/redis/redis_url.*, resp.*): every accepted URL form and its
// defaults, percent-decoding, bad URLs refused with messages that name the
// problem and never contain the password, redacted(); commands encoded as
// RESP arrays, replies of every kind read from bytes arriving one at a time,
// and protocol errors.
#include "engine/redis/redis_url.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "engine/redis/resp.hpp"

namespace herald::engine::redis {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string error_of(const std::string& url) {
  try {
    parse_redis_url(url);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(RedisUrlTest, Defaults) {
  RedisUrl u = parse_redis_url("redis://localhost");
  EXPECT_FALSE(u.unix_socket);
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "localhost");
  EXPECT_EQ(u.port, 6379);
  EXPECT_EQ(u.db, 0);
  EXPECT_EQ(u.user, "");
  EXPECT_FALSE(u.password.has_value());
  EXPECT_EQ(parse_redis_url("redis://h/").db, 0);
}

TEST(RedisUrlTest, AllParts) {
  RedisUrl u = parse_redis_url("redis://alice:s3cret@redis.example:6380/4");
  EXPECT_EQ(u.user, "alice");
  EXPECT_EQ(u.password, "s3cret");
  EXPECT_EQ(u.host, "redis.example");
  EXPECT_EQ(u.port, 6380);
  EXPECT_EQ(u.db, 4);

  RedisUrl p = parse_redis_url("redis://:only@h");
  EXPECT_EQ(p.user, "");
  EXPECT_EQ(p.password, "only");

  RedisUrl s = parse_redis_url("rediss://h:1");
  EXPECT_TRUE(s.tls);
  EXPECT_EQ(s.port, 1);
}

TEST(RedisUrlTest, PercentDecodingAndRawSpecialCharacters) {
  RedisUrl u = parse_redis_url("redis://us%65r:p%40ss%2Fw%3Ad%25@h");
  EXPECT_EQ(u.user, "user");
  EXPECT_EQ(u.password, "p@ss/w:d%");
  // Unencoded '@' and '/' in a password: the user info ends at the last '@'.
  RedisUrl raw = parse_redis_url("redis://:a@b/c@h:7/2");
  EXPECT_EQ(raw.password, "a@b/c");
  EXPECT_EQ(raw.host, "h");
  EXPECT_EQ(raw.port, 7);
  EXPECT_EQ(raw.db, 2);
}

TEST(RedisUrlTest, Ipv6) {
  RedisUrl u = parse_redis_url("redis://[::1]:7000/1");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 7000);
  EXPECT_EQ(u.db, 1);
  EXPECT_EQ(parse_redis_url("redis://[fe80::1]").port, 6379);
}

TEST(RedisUrlTest, UnixSocket) {
  RedisUrl u = parse_redis_url("unix:///run/redis/redis.sock");
  EXPECT_TRUE(u.unix_socket);
  EXPECT_EQ(u.path, "/run/redis/redis.sock");
  EXPECT_EQ(u.db, 0);
  EXPECT_EQ(parse_redis_url("unix:///tmp/r.sock?db=3").db, 3);
}

TEST(RedisUrlTest, BadUrlsNameTheProblem) {
  EXPECT_THAT(error_of("localhost:6379"), HasSubstr("redis://"));
  EXPECT_THAT(error_of("http://h"), HasSubstr("unknown scheme"));
  EXPECT_THAT(error_of("redis://"), HasSubstr("missing host"));
  EXPECT_THAT(error_of("redis://:pw@"), HasSubstr("missing host"));
  EXPECT_THAT(error_of("redis://h:"), HasSubstr("empty port"));
  EXPECT_THAT(error_of("redis://h:0"), HasSubstr("port '0'"));
  EXPECT_THAT(error_of("redis://h:65536"), HasSubstr("port '65536'"));
  EXPECT_THAT(error_of("redis://h:12ab"), HasSubstr("port '12ab'"));
  EXPECT_THAT(error_of("redis://h/x"), HasSubstr("database 'x'"));
  EXPECT_THAT(error_of("redis://h/-1"), HasSubstr("database '-1'"));
  EXPECT_THAT(error_of("redis://h?db=1"), HasSubstr("query"));
  EXPECT_THAT(error_of("redis://[::1"), HasSubstr("unclosed '['"));
  EXPECT_THAT(error_of("unix://relative.sock"), HasSubstr("absolute socket path"));
  EXPECT_THAT(error_of("unix:///s.sock?password=x"), HasSubstr("?db=N"));
  EXPECT_THAT(error_of("unix:///s.sock?db=z"), HasSubstr("database 'z'"));
  EXPECT_THAT(error_of("redis://:@h"), HasSubstr("empty password"));
}

TEST(RedisUrlTest, ErrorsNeverContainThePassword) {
  const std::string pw = "Hunter2xyz";
  for (const std::string& url : {
           "redis://:" + pw + "@h:99999",
           "redis://u:" + pw + "@h/notadb",
           "redis://u:" + pw + "%zz@h",
           "redis://u:" + pw + "@",
           "redis://" + pw + "@h",  // a password written without ':'
           "redis:/:" + pw + "://@h",
           "redis://u:" + pw + "@[::1",
           "redis://u:" + pw + "@h?x=1",
       }) {
    std::string message = error_of(url);
    EXPECT_NE(message, "(accepted)") << url;
    EXPECT_THAT(message, Not(HasSubstr(pw))) << url;
    EXPECT_THAT(message, Not(HasSubstr("Hunter"))) << url;
  }
  EXPECT_THAT(error_of("redis://" + pw + "@h"), HasSubstr("without a password"));
  EXPECT_THAT(error_of("redis://u:" + pw + "%zz@h"), HasSubstr("percent-escape in the password"));
}

TEST(RedisUrlTest, Redacted) {
  EXPECT_EQ(redacted(parse_redis_url("redis://alice:s3cret@h:6380/4")),
            "redis://alice:***@h:6380/4");
  EXPECT_EQ(redacted(parse_redis_url("rediss://:s3cret@h")), "rediss://:***@h:6379");
  EXPECT_EQ(redacted(parse_redis_url("redis://h")), "redis://h:6379");
  EXPECT_EQ(redacted(parse_redis_url("redis://[::1]:7/1")), "redis://[::1]:7/1");
  EXPECT_EQ(redacted(parse_redis_url("unix:///s.sock?db=2")), "unix:///s.sock?db=2");
  EXPECT_EQ(redacted(parse_redis_url("redis://a%40b:p%40ss@h")), "redis://a%40b:***@h:6379");
}

TEST(RedisRespTest, EncodesCommands) {
  std::string out;
  append_command(out, {"SET", "k", ""});
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  out.clear();
  std::string binary("a\r\n\0b", 5);
  append_command(out, std::vector<std::string>{"ECHO", binary});
  using namespace std::string_literals;
  EXPECT_EQ(out, "*2\r\n$4\r\nECHO\r\n$5\r\na\r\n\0b\r\n"s);
}

TEST(RedisRespTest, ReadsEveryKindByteByByte) {
  const std::string bytes =
      "+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n*0\r\n"
      "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+x\r\n";
  ReplyReader reader;
  std::vector<Reply> replies;
  for (char c : bytes) {
    reader.feed(&c, 1);
    while (auto r = reader.next()) replies.push_back(std::move(*r));
  }
  ASSERT_EQ(replies.size(), 8u);
  EXPECT_EQ(replies[0].kind, Reply::Kind::status);
  EXPECT_EQ(replies[0].str, "OK");
  EXPECT_TRUE(replies[1].is_error());
  EXPECT_EQ(replies[1].str, "ERR wrong");
  EXPECT_EQ(replies[2].integer, -42);
  EXPECT_EQ(replies[3].kind, Reply::Kind::string);
  EXPECT_EQ(replies[3].str, "he\r\no");
  EXPECT_TRUE(replies[4].is_nil());
  EXPECT_TRUE(replies[5].is_nil());
  EXPECT_EQ(replies[6].kind, Reply::Kind::array);
  EXPECT_TRUE(replies[6].elements.empty());
  EXPECT_EQ(to_string(replies[7]), "[:1, [\"a\", (nil)], +x]");
}

TEST(RedisRespTest, ProtocolErrorThrowsAndPartialRepliesAreFreed) {
  ReplyReader reader;
  std::string partial = "*3\r\n$1\r\na\r\n";  // an array waiting for two more
  reader.feed(partial.data(), partial.size());
  EXPECT_FALSE(reader.next().has_value());
  std::string junk = "?junk\r\n";
  reader.feed(junk.data(), junk.size());
  EXPECT_THROW(reader.next(), std::runtime_error);
  // A reader destroyed with a partial reply frees it (ASan checks).
  ReplyReader other;
  other.feed(partial.data(), partial.size());
  EXPECT_FALSE(other.next().has_value());
}

}  // namespace
}  // namespace herald::engine::redis
