// The command-line client's pure parts (src/cli): reading the server's
// messages and HTTP bodies with their raw fields kept byte for byte, the
// event output line, --url and channel path encoding. The commands
// themselves are tested against the real binary (tests/integration/python/
// test_cli.py).
#include <gtest/gtest.h>

#include "cli/server_message.hpp"
#include "cli/server_url.hpp"

namespace herald::cli {
namespace {

TEST(CliServerMessage, EventKeepsRawFieldsAndPrintsTheOutputLine) {
  const auto m = parse_server_message(
      R"({"type":"event","channel":"chat:a","event":"m","offset":42,"ts":1763770000000,)"
      R"("from":{"client":"c1","user":"ana"},"data":{"n":1e400, "s":"\u00e9"}})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, "event");
  EXPECT_EQ(m->ev.channel, "chat:a");
  EXPECT_EQ(m->ev.offset, 42u);
  EXPECT_EQ(m->ev.data, R"({"n":1e400, "s":"\u00e9"})");
  std::string line;
  append_event_line(line, m->ev, "ep1");
  EXPECT_EQ(line, R"({"channel":"chat:a","event":"m","offset":42,"epoch":"ep1","ts":1763770000000,)"
                  R"("from":{"client":"c1","user":"ana"},"data":{"n":1e400, "s":"\u00e9"}})"
                  "\n");
}

TEST(CliServerMessage, EphemeralEventHasNoOffsetInTheLine) {
  const auto m =
      parse_server_message(R"({"type":"event","channel":"c","event":"typing","ts":1,"data":null})");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->ev.offset);
  std::string line;
  append_event_line(line, m->ev, "e");
  EXPECT_EQ(line, R"({"channel":"c","event":"typing","epoch":"e","ts":1,"data":null})"
                  "\n");
}

TEST(CliServerMessage, SubscribedWithEventsAndAnHttpHistoryBody) {
  const auto m = parse_server_message(
      R"({"type":"subscribed","id":3,"channel":"c","epoch":"x","offset":2,"recovered":false,)"
      R"("events":[{"type":"event","channel":"c","event":"e","offset":1,"ts":5,"data":"a\"b"},)"
      R"({"type":"event","channel":"c","event":"e","offset":2,"ts":6,"data":[1]}]})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, "3");
  EXPECT_EQ(m->recovered, false);
  ASSERT_EQ(m->events.size(), 2u);
  EXPECT_EQ(m->events[0].data, R"("a\"b")");
  EXPECT_EQ(m->events[1].offset, 2u);
  const auto h = parse_server_message(R"({"channel":"c","epoch":"x","offset":0,"events":[]})");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->type, "");
  EXPECT_EQ(h->epoch, "x");
  EXPECT_TRUE(h->events.empty());
}

TEST(CliServerMessage, ErrorsAndPresence) {
  const auto e = parse_server_message(
      R"({"type":"error","code":"forbidden","message":"publish on f:x is not allowed"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(describe_error(*e), "forbidden: publish on f:x is not allowed");
  const auto p = parse_server_message(
      R"({"channel":"r","members":[{"client":"c1","info":{"a":1}}],"complete":true})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->members, R"([{"client":"c1","info":{"a":1}}])");
  EXPECT_EQ(p->complete, "true");
}

TEST(CliServerMessage, NotTheProtocolIsRefused) {
  std::string why;
  EXPECT_FALSE(parse_server_message("<html>", &why));
  EXPECT_FALSE(parse_server_message("[1]", &why));
  EXPECT_FALSE(parse_server_message(R"({"offset":"x"})", &why));
  EXPECT_FALSE(parse_server_message(R"({"a":1} x)", &why));
}

TEST(CliServerUrl, BasePathWsPathAndErrors) {
  std::string why;
  auto u = parse_server_url("http://localhost:8080", "/ws", &why);
  ASSERT_TRUE(u) << why;
  EXPECT_EQ(u->endpoint.host, "localhost");
  EXPECT_EQ(u->endpoint.port, "8080");
  EXPECT_EQ(u->ws_target, "/ws");
  EXPECT_EQ(api_target(*u, "/api/publish"), "/api/publish");
  u = parse_server_url("ws://h/herald/", "/socket", &why);
  ASSERT_TRUE(u) << why;
  EXPECT_EQ(u->endpoint.port, "80");
  EXPECT_EQ(u->ws_target, "/herald/socket");
  EXPECT_EQ(api_target(*u, "/api/publish"), "/herald/api/publish");
  EXPECT_EQ(host_port(u->endpoint), "h:80");
  EXPECT_EQ(host_header(u->endpoint), "h");
  u = parse_server_url("http://[::1]:9000", "/ws", &why);
  ASSERT_TRUE(u) << why;
  EXPECT_EQ(host_port(u->endpoint), "[::1]:9000");
  EXPECT_EQ(host_header(u->endpoint), "[::1]:9000");
  u = parse_server_url("wss://example.com", "/ws", &why);
  ASSERT_TRUE(u) << why;
  EXPECT_TRUE(u->endpoint.tls);
  EXPECT_EQ(host_header(u->endpoint), "example.com");
  EXPECT_FALSE(parse_server_url("ftp://h", "/ws", &why));
  EXPECT_FALSE(parse_server_url("http://h/?a=1", "/ws", &why));
  EXPECT_FALSE(parse_server_url("http://h", "ws", &why));
}

TEST(CliServerUrl, ChannelsArePercentEncodedAsOnePathSegment) {
  EXPECT_EQ(percent_encode("chat:a/b#c,d@e=f"), "chat%3Aa%2Fb%23c%2Cd%40e%3Df");
  EXPECT_EQ(percent_encode("A-z_0.9~"), "A-z_0.9~");
}

}  // namespace
}  // namespace herald::cli
