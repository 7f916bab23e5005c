// Unit tests for RedisConnection (src/engine/redis/redis_connection.*,
// redis_link.*) against a real redis-server started by the test
// (redis_server.hpp), no mocks: 10,000 pipelined INCRs in one loop turn,
// error replies, AUTH with a password and with an ACL user (and a wrong
// password failing clearly, without the password), SELECT by URL, unix
// sockets, CLIENT KILL (pending callbacks fail once, then it reconnects),
// a stopped and restarted server, the max_pending bound, the command
// timeout, close() and destruction from inside a callback, and rediss://
// (a TLS handshake within the connect timeout, which says so, also against
// a plain Redis port).
#include "engine/redis/redis_connection.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "redis_server.hpp"

namespace herald::engine::redis {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RedisServer;
using testing::run_until;
using ::testing::StartsWith;

// Fast reconnects, so the tests do not wait for the production backoff.
ConnectionOptions fast() {
  ConnectionOptions o;
  o.reconnect_min = 10ms;
  o.reconnect_max = 200ms;
  return o;
}

// Collects one command's result.
struct Outcome {
  std::optional<Result> result;
  int calls = 0;
  Callback callback() {
    return [this](Result&& r) {
      ++calls;
      result = std::move(r);
    };
  }
  bool done() const { return result.has_value(); }
  bool failed() const { return done() && std::holds_alternative<Failure>(*result); }
  const Reply& reply() const { return std::get<Reply>(*result); }
  const std::string& failure() const { return std::get<Failure>(*result).message; }
};

Reply call(boost::asio::io_context& io, RedisConnection& c,
           std::initializer_list<std::string_view> args) {
  Outcome out;
  c.command(args, out.callback());
  EXPECT_TRUE(run_until(io, [&] { return out.done(); }));
  if (out.failed()) ADD_FAILURE() << "command failed: " << out.failure();
  return out.failed() ? Reply{} : out.reply();
}

class RedisConnectionTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
};

TEST_F(RedisConnectionTest, TenThousandPipelinedIncrsInOrder) {
  RedisServer server;
  RedisConnection c(io.get_executor(), parse_redis_url(server.url()), fast());
  std::vector<int64_t> values;
  for (int i = 0; i < 10000; ++i) {
    c.command({"INCR", "counter"}, [&](Result&& r) {
      ASSERT_TRUE(std::holds_alternative<Reply>(r));
      values.push_back(std::get<Reply>(r).integer);
    });
  }
  EXPECT_EQ(c.pending(), 10000u);
  ASSERT_TRUE(run_until(io, [&] { return values.size() == 10000; }));
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(values[i], i + 1);
  EXPECT_EQ(c.writes(), 1u);  // all asked before the connection was up: sent with it
  // Once up: one write per loop turn.
  values.clear();
  for (int i = 0; i < 10000; ++i) {
    c.command({"INCR", "counter"},
              [&](Result&& r) { values.push_back(std::get<Reply>(r).integer); });
  }
  ASSERT_TRUE(run_until(io, [&] { return values.size() == 10000; }));
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(values[i], 10000 + i + 1);
  EXPECT_EQ(c.writes(), 2u);
  EXPECT_EQ(to_string(server.call({"GET", "counter"})), "\"20000\"");
}

TEST_F(RedisConnectionTest, ErrorReplyReachesItsCallbackAndNextCommandWorks) {
  RedisServer server;
  RedisConnection c(io.get_executor(), parse_redis_url(server.url()), fast());
  Outcome set, wrong, after;
  c.command({"SET", "s", "text"}, set.callback());
  c.command({"LPUSH", "s", "x"}, wrong.callback());
  c.command({"GET", "s"}, after.callback());
  ASSERT_TRUE(run_until(io, [&] { return after.done(); }));
  EXPECT_EQ(to_string(set.reply()), "+OK");
  ASSERT_FALSE(wrong.failed());
  EXPECT_TRUE(wrong.reply().is_error());
  EXPECT_THAT(wrong.reply().str, StartsWith("WRONGTYPE"));
  EXPECT_EQ(after.reply().str, "text");
  EXPECT_TRUE(c.up());
}

