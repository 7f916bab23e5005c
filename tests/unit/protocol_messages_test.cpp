// Unit tests for the server -> client message builders
// (src/protocol/messages.cpp): exact output and field order, escaping, and
// that every message parses back as valid JSON (checked with Boost.JSON, an
// independent parser).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <variant>

#include "protocol/command.hpp"
#include "protocol/messages.hpp"

namespace herald::protocol {
namespace {

boost::json::value parse_back(const std::string& text) {
  boost::json::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 1024;
  boost::json::value v = boost::json::parse(text, ec, {}, opts);
  EXPECT_FALSE(ec) << "not valid JSON: " << text << " (" << ec.message() << ")";
  return v;
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// What a JSON string literal decodes to, via Boost.JSON.
std::string decode(const std::string& literal) {
  boost::json::value v = parse_back(literal);
  if (!v.is_string()) {
    ADD_FAILURE() << "not a string: " << literal;
    return {};
  }
  return std::string(v.as_string());
}

// An EventView with the fields `set` assigns, the rest left at defaults.
template <typename F>
EventView ev(F set) {
  EventView v;
  set(v);
  return v;
}

// ---- append_json_string ----

TEST(JsonString, PlainTextIsQuoted) {
  EXPECT_EQ(json_string(""), R"("")");
  EXPECT_EQ(json_string("hello world"), R"("hello world")");
  EXPECT_EQ(json_string("chat:lobby/1@x=y"), R"("chat:lobby/1@x=y")");
}

TEST(JsonString, QuotesBackslashesAndShortEscapes) {
  EXPECT_EQ(json_string("a\"b"), R"("a\"b")");
  EXPECT_EQ(json_string("a\\b"), R"("a\\b")");
  EXPECT_EQ(json_string("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(json_string("/"), R"("/")");
}

TEST(JsonString, OtherControlCharactersUseUnicodeEscapes) {
  EXPECT_EQ(json_string(std::string_view("\0", 1)), R"("\u0000")");
  EXPECT_EQ(json_string("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(json_string("\x0b"), R"("\u000b")");
  EXPECT_EQ(json_string("\x7f"), "\"\x7f\"");  // DEL needs no escape
}

TEST(JsonString, EveryAsciiByteRoundTrips) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
  EXPECT_EQ(decode(json_string(all)), all);
}

TEST(JsonString, Utf8PassesThrough) {
  const std::string s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf";
  EXPECT_EQ(json_string(s), "\"" + s + "\"");
  EXPECT_EQ(decode(json_string(s)), s);
}

TEST(JsonString, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(json_string("a\xff"
                        "b"),
            R"("a\ufffdb")");
  EXPECT_EQ(json_string("\xc3"), R"("\ufffd")");                                // cut sequence
  EXPECT_EQ(json_string("\xc0\xaf"), R"("\ufffd\ufffd")");                      // overlong
  EXPECT_EQ(json_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // surrogate
  EXPECT_EQ(json_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
  for (int b = 0x80; b < 0x100; ++b) {
    const std::string s = std::string("x") + static_cast<char>(b) + "\"";
    parse_back(json_string(s));
  }
}

TEST(JsonString, AppendsToExistingContent) {
  std::string out = "prefix:";
  append_json_string(out, "v");
  EXPECT_EQ(out, R"(prefix:"v")");
}

// ---- append_event ----

TEST(Messages, EventWithEverything) {
  std::string out;
  append_event(out, ev([](EventView& v) {
                 v.channel = "chat:lobby";
                 v.event = "chat.message";
                 v.data = R"({"text":"hi"})";
                 v.offset = 42;
                 v.ts_ms = 1763770000000;
                 v.from_client = "c8f2";
                 v.from_user = "ana";
               }));
  EXPECT_EQ(out,
            R"({"type":"event","channel":"chat:lobby","event":"chat.message","offset":42,)"
            R"("ts":1763770000000,"from":{"client":"c8f2","user":"ana"},"data":{"text":"hi"}})");
  parse_back(out);
}

TEST(Messages, PresenceRepliesAndJoinLeave) {
  std::string out;
  std::string members = "[";
  append_member(members, "c1", "ana", R"({"name":"Ana"})");
  members += ',';
  append_member(members, "c2", "", "");
  members += ']';
  append_presence(out, "3", "room:x", members, true);
  EXPECT_EQ(out, R"({"type":"presence","id":3,"channel":"room:x","members":[)"
                 R"({"client":"c1","user":"ana","info":{"name":"Ana"}},{"client":"c2"}],)"
                 R"("complete":true})");
  parse_back(out);
  out.clear();
  append_presence_stats(out, "4", "room:x", 3, std::nullopt);
  EXPECT_EQ(out, R"({"type":"presence_stats","id":4,"channel":"room:x","clients":3})");
  out.clear();
  append_presence_stats(out, "", "room:x", 3, 2);
  EXPECT_EQ(out, R"({"type":"presence_stats","channel":"room:x","clients":3,"users":2})");
  out.clear();
  append_join_leave(out, true, "room:x", "c1", "ana", R"({"name":"Ana"})", true);
  EXPECT_EQ(out, R"({"type":"join","channel":"room:x","client":"c1","user":"ana",)"
                 R"("info":{"name":"Ana"},"user_joined":true})");
  parse_back(out);
  out.clear();
  append_join_leave(out, false, "room:x", "c2", "", "", false);
  EXPECT_EQ(out, R"({"type":"leave","channel":"room:x","client":"c2","user_left":false})");
  out.clear();
  append_destroyed(out, "5", "room:x", "k2p9");
  EXPECT_EQ(out, R"({"type":"destroyed","id":5,"channel":"room:x","epoch":"k2p9"})");
}

TEST(Messages, EphemeralEventHasNoOffset) {
  std::string out;
  append_event(out, ev([](EventView& v) {
                 v.channel = "c";
                 v.event = "typing";
                 v.data = "true";
                 v.ts_ms = 5;
               }));
  EXPECT_EQ(out, R"({"type":"event","channel":"c","event":"typing","ts":5,"data":true})");
  parse_back(out);
}

TEST(Messages, EventFromClientWithoutUser) {
  std::string out;
  append_event(out, ev([](EventView& v) {
                 v.channel = "c";
                 v.event = "e";
                 v.data = "[1]";
                 v.offset = 0;
                 v.ts_ms = 0;
                 v.from_client = "x";
                 v.from_user = "";
               }));
  EXPECT_EQ(out,
            R"({"type":"event","channel":"c","event":"e","offset":0,"ts":0,"from":{"client":"x"},)"
            R"("data":[1]})");
}

TEST(Messages, EventUserWithoutClientIsOmitted) {
  std::string out;
  append_event(out, ev([](EventView& v) {
                 v.channel = "c";
                 v.event = "e";
                 v.data = "1";
                 v.from_user = "u";
               }));
  EXPECT_EQ(out, R"({"type":"event","channel":"c","event":"e","ts":0,"data":1})");
}

TEST(Messages, EventEscapesStringsAndSplicesDataRaw) {
  std::string out;
  append_event(out, ev([](EventView& v) {
                 v.channel = "c";
                 v.event = "e";
                 v.data = R"( {"n":1e400,"s":"\u00e9\n"} )";
                 v.offset = 18446744073709551615ull;
                 v.ts_ms = -1;
                 v.from_client = "cl\"i";
                 v.from_user = "us\ner";
               }));
  EXPECT_EQ(out,
            R"({"type":"event","channel":"c","event":"e","offset":18446744073709551615,"ts":-1,)"
            R"("from":{"client":"cl\"i","user":"us\ner"},"data": {"n":1e400,"s":"\u00e9\n"} })");
  boost::json::value v = parse_back(out);
  EXPECT_EQ(v.at("from").at("client").as_string(), "cl\"i");
  EXPECT_EQ(v.at("from").at("user").as_string(), "us\ner");
}

TEST(Messages, EventWithEmptyDataWritesNull) {
  std::string out;
  append_event(out, ev([](EventView& v) {
                 v.channel = "c";
                 v.event = "e";
               }));
  EXPECT_EQ(out, R"({"type":"event","channel":"c","event":"e","ts":0,"data":null})");
}

TEST(Messages, EventAppendsAfterExistingContent) {
  std::string out = "[";
  append_event(out, ev([](EventView& v) {
                 v.channel = "c";
                 v.event = "e";
                 v.data = "1";
                 v.offset = 1;
               }));
  out += ",";
  append_event(out, ev([](EventView& v) {
                 v.channel = "c";
                 v.event = "e";
                 v.data = "2";
                 v.offset = 2;
               }));
  out += "]";
  boost::json::value v = parse_back(out);
  ASSERT_TRUE(v.is_array());
  EXPECT_EQ(v.as_array().size(), 2u);
}

// ---- append_error ----

TEST(Messages, ErrorWithEverything) {
  std::string out;
  append_error(out, ErrorCode::validation_failed, "data: \"text\" is required", "7",
               R"([{"pointer":"/text","message":"required"}])");
  EXPECT_EQ(out, R"({"type":"error","id":7,"code":"validation_failed",)"
                 R"("message":"data: \"text\" is required",)"
                 R"("details":[{"pointer":"/text","message":"required"}]})");
  parse_back(out);
}

TEST(Messages, ErrorWithoutIdOrDetails) {
  std::string out;
  append_error(out, ErrorCode::invalid_json, "invalid JSON");
  EXPECT_EQ(out, R"({"type":"error","code":"invalid_json","message":"invalid JSON"})");
}

TEST(Messages, ErrorEchoesStringIdRaw) {
  std::string out;
  append_error(out, ErrorCode::not_subscribed, "not subscribed to a", R"("a\"b")");
  EXPECT_EQ(
      out,
      R"({"type":"error","id":"a\"b","code":"not_subscribed","message":"not subscribed to a"})");
  EXPECT_EQ(parse_back(out).at("id").as_string(), "a\"b");
}

TEST(Messages, ErrorCodesAreSnakeCase) {
  for (ErrorCode c : {ErrorCode::bad_request, ErrorCode::invalid_json, ErrorCode::unknown_type,
                      ErrorCode::unauthorized, ErrorCode::token_expired, ErrorCode::forbidden,
                      ErrorCode::unknown_channel, ErrorCode::not_subscribed,
                      ErrorCode::validation_failed, ErrorCode::too_large, ErrorCode::rate_limited,
                      ErrorCode::unavailable, ErrorCode::internal}) {
    std::string out;
    append_error(out, c, "m");
    EXPECT_EQ(parse_back(out).at("code").as_string(), to_string(c));
  }
}

// ---- the other replies ----

TEST(Messages, Connected) {
  std::string out;
  append_connected(out, "1", "c8f2", "ana", 0, 25);
  EXPECT_EQ(out,
            R"({"type":"connected","id":1,"client":"c8f2","user":"ana","ping":25,"version":"1"})");
  out.clear();
  append_connected(out, "", "c8f2", "", 0, 25);
  EXPECT_EQ(out, R"({"type":"connected","client":"c8f2","ping":25,"version":"1"})");
  parse_back(out);
}

TEST(Messages, HookDataAndRpcResult) {
  std::string out;
  append_connected(out, "1", "c8f2", "ana", 0, 25, R"({"theme":"dark"})");
  EXPECT_EQ(out, R"({"type":"connected","id":1,"client":"c8f2","user":"ana","ping":25,)"
                 R"("version":"1","data":{"theme":"dark"}})");
  parse_back(out);
  out.clear();
  append_subscribed(out, "2", "room:1", "e1", 0, std::nullopt, "", R"([1])");
  EXPECT_EQ(out, R"({"type":"subscribed","id":2,"channel":"room:1","epoch":"e1","offset":0,)"
                 R"("events":[],"data":[1]})");
  parse_back(out);
  out.clear();
  append_rpc_result(out, "\"r\"", R"({"id":7})");
  EXPECT_EQ(out, R"({"type":"rpc_result","id":"r","data":{"id":7}})");
  out.clear();
  append_rpc_result(out, "3", "");
  EXPECT_EQ(out, R"({"type":"rpc_result","id":3,"data":null})");
  parse_back(out);
}

TEST(Messages, EventFromCarriesVerifiedInfo) {
  std::string out;
  EventView v;
  v.channel = "c";
  v.event = "e";
  v.data = "1";
  v.ts_ms = 5;
  v.from_client = "k";
  v.from_user = "ana";
  v.from_info = R"({"name":"Ana"})";
  append_event(out, v);
  EXPECT_EQ(out, R"({"type":"event","channel":"c","event":"e","ts":5,)"
                 R"("from":{"client":"k","user":"ana","info":{"name":"Ana"}},"data":1})");
  parse_back(out);
}

TEST(Messages, AuthReplies) {
  std::string out;
  append_connected(out, "1", "c8f2", "ana", 4102444800, 25);
  EXPECT_EQ(out, R"({"type":"connected","id":1,"client":"c8f2","user":"ana","expires":4102444800,)"
                 R"("ping":25,"version":"1"})");
  out.clear();
  append_refreshed(out, "2", 4102444801);
  EXPECT_EQ(out, R"({"type":"refreshed","id":2,"expires":4102444801})");
  out.clear();
  append_sub_refreshed(out, "", "dm:#a,b", 0);
  EXPECT_EQ(out, R"({"type":"sub_refreshed","channel":"dm:#a,b"})");
  out.clear();
  append_error(out, ErrorCode::rate_limited, "slow down", "3", {}, 250);
  EXPECT_EQ(
      out,
      R"({"type":"error","id":3,"code":"rate_limited","message":"slow down","retry_after_ms":250})");
  parse_back(out);
}

TEST(Messages, Subscribed) {
  std::string out;
  append_subscribed(out, "2", "chat:lobby", "x91k", 41, std::nullopt, R"([{"a":1},{"b":2}])");
  EXPECT_EQ(out, R"({"type":"subscribed","id":2,"channel":"chat:lobby","epoch":"x91k","offset":41,)"
                 R"("events":[{"a":1},{"b":2}]})");
  parse_back(out);
  out.clear();
  append_subscribed(out, "", "c", "e", 0, true, "[]");
  EXPECT_EQ(out, R"({"type":"subscribed","channel":"c","epoch":"e","offset":0,"recovered":true,)"
                 R"("events":[]})");
  out.clear();
  append_subscribed(out, "\"s\"", "c", "e", 3, false, "");
  EXPECT_EQ(out, R"({"type":"subscribed","id":"s","channel":"c","epoch":"e","offset":3,)"
                 R"("recovered":false,"events":[]})");
  parse_back(out);
}

TEST(Messages, Unsubscribed) {
  std::string out;
  append_unsubscribed(out, "5", "c");
  EXPECT_EQ(out, R"({"type":"unsubscribed","id":5,"channel":"c"})");
  out.clear();
  append_unsubscribed(out, "", "c", "channel \"closed\"");
  EXPECT_EQ(out, R"({"type":"unsubscribed","channel":"c","reason":"channel \"closed\""})");
  parse_back(out);
}

TEST(Messages, Ack) {
  std::string out;
  append_ack(out, "3", 42);
  EXPECT_EQ(out, R"({"type":"ack","id":3,"offset":42})");
  out.clear();
  append_ack(out, "3", std::nullopt);
  EXPECT_EQ(out, R"({"type":"ack","id":3})");
  out.clear();
  append_ack(out, "", std::nullopt);
  EXPECT_EQ(out, R"({"type":"ack"})");
  parse_back(out);
}

TEST(Messages, History) {
  std::string out;
  append_history(out, "4", "c", "ep", 10, R"([{"offset":9},{"offset":10}])");
  EXPECT_EQ(out, R"({"type":"history","id":4,"channel":"c","epoch":"ep","offset":10,)"
                 R"("events":[{"offset":9},{"offset":10}]})");
  parse_back(out);
  out.clear();
  append_history(out, "", "c", "ep", 0, "");
  EXPECT_EQ(out, R"({"type":"history","channel":"c","epoch":"ep","offset":0,"events":[]})");
}

TEST(Messages, Ping) {
  std::string out;
  append_ping(out);
  EXPECT_EQ(out, R"({"type":"ping"})");
}

// ---- parser -> builder round trip ----

TEST(RoundTrip, ParsedDataAndIdSpliceIntoValidJson) {
  CommandParser parser;
  for (const std::string& data : {
           std::string(R"({"text":"hi \"there\" \\ \u0000 \ud83d\ude00","n":[1e400,-0,0.5e-3]})"),
           std::string("\"\xc3\xa9\xe2\x82\xac\""),
           std::string("[ null , true , false , { } , [ ] ]"),
           std::string("123456789012345678901234567890"),
       }) {
    const std::string text =
        R"({"type":"publish","id":"r\"1","channel":"c","event":"e","data": )" + data + " }";
    auto r = parser.parse(text);
    ASSERT_TRUE(std::holds_alternative<Command>(r)) << text;
    const Command& cmd = std::get<Command>(r);
    std::string out;
    append_event(out, ev([&](EventView& v) {
                   v.channel = cmd.channel;
                   v.event = cmd.event;
                   v.data = cmd.data;
                   v.offset = 1;
                   v.ts_ms = 2;
                   v.from_client = "x";
                 }));
    boost::json::value v = parse_back(out);
    EXPECT_EQ(v.at("data"), parse_back(data));
    std::string ack;
    append_ack(ack, cmd.id, 1);
    EXPECT_EQ(parse_back(ack).at("id").as_string(), "r\"1");
  }
}

TEST(RoundTrip, ErrorMessagesFromTheParserAreValidJson) {
  CommandParser parser;
  for (const std::string& text : {
           std::string(R"({"type":"subscribe","id":1,"channel":"caf\u00e9"})"),
           std::string(R"({"type":"subscribe","id":1,"channel":"a\u0001"})"),
           std::string(R"({"type":"\u0000\"\\\n\ud83d\ude00"})"),
           std::string("{\"type\":\"pong\",\"x\":[,]}"),
       }) {
    auto r = parser.parse(text);
    ASSERT_TRUE(std::holds_alternative<CommandError>(r)) << text;
    const CommandError& e = std::get<CommandError>(r);
    std::string out;
    append_error(out, e.code, e.message, e.id);
    boost::json::value v = parse_back(out);
    EXPECT_EQ(v.at("message").as_string(), e.message);
  }
}

}  // namespace
}  // namespace herald::protocol
