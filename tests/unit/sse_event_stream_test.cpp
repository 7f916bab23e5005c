// The SSE wire format (sse/event_stream.hpp): data lines split at every
// line break, the SSE variant of shared WebSocket frames (one or several
// messages, with or without room for the subscriber's id line), the
// combined id and its parsing (epochs with any bytes, wrong entry counts),
// and the /sse query.
#include <gtest/gtest.h>

#include <string>

#include "sse/event_stream.hpp"

namespace herald::sse {
namespace {

TEST(SseDataLines, OneLinePerLineOfTheJson) {
  std::string out;
  append_data_lines(out, R"({"a":1})");
  EXPECT_EQ(out, "data: {\"a\":1}\n");
  out.clear();
  append_data_lines(out, "{\n \"a\": 1,\r\n \"b\": 2\r}");
  EXPECT_EQ(out, "data: {\ndata:  \"a\": 1,\ndata:  \"b\": 2\ndata: }\n");
  out.clear();
  append_data_lines(out, "x\n");  // a trailing break is an empty last line
  EXPECT_EQ(out, "data: x\ndata: \n");
}

TEST(SseVariant, EventFramesLeaveRoomForTheIdLine) {
  ws::FrameWriter w;
  w.payload().append(R"({"type":"event","offset":7})");
  const auto stored = w.finish(ws::Opcode::text, 7);
  EXPECT_EQ(variant_of(*stored)->bytes(), "data: {\"type\":\"event\",\"offset\":7}\n");
  EXPECT_EQ(variant_of(*stored).get(), variant_of(*stored).get());  // built once
  const auto ephemeral = ws::make_frame(R"({"type":"event"})");
  EXPECT_EQ(variant_of(*ephemeral)->bytes(), "data: {\"type\":\"event\"}\n\n");
}

TEST(SseVariant, OneChannelStreamsShareTheWholeMessage) {
  ws::FrameWriter w;
  w.payload().append(R"({"type":"event","offset":9})");
  const auto frame = w.finish(ws::Opcode::text, 9);
  const auto* m = single_channel_message(*frame, "e:1");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ((*m)->bytes(), "data: {\"type\":\"event\",\"offset\":9}\nid: e%3A1:9\n\n");
  EXPECT_EQ(single_channel_message(*frame, "e:1"), m);
  EXPECT_EQ(single_channel_message(*frame, "other"), nullptr);  // makes its own id line
}

TEST(SseVariant, SeveralMessagesInOneFrameAndLongPayloads) {
  auto frames = std::make_shared<ws::Frame>();
  const std::string big(70000, 'x');  // a 64-bit length header
  frames->storage = std::string(ws::make_frame("{\"a\":1}")->bytes()) +
                    std::string(ws::make_frame("\"" + std::string(300, 'y') + "\"")->bytes()) +
                    std::string(ws::make_frame("\"" + big + "\"")->bytes());
  EXPECT_EQ(variant_of(*frames)->bytes(), "data: {\"a\":1}\n\ndata: \"" + std::string(300, 'y') +
                                              "\"\n\ndata: \"" + big + "\"\n\n");
}

TEST(SseId, OneChannelIsEpochColonOffset) {
  EXPECT_EQ(encode_id({Position{"x91k", 43}}), "x91k:43");
  auto back = decode_id("x91k:43", 1);
  ASSERT_TRUE(back);
  ASSERT_TRUE((*back)[0]);
  EXPECT_EQ((*back)[0]->epoch, "x91k");
  EXPECT_EQ((*back)[0]->offset, 43u);
}

TEST(SseId, SeveralChannelsAnyEpochBytesAndEmptyEntries) {
  std::vector<std::optional<Position>> p = {Position{"a:b,c%d e", 1}, std::nullopt,
                                            Position{"", 0}};
  const std::string id = encode_id(p);
  EXPECT_EQ(id, "a%3Ab%2Cc%25d%20e:1,,:0");
  auto back = decode_id(id, 3);
  ASSERT_TRUE(back);
  EXPECT_EQ((*back)[0]->epoch, "a:b,c%d e");
  EXPECT_FALSE((*back)[1]);
  EXPECT_EQ((*back)[2]->epoch, "");
  EXPECT_EQ((*back)[2]->offset, 0u);
}

TEST(SseId, MalformedIdsAreRefused) {
  EXPECT_FALSE(decode_id("x:1", 2));      // too few entries
  EXPECT_FALSE(decode_id("x:1,y:2", 1));  // too many
  EXPECT_FALSE(decode_id("x", 1));        // no offset
  EXPECT_FALSE(decode_id("x:", 1));
  EXPECT_FALSE(decode_id("x:1a", 1));
  EXPECT_FALSE(decode_id("x:-1", 1));
  EXPECT_FALSE(decode_id("%zz:1", 1));
  EXPECT_FALSE(decode_id("x:99999999999999999999999", 1));
}

TEST(SseQuery, ChannelsInOrderTokenAndLastEventId) {
  auto q = parse_query(
      "/sse?channel=a&token=t.k.n&channel=dm%3A%23ana%2Cbob&x=1&last_event_id=e%3A1", 8);
  EXPECT_EQ(q.error, "");
  EXPECT_EQ(q.channels, (std::vector<std::string>{"a", "dm:#ana,bob"}));
  EXPECT_EQ(q.token, "t.k.n");
  EXPECT_EQ(q.last_event_id, "e:1");
  EXPECT_NE(parse_query("/sse", 8).error, "");
  EXPECT_NE(parse_query("/sse?token=x", 8).error, "");
  EXPECT_NE(parse_query("/sse?channel=a&channel=b&channel=c", 2).error, "");
  EXPECT_NE(parse_query("/sse?channel=%4", 2).error, "");
}

TEST(SseCookie, FindsTheNamedCookie) {
  EXPECT_EQ(cookie_value("a=b; herald_token=xyz; c=d", "herald_token"), "xyz");
  EXPECT_EQ(cookie_value("herald_token=\"q\"", "herald_token"), "q");
  EXPECT_EQ(cookie_value("xherald_token=1", "herald_token"), "");
  EXPECT_EQ(cookie_value("", "herald_token"), "");
}

}  // namespace
}  // namespace herald::sse