TEST_F(RedisConnectionTest, AuthWithPasswordAndSelect) {
  const std::string pw = "p@ss/w:rd";
  RedisServer server({"--requirepass", pw}, pw);
  auto url =
      parse_redis_url("redis://:p%40ss%2Fw%3Ard@127.0.0.1:" + std::to_string(server.port()) + "/5");
  RedisConnection c(io.get_executor(), url, fast());
  EXPECT_EQ(to_string(call(io, c, {"SET", "k", "in-db-5"})), "+OK");
  EXPECT_THAT(call(io, c, {"CLIENT", "INFO"}).str, HasSubstr(" db=5 "));
  EXPECT_TRUE(server.call({"GET", "k"}).is_nil());  // db 0
}

TEST_F(RedisConnectionTest, AuthWithAclUser) {
  RedisServer server;
  EXPECT_EQ(
      to_string(server.call({"ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all"})),
      "+OK");
  RedisConnection c(
      io.get_executor(),
      parse_redis_url("redis://alice:alice-pw@127.0.0.1:" + std::to_string(server.port())), fast());
  EXPECT_EQ(call(io, c, {"ACL", "WHOAMI"}).str, "alice");
}

TEST_F(RedisConnectionTest, WrongPasswordFailsClearlyWithoutThePassword) {
  RedisServer server({"--requirepass", "right-pw"}, "right-pw");
  RedisConnection c(
      io.get_executor(),
      parse_redis_url("redis://:Wr0ngPw77@127.0.0.1:" + std::to_string(server.port())), fast());
  bool down = false;
  c.on_state([&](bool up) { down = !up; });
  Outcome first;
  c.command({"PING"}, first.callback());  // queued behind the AUTH of the first attempt
  ASSERT_TRUE(run_until(io, [&] { return first.done(); }));
  ASSERT_TRUE(first.failed());
  EXPECT_THAT(first.failure(), StartsWith("redis connection lost: AUTH failed: WRONGPASS"));
  EXPECT_THAT(first.failure(), Not(HasSubstr("Wr0ngPw77")));
  EXPECT_FALSE(down);  // never up, so never reported down
  Outcome later;
  c.command({"PING"}, later.callback());
  ASSERT_TRUE(run_until(io, [&] { return later.done(); }));
  ASSERT_TRUE(later.failed());
  EXPECT_THAT(later.failure(), StartsWith("redis unavailable: AUTH failed"));
  EXPECT_THAT(later.failure(), Not(HasSubstr("Wr0ngPw77")));
}

TEST_F(RedisConnectionTest, UnixSocketWithDb) {
  RedisServer server;
  RedisConnection c(io.get_executor(), parse_redis_url("unix://" + server.socket_path() + "?db=2"),
                    fast());
  EXPECT_EQ(to_string(call(io, c, {"SET", "u", "1"})), "+OK");
  EXPECT_EQ(call(io, c, {"DBSIZE"}).integer, 1);
  EXPECT_TRUE(server.call({"GET", "u"}).is_nil());
}

TEST_F(RedisConnectionTest, ClientKillFailsPendingOnceThenReconnects) {
  RedisServer server;
  RedisConnection c(io.get_executor(), parse_redis_url(server.url()), fast());
  std::vector<bool> states;
  c.on_state([&](bool up) { states.push_back(up); });
  int64_t id = call(io, c, {"CLIENT", "ID"}).integer;
  // A blocked BLPOP with INCRs pipelined behind it: all written, none answered.
  std::vector<Outcome> outcomes(6);
  c.command({"BLPOP", "nothing", "4"}, outcomes[0].callback());
  for (size_t i = 1; i < outcomes.size(); ++i) c.command({"INCR", "n"}, outcomes[i].callback());
  testing::run_for(io, 100ms);
  EXPECT_EQ(c.pending(), 6u);
  EXPECT_EQ(server.call({"CLIENT", "KILL", "ID", std::to_string(id)}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return c.pending() == 0; }));
  for (const Outcome& o : outcomes) {
    EXPECT_EQ(o.calls, 1);
    ASSERT_TRUE(o.failed());
    EXPECT_EQ(o.failure(), "redis connection lost: closed by the server");
  }
  ASSERT_TRUE(run_until(io, [&] { return c.up(); }));
  EXPECT_EQ(call(io, c, {"INCR", "n"}).integer, 1);  // none of the INCRs ran
  EXPECT_EQ(states, (std::vector<bool>{true, false, true}));
  testing::run_for(io, 100ms);
  for (const Outcome& o : outcomes) EXPECT_EQ(o.calls, 1);
}

TEST_F(RedisConnectionTest, ServerStoppedFailsFastThenRestartedWorks) {
  RedisServer server;
  RedisConnection c(io.get_executor(), parse_redis_url(server.url()), fast());
  EXPECT_EQ(to_string(call(io, c, {"PING"})), "+PONG");
  server.stop();
  ASSERT_TRUE(run_until(io, [&] { return !c.up(); }));
  for (int i = 0; i < 3; ++i) {
    Outcome o;
    c.command({"PING"}, o.callback());
    EXPECT_FALSE(o.done());  // posted, not run inside command()
    ASSERT_TRUE(run_until(
        io, [&] { return o.done(); }, 1s));
    ASSERT_TRUE(o.failed());
    EXPECT_THAT(o.failure(), StartsWith("redis unavailable: "));
    testing::run_for(io, 50ms);  // a few reconnect attempts, refused
  }
  server.start();
  ASSERT_TRUE(run_until(io, [&] { return c.up(); }));
  EXPECT_EQ(to_string(call(io, c, {"PING"})), "+PONG");
}

TEST_F(RedisConnectionTest, FirstAttemptRefusedFailsQueuedCommands) {
  uint16_t port;
  {
    RedisServer server;
    port = server.port();
  }
  RedisConnection c(io.get_executor(), parse_redis_url("redis://127.0.0.1:" + std::to_string(port)),
                    fast());
  Outcome o;
  c.command({"PING"}, o.callback());
  ASSERT_TRUE(run_until(io, [&] { return o.done(); }));
  ASSERT_TRUE(o.failed());
  EXPECT_THAT(o.failure(), StartsWith("redis connection lost: connect 127.0.0.1:"));
  EXPECT_THAT(o.failure(), HasSubstr("refused"));
}

TEST_F(RedisConnectionTest, MaxPendingBound) {
  RedisServer server;
  ConnectionOptions options = fast();
  options.max_pending = 3;
  RedisConnection c(io.get_executor(), parse_redis_url(server.url()), options);
  std::vector<Outcome> outcomes(5);
  for (auto& o : outcomes) c.command({"INCR", "m"}, o.callback());
  EXPECT_FALSE(outcomes[3].done());  // posted, not run inside command()
  ASSERT_TRUE(run_until(io, [&] { return outcomes[2].done(); }));
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(outcomes[i].reply().integer, int64_t(i + 1));
  for (size_t i = 3; i < 5; ++i) {
    ASSERT_TRUE(outcomes[i].failed());
    EXPECT_EQ(outcomes[i].failure(), "redis queue full");
  }
  EXPECT_EQ(call(io, c, {"INCR", "m"}).integer, 4);  // room again
}

TEST_F(RedisConnectionTest, CommandTimeoutBreaksTheConnection) {
  RedisServer server;
  ConnectionOptions options = fast();
  options.command_timeout = 200ms;
  RedisConnection c(io.get_executor(), parse_redis_url(server.url()), options);
  EXPECT_EQ(to_string(call(io, c, {"PING"})), "+PONG");
  Outcome blocked, behind;
  c.command({"BLPOP", "nothing", "5"}, blocked.callback());
  c.command({"PING"}, behind.callback());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(
      io, [&] { return behind.done(); }, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(blocked.failure(), "redis connection lost: no reply within 200 ms");
  EXPECT_EQ(behind.failure(), "redis connection lost: no reply within 200 ms");
  ASSERT_TRUE(run_until(io, [&] { return c.up(); }));
  EXPECT_EQ(to_string(call(io, c, {"PING"})), "+PONG");
}

TEST_F(RedisConnectionTest, CloseFailsPendingAndLaterCommands) {
  RedisServer server;
  RedisConnection c(io.get_executor(), parse_redis_url(server.url()), fast());
  Outcome a, b, from_callback;
  c.command({"PING"}, a.callback());
  c.command({"PING"}, [&](Result&& r) {
    b.callback()(std::move(r));
    c.command({"PING"}, from_callback.callback());  // during close(): fails in close()
  });
  c.close();
  EXPECT_EQ(a.failure(), "redis connection closed");
  EXPECT_EQ(b.failure(), "redis connection closed");
  EXPECT_EQ(from_callback.failure(), "redis connection closed");
  Outcome later;
  c.command({"PING"}, later.callback());
  ASSERT_TRUE(run_until(io, [&] { return later.done(); }));
  EXPECT_EQ(later.failure(), "redis connection closed");
}

TEST_F(RedisConnectionTest, DestroyedFromACallbackRunsTheRestOnceAndNothingLater) {
  RedisServer server;
  auto c =
      std::make_unique<RedisConnection>(io.get_executor(), parse_redis_url(server.url()), fast());
  Outcome first, second, third, unavailable;
  c->command({"PING"}, [&](Result&& r) {
    first.callback()(std::move(r));
    c.reset();  // the callbacks still waiting run now, inside the destructor
  });
  c->command({"PING"}, second.callback());
  c->command({"PING"}, third.callback());
  ASSERT_TRUE(run_until(io, [&] { return third.done(); }));
  EXPECT_EQ(to_string(first.reply()), "+PONG");
  EXPECT_EQ(second.calls, 1);
  EXPECT_EQ(third.calls, 1);
  // Replies of the destroyed connection's socket, and its timers, call nothing.
  testing::run_for(io, 100ms);
  EXPECT_EQ(second.calls + third.calls, 2);
}

TEST_F(RedisConnectionTest, DestroyedWithPostedFailuresRunsThemInTheDestructor) {
  auto c = std::make_unique<RedisConnection>(
      io.get_executor(), parse_redis_url("redis://127.0.0.1:1"), ConnectionOptions{});
  Outcome o;
  c->close();
  c->command({"PING"}, o.callback());
  EXPECT_FALSE(o.done());
  c.reset();
  EXPECT_EQ(o.calls, 1);
  EXPECT_EQ(o.failure(), "redis connection closed");
  testing::run_for(io, 50ms);
  EXPECT_EQ(o.calls, 1);
}

// rediss:// end to end (certificates, verification, client certificates,
// restarts) is tested against a TLS redis-server in
// tests/integration/python/test_redis_tls.py; here, what needs no
// certificates.
TEST_F(RedisConnectionTest, RedissHandshakeIsCoveredByTheConnectTimeout) {
  // Accepts the TCP connection and never answers the ClientHello.
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  boost::asio::ip::tcp::socket held(io);
  silent.async_accept(held, [](boost::system::error_code) {});
  ConnectionOptions o = fast();
  o.connect_timeout = 200ms;
  const std::string url = "rediss://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  RedisConnection c(io.get_executor(), parse_redis_url(url), o);
  Outcome out;
  c.command({"PING"}, out.callback());
  ASSERT_TRUE(run_until(io, [&] { return out.done(); }));
  EXPECT_TRUE(held.is_open());  // the TCP connection was made: the handshake timed out
  EXPECT_THAT(out.failure(),
              HasSubstr("connect timed out after 200 ms (in the TLS handshake: "
                        "does 127.0.0.1:" +
                        std::to_string(silent.local_endpoint().port()) + " speak TLS?)"));
}

TEST_F(RedisConnectionTest, RedissToAPlainPortSaysSo) {
  // Redis reads the ClientHello as the start of an inline command and waits.
  RedisServer server;
  ConnectionOptions o = fast();
  o.connect_timeout = 300ms;
  o.reconnect_min = o.reconnect_max = 1h;
  const std::string where = "127.0.0.1:" + std::to_string(server.port());
  RedisConnection c(io.get_executor(), parse_redis_url("rediss://:secret@" + where), o);
  Outcome out;
  c.command({"PING"}, out.callback());
  ASSERT_TRUE(run_until(io, [&] { return out.done(); }));
  EXPECT_THAT(out.failure(), AllOf(HasSubstr("in the TLS handshake: does " + where + " speak TLS?"),
                                   Not(HasSubstr("secret"))));
}

}  // namespace
}  // namespace herald::engine::redis
