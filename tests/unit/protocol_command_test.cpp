// Unit tests for the protocol v1 command parser (src/protocol/command.cpp):
// every command and field, every error the parser can produce (with the
// request id echoed), byte-exact raw `data`, and hostile input.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "protocol/command.hpp"
#include "protocol/errors.hpp"

namespace herald::protocol {
namespace {

class CommandParserTest : public ::testing::Test {
 protected:
  Command ok(std::string_view text) {
    auto r = parser_.parse(text);
    if (auto* e = std::get_if<CommandError>(&r)) {
      ADD_FAILURE() << "unexpected error for " << text << ": " << to_string(e->code) << " "
                    << e->message;
      return {};
    }
    return std::get<Command>(std::move(r));
  }

  CommandError fail(std::string_view text) {
    auto r = parser_.parse(text);
    if (std::holds_alternative<Command>(r)) {
      ADD_FAILURE() << "expected an error for " << text;
      return {};
    }
    return std::get<CommandError>(std::move(r));
  }

  void expect_error(std::string_view text, ErrorCode code, std::string_view message,
                    std::string_view id = {}) {
    const CommandError e = fail(text);
    EXPECT_EQ(to_string(e.code), to_string(code)) << text;
    EXPECT_EQ(e.message, message) << text;
    EXPECT_EQ(e.id, id) << text;
  }

  void expect_invalid_json(std::string_view text, std::string_view id = {}) {
    const CommandError e = fail(text);
    EXPECT_EQ(to_string(e.code), "invalid_json") << text;
    EXPECT_EQ(e.id, id) << text;
    EXPECT_FALSE(e.message.empty());
  }

  CommandParser parser_;
};

// ---- every command, every field ----

TEST_F(CommandParserTest, ConnectMinimal) {
  Command c = ok(R"({"type":"connect"})");
  EXPECT_EQ(c.type, CommandType::connect);
  EXPECT_EQ(c.id, "");
  EXPECT_EQ(c.token, "");
  EXPECT_EQ(c.data, "");
}

TEST_F(CommandParserTest, ConnectWithAllFields) {
  Command c = ok(R"({"type":"connect","id":1,"token":"eyJ.a.b","data":{"name":"ana","n":[1,2]}})");
  EXPECT_EQ(c.type, CommandType::connect);
  EXPECT_EQ(c.id, "1");
  EXPECT_EQ(c.token, "eyJ.a.b");
  EXPECT_EQ(c.data, R"({"name":"ana","n":[1,2]})");
}

TEST_F(CommandParserTest, ConnectDataMayBeAnyJson) {
  EXPECT_EQ(ok(R"({"type":"connect","data":null})").data, "null");
  EXPECT_EQ(ok(R"({"type":"connect","data":"x"})").data, R"("x")");
  EXPECT_EQ(ok(R"({"type":"connect","data":[]})").data, "[]");
}

TEST_F(CommandParserTest, SubscribeMinimal) {
  Command c = ok(R"({"type":"subscribe","channel":"chat:lobby"})");
  EXPECT_EQ(c.type, CommandType::subscribe);
  EXPECT_EQ(c.channel, "chat:lobby");
  EXPECT_FALSE(c.history);
  EXPECT_FALSE(c.recover);
  EXPECT_EQ(c.token, "");
}

TEST_F(CommandParserTest, SubscribeWithAllFields) {
  Command c = ok(R"({"type":"subscribe","id":"s-2","channel":"chat:lobby","history":2,)"
                 R"("recover":{"epoch":"x91k","offset":41},"token":"chan-token"})");
  EXPECT_EQ(c.type, CommandType::subscribe);
  EXPECT_EQ(c.id, R"("s-2")");
  EXPECT_EQ(c.channel, "chat:lobby");
  ASSERT_TRUE(c.history);
  EXPECT_EQ(*c.history, 2u);
  ASSERT_TRUE(c.recover);
  EXPECT_EQ(c.recover->epoch, "x91k");
  EXPECT_EQ(c.recover->offset, 41u);
  EXPECT_EQ(c.token, "chan-token");
}

TEST_F(CommandParserTest, SubscribeRecoverIgnoresExtraKeysAndAcceptsZero) {
  Command c =
      ok(R"({"type":"subscribe","channel":"a","recover":{"x":[1,{"y":2}],"offset":0,"epoch":""}})");
  ASSERT_TRUE(c.recover);
  EXPECT_EQ(c.recover->epoch, "");
  EXPECT_EQ(c.recover->offset, 0u);
}

TEST_F(CommandParserTest, SubscribeHistoryLimits) {
  EXPECT_EQ(*ok(R"({"type":"subscribe","channel":"a","history":0})").history, 0u);
  EXPECT_EQ(*ok(R"({"type":"subscribe","channel":"a","history":18446744073709551615})").history,
            18446744073709551615ull);
}

TEST_F(CommandParserTest, Unsubscribe) {
  Command c = ok(R"({"type":"unsubscribe","id":9,"channel":"room/1"})");
  EXPECT_EQ(c.type, CommandType::unsubscribe);
  EXPECT_EQ(c.id, "9");
  EXPECT_EQ(c.channel, "room/1");
}

TEST_F(CommandParserTest, PublishWithAllFields) {
  Command c = ok(R"({"type":"publish","id":3,"channel":"chat:lobby","event":"chat.message",)"
                 R"("data":{"text":"hi"},"ephemeral":true})");
  EXPECT_EQ(c.type, CommandType::publish);
  EXPECT_EQ(c.id, "3");
  EXPECT_EQ(c.channel, "chat:lobby");
  EXPECT_EQ(c.event, "chat.message");
  EXPECT_EQ(c.data, R"({"text":"hi"})");
  EXPECT_TRUE(c.ephemeral);
}

TEST_F(CommandParserTest, PublishIdempotencyKey) {
  Command c = ok(R"({"type":"publish","channel":"a","event":"e","data":1,)"
                 R"("idempotency_key":"3f2b8c1e-7d4a-4b0e-9c51-0a1b2c3d4e5f"})");
  EXPECT_EQ(c.idempotency_key, "3f2b8c1e-7d4a-4b0e-9c51-0a1b2c3d4e5f");
  EXPECT_EQ(ok(R"({"type":"publish","channel":"a","event":"e","data":1})").idempotency_key, "");
  expect_error(
      R"({"type":"publish","id":1,"channel":"a","event":"e","data":1,"idempotency_key":""})",
      ErrorCode::bad_request, "idempotency_key: must not be empty", "1");
  expect_error(
      R"({"type":"publish","id":2,"channel":"a","event":"e","data":1,"idempotency_key":"a b"})",
      ErrorCode::bad_request,
      "idempotency_key: invalid character ' ' at 1; allowed: letters, digits and _-.:", "2");
  expect_error(
      R"({"type":"publish","id":3,"channel":"a","event":"e","data":1,"idempotency_key":7})",
      ErrorCode::bad_request, "idempotency_key: must be a string", "3");
  expect_error(R"({"type":"publish","id":4,"channel":"a","event":"e","data":1,)"
               R"("idempotency_key":")" +
                   std::string(129, 'k') + R"("})",
               ErrorCode::bad_request, "idempotency_key: too long (max 128 bytes)", "4");
  expect_error(R"({"type":"publish","id":5,"channel":"a","event":"e","data":1,"ephemeral":true,)"
               R"("idempotency_key":"k"})",
               ErrorCode::bad_request,
               "idempotency_key: not allowed on ephemeral events (they are never stored)", "5");
}

TEST_F(CommandParserTest, PublishEphemeralDefaultsToFalse) {
  EXPECT_FALSE(ok(R"({"type":"publish","channel":"a","event":"e","data":1})").ephemeral);
  EXPECT_FALSE(
      ok(R"({"type":"publish","channel":"a","event":"e","data":1,"ephemeral":false})").ephemeral);
}

TEST_F(CommandParserTest, HistoryWithAllFields) {
  Command c = ok(R"({"type":"history","id":4,"channel":"a","limit":10,"before":50,"after":20})");
  EXPECT_EQ(c.type, CommandType::history);
  EXPECT_EQ(c.channel, "a");
  EXPECT_EQ(*c.limit, 10u);
  EXPECT_EQ(*c.before, 50u);
  EXPECT_EQ(*c.after, 20u);
}

TEST_F(CommandParserTest, HistoryMinimal) {
  Command c = ok(R"({"type":"history","channel":"a"})");
  EXPECT_FALSE(c.limit);
  EXPECT_FALSE(c.before);
  EXPECT_FALSE(c.after);
}

TEST_F(CommandParserTest, Presence) {
  Command c = ok(R"({"type":"presence","id":"p","channel":"a"})");
  EXPECT_EQ(c.type, CommandType::presence);
  EXPECT_EQ(c.channel, "a");
  EXPECT_EQ(c.id, R"("p")");
}

TEST_F(CommandParserTest, PresenceStats) {
  Command c = ok(R"({"type":"presence_stats","id":1,"channel":"a"})");
  EXPECT_EQ(c.type, CommandType::presence_stats);
  EXPECT_EQ(c.channel, "a");
  expect_error(R"({"type":"presence_stats","id":1})", ErrorCode::bad_request,
               "channel: required string", "1");
}

TEST_F(CommandParserTest, DestroyWithAndWithoutFinalEvent) {
  Command c = ok(R"({"type":"destroy","id":2,"channel":"room:x"})");
  EXPECT_EQ(c.type, CommandType::destroy);
  EXPECT_EQ(c.channel, "room:x");
  EXPECT_EQ(c.event, "");
  EXPECT_EQ(c.data, "");
  c = ok(R"({"type":"destroy","channel":"room:x","event":"chat.destroy","data": {"by":"ana"} })");
  EXPECT_EQ(c.event, "chat.destroy");
  EXPECT_EQ(c.data, R"({"by":"ana"})");
  c = ok(R"({"type":"destroy","channel":"room:x","event":"chat.destroy"})");
  EXPECT_EQ(c.data, "");
  expect_error(R"({"type":"destroy","id":3,"channel":"room:x","data":1})", ErrorCode::bad_request,
               "data: needs an event (the final event's name)", "3");
  expect_error(R"({"type":"destroy","id":4,"channel":"room:x","event":"bad name"})",
               ErrorCode::bad_request,
               "event: invalid character ' ' at 3; allowed: letters, digits and _-.:", "4");
  expect_error(R"({"type":"destroy","id":5,"channel":"room:x","event":7})", ErrorCode::bad_request,
               "event: must be a string", "5");
}

TEST_F(CommandParserTest, Rpc) {
  Command c = ok(R"({"type":"rpc","id":3,"method":"todos.add","data":{"title":"milk"}})");
  EXPECT_EQ(c.type, CommandType::rpc);
  EXPECT_EQ(c.method, "todos.add");
  EXPECT_EQ(c.data, R"({"title":"milk"})");
  EXPECT_EQ(ok(R"({"type":"rpc","method":"m"})").data, "null");
  EXPECT_EQ(fail(R"({"type":"rpc","data":1})").message, "method: required string");
  EXPECT_EQ(fail(R"({"type":"rpc","method":""})").message, "method: must be 1 to 128 bytes");
  EXPECT_EQ(fail(R"({"type":"rpc","method":7})").code, ErrorCode::bad_request);
  EXPECT_EQ(to_string(CommandType::rpc), "rpc");
}

TEST_F(CommandParserTest, SubscribeDataIsKeptForTheHook) {
  EXPECT_EQ(ok(R"({"type":"subscribe","channel":"a","data":{"pin":1}})").data, R"({"pin":1})");
  EXPECT_EQ(ok(R"({"type":"subscribe","channel":"a"})").data, "");
}

TEST_F(CommandParserTest, Pong) {
  Command c = ok(R"({"type":"pong"})");
  EXPECT_EQ(c.type, CommandType::pong);
}

TEST_F(CommandParserTest, FieldOrderDoesNotMatter) {
  Command c = ok(R"({"data":[1],"channel":"a","id":7,"event":"e","type":"publish"})");
  EXPECT_EQ(c.type, CommandType::publish);
  EXPECT_EQ(c.id, "7");
  EXPECT_EQ(c.data, "[1]");
}

TEST_F(CommandParserTest, UnknownAndIrrelevantFieldsAreIgnored) {
  Command c =
      ok(R"({"type":"pong","x":{"deep":[1,2,{"a":null}]},"channel":5,"history":-1,"event":{}})");
  EXPECT_EQ(c.type, CommandType::pong);
  c = ok(R"({"type":"unsubscribe","channel":"a","data":"ignored","limit":"x"})");
  EXPECT_EQ(c.channel, "a");
  EXPECT_EQ(c.data, "");
}

TEST_F(CommandParserTest, EscapedKeysAndValuesAreUnescaped) {
  Command c = ok(R"({"\u0074ype":"subscribe","chan\u006eel":"chat\u003alobby"})");
  EXPECT_EQ(c.type, CommandType::subscribe);
  EXPECT_EQ(c.channel, "chat:lobby");
  c = ok(R"({"type":"connect","token":"a\"b\\c\u00e9\ud83d\ude00"})");
  EXPECT_EQ(c.token, "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80");
}

TEST_F(CommandParserTest, CommandTypeNames) {
  EXPECT_EQ(to_string(CommandType::connect), "connect");
  EXPECT_EQ(to_string(CommandType::subscribe), "subscribe");
  EXPECT_EQ(to_string(CommandType::unsubscribe), "unsubscribe");
  EXPECT_EQ(to_string(CommandType::publish), "publish");
  EXPECT_EQ(to_string(CommandType::history), "history");
  EXPECT_EQ(to_string(CommandType::presence), "presence");
  EXPECT_EQ(to_string(CommandType::pong), "pong");
  EXPECT_EQ(to_string(CommandType::presence_stats), "presence_stats");
  EXPECT_EQ(to_string(CommandType::destroy), "destroy");
}

// ---- id ----

TEST_F(CommandParserTest, IdIsKeptAsRawToken) {
  EXPECT_EQ(ok(R"({"type":"pong","id":  42  })").id, "42");
  EXPECT_EQ(ok(R"({"type":"pong","id":-1.5e3})").id, "-1.5e3");
  EXPECT_EQ(ok(R"({"type":"pong","id":1e400})").id, "1e400");
  EXPECT_EQ(ok(R"({"type":"pong","id":"a\"b\u00e9"  ,"x":1})").id, R"("a\"b\u00e9")");
  EXPECT_EQ(ok("{\"type\":\"pong\",\"id\":\n\t7\r\n}").id, "7");
  EXPECT_EQ(ok(R"({"type":"pong","id":""})").id, R"("")");
}

TEST_F(CommandParserTest, IdOfWrongTypeIsBadRequestWithoutEcho) {
  for (const char* text : {R"({"type":"pong","id":null})", R"({"type":"pong","id":true})",
                           R"({"type":"pong","id":{"a":1}})", R"({"type":"pong","id":[1]})"}) {
    expect_error(text, ErrorCode::bad_request, "id: must be a number or a string");
  }
}

TEST_F(CommandParserTest, IdIsCheckedBeforeType) {
  expect_error(R"({"type":"nope","id":[]})", ErrorCode::bad_request,
               "id: must be a number or a string");
}

TEST_F(CommandParserTest, DuplicateIdIsBadRequestEchoingTheFirst) {
  expect_error(R"({"type":"pong","id":1,"id":2})", ErrorCode::bad_request, "id: duplicate field",
               "1");
}

// ---- type ----

TEST_F(CommandParserTest, MissingOrWrongTypeIsBadRequest) {
  expect_error(R"({})", ErrorCode::bad_request, "type: required string");
  expect_error(R"({"id":5})", ErrorCode::bad_request, "type: required string", "5");
  expect_error(R"({"id":5,"type":1})", ErrorCode::bad_request, "type: required string", "5");
  expect_error(R"({"type":null,"id":"x"})", ErrorCode::bad_request, "type: required string",
               R"("x")");
  expect_error(R"({"type":["pong"]})", ErrorCode::bad_request, "type: required string");
}

TEST_F(CommandParserTest, DuplicateTypeIsBadRequest) {
  expect_error(R"({"type":"pong","id":2,"type":"pong"})", ErrorCode::bad_request,
               "type: duplicate field", "2");
}

TEST_F(CommandParserTest, UnknownTypeNamesIt) {
  const CommandError e = fail(R"({"type":"subscribee","id":8})");
  EXPECT_EQ(e.code, ErrorCode::unknown_type);
  EXPECT_EQ(e.id, "8");
  EXPECT_NE(e.message.find("'subscribee'"), std::string::npos) << e.message;
  // Types are case sensitive.
  EXPECT_EQ(fail(R"({"type":"Publish"})").code, ErrorCode::unknown_type);
}

TEST_F(CommandParserTest, UnknownTypeMessageIsTruncated) {
  const std::string name(1000, 'x');
  const CommandError e = fail(R"({"type":")" + name + R"("})");
  EXPECT_EQ(e.code, ErrorCode::unknown_type);
  EXPECT_LT(e.message.size(), 250u);  // 1000 bytes of name cut to 64
  // Truncation never splits a UTF-8 character.
  std::string multi;
  for (int i = 0; i < 100; ++i) multi += "\xc3\xa9";
  const CommandError e2 = fail(R"({"type":")" + multi + R"("})");
  EXPECT_EQ(e2.message.find("\xc3'"), std::string::npos);
  EXPECT_NE(e2.message.find("\xc3\xa9..."), std::string::npos) << e2.message;
}

// ---- field errors ----

TEST_F(CommandParserTest, ChannelRequired) {
  for (const char* type : {"subscribe", "unsubscribe", "publish", "history", "presence"}) {
    const std::string t = type;
    expect_error(R"({"type":")" + t + R"(","id":1})", ErrorCode::bad_request,
                 "channel: required string", "1");
    expect_error(R"({"type":")" + t + R"(","id":1,"channel":7})", ErrorCode::bad_request,
                 "channel: required string", "1");
    expect_error(R"({"type":")" + t + R"(","id":1,"channel":null})", ErrorCode::bad_request,
                 "channel: required string", "1");
    expect_error(R"({"type":")" + t + R"(","id":1,"channel":"a","channel":"b"})",
                 ErrorCode::bad_request, "channel: duplicate field", "1");
  }
}

TEST_F(CommandParserTest, ChannelNameIsValidated) {
  expect_error(R"({"type":"subscribe","id":1,"channel":""})", ErrorCode::bad_request,
               "channel: must not be empty", "1");
  expect_error(R"({"type":"subscribe","id":1,"channel":"abc!"})", ErrorCode::bad_request,
               "channel: invalid character '!' at 3; allowed: letters, digits and _-:.@=/#,", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a b","event":"e","data":1})",
               ErrorCode::bad_request,
               "channel: invalid character ' ' at 1; allowed: letters, digits and _-:.@=/#,", "1");
  const std::string longest(255, 'a');
  EXPECT_EQ(ok(R"({"type":"subscribe","channel":")" + longest + R"("})").channel, longest);
  expect_error(R"({"type":"subscribe","id":1,"channel":")" + longest + R"(a"})",
               ErrorCode::bad_request, "channel: too long (max 255 bytes)", "1");
  EXPECT_EQ(ok(R"({"type":"subscribe","channel":"Az09_-:.@=/"})").channel, "Az09_-:.@=/");
}

TEST_F(CommandParserTest, ChannelLengthLimitIsConfigurable) {
  ParserLimits limits;
  limits.max_channel_length = 3;
  limits.max_event_length = 2;
  CommandParser p(limits);
  auto r = p.parse(R"({"type":"subscribe","channel":"abcd"})");
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).message, "channel: too long (max 3 bytes)");
  r = p.parse(R"({"type":"publish","channel":"abc","event":"abc","data":1})");
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).message, "event: too long (max 2 bytes)");
}

TEST_F(CommandParserTest, PublishFieldErrors) {
  expect_error(R"({"type":"publish","id":1,"channel":"a","data":1})", ErrorCode::bad_request,
               "event: required string", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":3,"data":1})",
               ErrorCode::bad_request, "event: required string", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"chat message","data":1})",
               ErrorCode::bad_request,
               "event: invalid character ' ' at 4; allowed: letters, digits and _-.:", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"a/b","data":1})",
               ErrorCode::bad_request,
               "event: invalid character '/' at 1; allowed: letters, digits and _-.:", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"","data":1})",
               ErrorCode::bad_request, "event: must not be empty", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":")" + std::string(129, 'e') +
                   R"(","data":1})",
               ErrorCode::bad_request, "event: too long (max 128 bytes)", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"e"})", ErrorCode::bad_request,
               "data: required (any JSON value)", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"e","data":1,"data":2})",
               ErrorCode::bad_request, "data: duplicate field", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"e","data":1,"ephemeral":1})",
               ErrorCode::bad_request, "ephemeral: must be a boolean", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"e","data":1,"ephemeral":"true"})",
               ErrorCode::bad_request, "ephemeral: must be a boolean", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"e","event":"e","data":1})",
               ErrorCode::bad_request, "event: duplicate field", "1");
}

TEST_F(CommandParserTest, FieldErrorsComeInDocumentedOrder) {
  // channel before event before data.
  expect_error(R"({"type":"publish","id":1,"channel":"!","event":"!"})", ErrorCode::bad_request,
               "channel: invalid character '!' at 0; allowed: letters, digits and _-:.@=/#,", "1");
  expect_error(R"({"type":"publish","id":1,"channel":"a","event":"!"})", ErrorCode::bad_request,
               "event: invalid character '!' at 0; allowed: letters, digits and _-.:", "1");
}

TEST_F(CommandParserTest, NonNegativeIntegerFields) {
  struct Case {
    const char* type;
    const char* field;
  };
  for (const Case& c : {Case{"subscribe", "history"}, Case{"history", "limit"},
                        Case{"history", "before"}, Case{"history", "after"}}) {
    const std::string prefix =
        std::string(R"({"type":")") + c.type + R"(","id":"q","channel":"a",")" + c.field + "\":";
    const std::string message = std::string(c.field) + ": must be a non-negative integer";
    for (const char* bad : {"-1", "1.5", "1e2", "18446744073709551616", "\"5\"", "null", "true",
                            "[1]", "{}", "-0.0"}) {
      expect_error(prefix + bad + "}", ErrorCode::bad_request, message, R"("q")");
    }
    expect_error(prefix + "1,\"" + c.field + "\":2}", ErrorCode::bad_request,
                 std::string(c.field) + ": duplicate field", R"("q")");
  }
}

TEST_F(CommandParserTest, TokenMustBeAString) {
  expect_error(R"({"type":"connect","id":1,"token":5})", ErrorCode::bad_request,
               "token: must be a string", "1");
  expect_error(R"({"type":"subscribe","id":1,"channel":"a","token":null})", ErrorCode::bad_request,
               "token: must be a string", "1");
}

TEST_F(CommandParserTest, RecoverErrors) {
  const std::string p = R"({"type":"subscribe","id":2,"channel":"a","recover":)";
  const char* shape = "recover: must be an object {\"epoch\": string, \"offset\": integer}";
  expect_error(p + "1}", ErrorCode::bad_request, shape, "2");
  expect_error(p + "null}", ErrorCode::bad_request, shape, "2");
  expect_error(p + "[\"e\",1]}", ErrorCode::bad_request, shape, "2");
  expect_error(p + R"({"offset":1}})", ErrorCode::bad_request, "recover.epoch: required string",
               "2");
  expect_error(p + R"({"epoch":1,"offset":1}})", ErrorCode::bad_request,
               "recover.epoch: required string", "2");
  expect_error(p + R"({"epoch":"e"}})", ErrorCode::bad_request,
               "recover.offset: required non-negative integer", "2");
  expect_error(p + R"({"epoch":"e","offset":-1}})", ErrorCode::bad_request,
               "recover.offset: required non-negative integer", "2");
  expect_error(p + R"({"epoch":"e","offset":"1"}})", ErrorCode::bad_request,
               "recover.offset: required non-negative integer", "2");
  expect_error(p + R"({"epoch":"e","epoch":"f","offset":1}})", ErrorCode::bad_request,
               "recover.epoch: duplicate field", "2");
  expect_error(p + R"({"epoch":"e","offset":1,"offset":1}})", ErrorCode::bad_request,
               "recover.offset: duplicate field", "2");
  expect_error(p + R"({"epoch":"e","offset":1},"recover":{"epoch":"e","offset":1}})",
               ErrorCode::bad_request, "recover: duplicate field", "2");
}

TEST_F(CommandParserTest, DuplicatesOfUnusedFieldsAreIgnored) {
  Command c = ok(R"({"type":"pong","channel":"a","channel":"b","x":1,"x":2})");
  EXPECT_EQ(c.type, CommandType::pong);
}

// ---- invalid JSON ----

TEST_F(CommandParserTest, NotJsonIsInvalidJson) {
  for (const char* text : {
           "",
           " ",
           "x",
           "{",
           "}",
           "{\"type\":\"pong\"",
           "{\"type\":\"pong\",}",
           "{,\"type\":\"pong\"}",
           "{\"type\" \"pong\"}",
           "{\"type\":\"pong\" \"id\":1}",
           "{\"type\":\"pong\"}}",
           "{\"type\":\"pong\"}{}",
           "{\"type\":\"pong\"} x",
           "{\"type\":\"pong\"}]",
           "{'type':'pong'}",
           "{type:\"pong\"}",
           "{\"type\":\"pong\",\"x\":tru}",
           "{\"type\":\"pong\",\"x\":nul}",
           "{\"type\":\"pong\",\"x\":True}",
           "{\"type\":\"pong\",\"x\":01}",
           "{\"type\":\"pong\",\"x\":1.}",
           "{\"type\":\"pong\",\"x\":.5}",
           "{\"type\":\"pong\",\"x\":+1}",
           "{\"type\":\"pong\",\"x\":1e}",
           "{\"type\":\"pong\",\"x\":-}",
           "{\"type\":\"pong\",\"x\":NaN}",
           "{\"type\":\"pong\",\"x\":Infinity}",
           "{\"type\":\"pong\",\"x\":0x10}",
           "{\"type\":\"pong\",\"x\":[1,]}",
           "{\"type\":\"pong\",\"x\":[1 2]}",
           "{\"type\":\"pong\",\"x\":[}",
           "{\"type\":\"pong\",\"x\":{\"a\"}}",
           "{\"type\":\"pong\",\"x\":{\"a\":1,}}",
           "{\"type\":\"pong\",\"x\":{1:2}}",
           "{\"type\":\"pong\",\"x\":\"\\x\"}",
           "{\"type\":\"pong\",\"x\":\"\\u12\"}",
           "{\"type\":\"pong\",\"x\":\"\\ud800\"}",
           "{\"type\":\"pong\",\"x\":\"\\udc00\\ud800\"}",
           "{\"type\":\"pong\",\"x\":\"\\ud800\\u0041\"}",
           "{\"type\":\"pong\",\"x\":\"a\tb\"}",
           "{\"type\":\"pong\",\"x\":\"a\nb\"}",
           "{\"type\":\"p\\ong\"}",
           "{\"type\":\"pong\",\"x\":\"\xff\"}",
           "{\"type\":\"pong\",\"x\":\"\xc3\"}",
           "{\"type\":\"pong\",\"x\":\"\xed\xa0\x80\"}",
           "{\"type\":\"pong\",\"x\xff\":1}",
           "\xef\xbb\xbf{\"type\":\"pong\"}",
           // A string value followed by ':' (simdjson's skip would take it for a key).
           "{\"yt\":\"ne\":\"\\ud800ta\"ephemeral\"{\"name\":ana\"}}",
           "{\"type\":\"pong\",\"x\":\"a\":\"b\"}}",
           "{\"type\":\"pong\",\"event\":\"a\":\"b\"}}",
           "{\"type\":\"pong\",\"token\":\"a\":\"b\"}}",
           "{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"e\",\"data\":\"a\":\"b\"}}",
           "{\"type\":\"pong\",\"x\":1:\"b\"}}",
           "{\"type\":\"pong\",\"x\":true:\"b\"}}",
       }) {
    expect_invalid_json(text);
  }
}

TEST_F(CommandParserTest, EmbeddedNulIsInvalidJson) {
  expect_invalid_json(std::string_view("{\"type\":\"pong\"}\0", 16));
  expect_invalid_json(std::string_view("{\"type\":\"po\0ng\"}", 16));
}

TEST_F(CommandParserTest, NotAnObjectIsInvalidJson) {
  for (const char* text : {"[]", "[{\"type\":\"pong\"}]", "\"pong\"", "1", "null", "true"}) {
    expect_invalid_json(text);
  }
}

TEST_F(CommandParserTest, InvalidJsonInKnownFields) {
  const std::string p = R"({"type":"publish","id":3,"channel":"a","event":"e",)";
  expect_invalid_json(p + R"("data":{"a":tru}})", "3");
  // Unbalanced brackets are found before any field is read: no id then.
  expect_invalid_json(p + R"("data":[1,2)");
  expect_invalid_json(p + R"("data":1,"ephemeral":tru})", "3");
  expect_invalid_json(R"({"type":"history","id":3,"channel":"a","limit":1x})", "3");
  expect_invalid_json(R"({"type":"history","id":3,"channel":"a","limit":-})", "3");
  expect_invalid_json(R"({"type":"subscribe","id":3,"channel":"a\q"})", "3");
  expect_invalid_json(R"({"type":"subscribe","id":3,"channel":"a","recover":{"epoch":"e",}})", "3");
  expect_invalid_json(R"({"type":"subscribe","id":3,"channel":"a","recover":{"epoch":"\x"}})", "3");
  // A duplicate's value is validated too.
  expect_invalid_json(p + R"("data":1,"data":{"a":tru}})", "3");
  // Wrong-typed values are still validated.
  expect_invalid_json(R"({"type":"subscribe","id":3,"channel":{"a":tru}})", "3");
}

TEST_F(CommandParserTest, InvalidJsonEchoesIdOnlyWhenReadBeforeTheError) {
  expect_invalid_json(R"({"id":"a","type":"pong","x":[1,]})", R"("a")");
  expect_invalid_json(R"({"type":"pong","x":[1,],"id":"a"})");
  expect_invalid_json(R"({"id":"a","type":"pong","x":"\q"})", R"("a")");
  expect_invalid_json(R"({"id":"a","type":"pong"} junk)");
  expect_invalid_json(R"({"type":"pong","id":"a":"b"}})", R"("a")");
  expect_invalid_json(R"({"id":tru,"type":"pong"})");
}

TEST_F(CommandParserTest, InvalidJsonNamesTheField) {
  const CommandError e = fail(R"({"type":"pong","payload":[1,]})");
  EXPECT_EQ(e.message, "invalid JSON in field 'payload'");
}

// ---- raw data preserved byte for byte ----

TEST_F(CommandParserTest, DataIsPreservedByteForByte) {
  const std::vector<std::string> cases = {
      R"({"text":"hi","nested":{"a":[1,2,{"b":null}],"c":{}}})",
      R"("with \"escapes\" \\ \/ \b\f\n\r\t \u0000 \u00e9 \ud83d\ude00")",
      "\"raw UTF-8 \xc3\xa9 \xf0\x9f\x98\x80\"",
      "1e400",
      "-1.25E-7",
      "123456789012345678901234567890",
      "-0",
      "[1, 2 ,\n 3\t]",
      "{ \"spaced\" : [ true , false , null ] }",
      "[]",
      "{}",
      "null",
      "true",
      "false",
      "0",
      "\"\"",
      R"([[[[[[[[[[["deep"]]]]]]]]]]])",
  };
  for (const std::string& data : cases) {
    const std::string text =
        R"({"type":"publish","channel":"c","event":"e","data":)" + data + R"(,"id":1})";
    EXPECT_EQ(ok(text).data, data) << text;
    // Last field, directly before the closing brace.
    const std::string last = R"({"type":"publish","channel":"c","event":"e","data":)" + data + "}";
    EXPECT_EQ(ok(last).data, data) << last;
  }
}

TEST_F(CommandParserTest, DataIsTrimmedOfSurroundingWhitespace) {
  const std::string text =
      "{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"e\",\"data\": \n\t"
      "{ \"a\" : 1 } \r\n\t ,\"id\":1}";
  EXPECT_EQ(ok(text).data, "{ \"a\" : 1 }");
  EXPECT_EQ(ok("{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"e\",\"data\":  12  }").data,
            "12");
  EXPECT_EQ(ok("{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"e\",\"data\":\"s\"\n}").data,
            "\"s\"");
  EXPECT_EQ(ok("{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"e\",\"data\":[ ]\n}").data,
            "[ ]");
}

TEST_F(CommandParserTest, WhitespaceAroundTheMessageIsAllowed) {
  EXPECT_EQ(ok(" \n\t{ \"type\" : \"pong\" } \r\n").type, CommandType::pong);
}

// ---- hostile and large input ----

TEST_F(CommandParserTest, DeepNestingIsRejectedWithoutCrashing) {
  for (size_t depth : {129, 1000, 100000}) {
    const std::string text = R"({"type":"publish","channel":"c","event":"e","data":)" +
                             std::string(depth, '[') + std::string(depth, ']') + "}";
    expect_invalid_json(text);
  }
  const std::string unclosed(200000, '[');
  expect_invalid_json(unclosed);
  expect_invalid_json(R"({"type":"pong","x":)" + std::string(100000, '{'));
}

TEST_F(CommandParserTest, NestingUpToTheLimitIsAccepted) {
  // The command object is level 1, so data may nest max_depth - 1 = 127 levels.
  const std::string data = std::string(127, '[') + std::string(127, ']');
  EXPECT_EQ(ok(R"({"type":"publish","channel":"c","event":"e","data":)" + data + "}").data, data);
  const std::string objects = [] {
    std::string s;
    for (int i = 0; i < 127; ++i) s += "{\"a\":";
    s += "1";
    for (int i = 0; i < 127; ++i) s += "}";
    return s;
  }();
  EXPECT_EQ(ok(R"({"type":"publish","channel":"c","event":"e","data":)" + objects + "}").data,
            objects);
  // recover sits at level 2, so its contents count too.
  const std::string deep_recover = R"({"type":"subscribe","channel":"a","recover":{"epoch":"e",)"
                                   R"("offset":1,"x":)" +
                                   std::string(127, '[') + std::string(127, ']') + "}}";
  expect_invalid_json(deep_recover);
}

TEST_F(CommandParserTest, MaxDepthIsConfigurable) {
  ParserLimits limits;
  limits.max_depth = 2;
  CommandParser p(limits);
  EXPECT_TRUE(std::holds_alternative<Command>(
      p.parse(R"({"type":"publish","channel":"c","event":"e","data":[1]})")));
  EXPECT_TRUE(std::holds_alternative<CommandError>(
      p.parse(R"({"type":"publish","channel":"c","event":"e","data":[[1]]})")));
}

TEST_F(CommandParserTest, HugeDataIsPreserved) {
  std::string data = "[";
  for (int i = 0; i < 200000; ++i) data += (i ? ",\"item\"" : "\"item\"");
  data += "]";
  const std::string text = R"({"type":"publish","channel":"c","event":"e","data":)" + data + "}";
  EXPECT_EQ(ok(text).data, data);
}

TEST_F(CommandParserTest, HugeStringsAndManyFields) {
  std::string text = R"({"type":"pong")";
  for (int i = 0; i < 20000; ++i) text += ",\"f" + std::to_string(i) + "\":" + std::to_string(i);
  text += ",\"big\":\"" + std::string(1 << 20, 'x') + "\"}";
  EXPECT_EQ(ok(text).type, CommandType::pong);
}

TEST_F(CommandParserTest, ParserIsReusableAcrossMessages) {
  const std::string big =
      R"({"type":"publish","channel":"c","event":"e","data":")" + std::string(100000, 'z') + "\"}";
  Command first = ok(big);
  Command second = ok(R"({"type":"publish","channel":"d","event":"f","data":[2]})");
  EXPECT_EQ(first.data.size(), 100002u);
  EXPECT_EQ(first.channel, "c");
  EXPECT_EQ(second.data, "[2]");
  EXPECT_EQ(second.channel, "d");
  expect_invalid_json("{\"type\":");
  EXPECT_EQ(ok(R"({"type":"pong"})").type, CommandType::pong);
}

TEST_F(CommandParserTest, AllSingleBytesAndPrefixesDoNotCrash) {
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    (void)parser_.parse(std::string_view(&c, 1));
  }
  const std::string text =
      R"({"type":"subscribe","id":"x","channel":"a","history":3,"recover":{"epoch":"e","offset":1}})";
  for (size_t n = 0; n < text.size(); ++n) {
    auto r = parser_.parse(text.substr(0, n));
    ASSERT_TRUE(std::holds_alternative<CommandError>(r)) << n;
    EXPECT_EQ(std::get<CommandError>(r).code, ErrorCode::invalid_json) << n;
  }
}

// ---- parse_as (bodies with an implied type) ----

TEST_F(CommandParserTest, ParseAsPublishNeedsNoType) {
  auto r = parser_.parse_as(CommandType::publish,
                            R"({"channel":"chat:lobby","event":"chat.message","data":{"t":1}})");
  ASSERT_TRUE(std::holds_alternative<Command>(r));
  const Command& c = std::get<Command>(r);
  EXPECT_EQ(c.type, CommandType::publish);
  EXPECT_EQ(c.data, R"({"t":1})");
  EXPECT_FALSE(c.ephemeral);
  // A `type` field, whatever it holds, is ignored.
  r = parser_.parse_as(CommandType::publish,
                       R"({"type":7,"channel":"a","event":"e","data":1,"ephemeral":true})");
  ASSERT_TRUE(std::holds_alternative<Command>(r));
  EXPECT_TRUE(std::get<Command>(r).ephemeral);
  r = parser_.parse_as(CommandType::publish, R"({"channel":"a","data":1})");
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).message, "event: required string");
  r = parser_.parse_as(CommandType::publish, R"([1])");
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).code, ErrorCode::invalid_json);
}

// ---- name checks ----

TEST(NameChecks, ChannelNames) {
  EXPECT_EQ(check_channel_name("chat:lobby", 255), "");
  EXPECT_EQ(check_channel_name("user@example.com/inbox=1_x-y", 255), "");
  EXPECT_EQ(check_channel_name("", 255), "channel: must not be empty");
  EXPECT_EQ(check_channel_name("abcd", 3), "channel: too long (max 3 bytes)");
  EXPECT_EQ(check_channel_name("abc!", 255),
            "channel: invalid character '!' at 3; allowed: letters, digits and _-:.@=/#,");
  EXPECT_EQ(check_channel_name("caf\xc3\xa9", 255),
            "channel: invalid character '\xc3\xa9' at 3; allowed: letters, digits and _-:.@=/#,");
  EXPECT_EQ(check_channel_name("a\x01", 255),
            "channel: invalid byte 0x01 at 1; allowed: letters, digits and _-:.@=/#,");
  EXPECT_EQ(check_channel_name("a\xff", 255),
            "channel: invalid byte 0xFF at 1; allowed: letters, digits and _-:.@=/#,");
  EXPECT_EQ(check_channel_name(std::string_view("a\0", 2), 255),
            "channel: invalid byte 0x00 at 1; allowed: letters, digits and _-:.@=/#,");
  for (char c : std::string_view("?*%+; \"'\\[]{}~`^&$()<>|")) {
    EXPECT_NE(check_channel_name(std::string("a") + c, 255), "") << c;
  }
}

TEST(NameChecks, EventNames) {
  EXPECT_EQ(check_event_name("chat.message", 128), "");
  EXPECT_EQ(check_event_name("user:typing_start-2", 128), "");
  EXPECT_EQ(check_event_name("", 128), "event: must not be empty");
  EXPECT_EQ(check_event_name("abc", 2), "event: too long (max 2 bytes)");
  EXPECT_EQ(check_event_name("a/b", 128),
            "event: invalid character '/' at 1; allowed: letters, digits and _-.:");
  EXPECT_EQ(check_event_name("a@b", 128),
            "event: invalid character '@' at 1; allowed: letters, digits and _-.:");
  EXPECT_EQ(check_event_name("a=b", 128),
            "event: invalid character '=' at 1; allowed: letters, digits and _-.:");
}

// ---- error codes ----

TEST(ErrorCodes, NamesAndHttpStatuses) {
  struct Case {
    ErrorCode code;
    const char* name;
    int status;
  };
  for (const Case& c : {
           Case{ErrorCode::bad_request, "bad_request", 400},
           Case{ErrorCode::invalid_json, "invalid_json", 400},
           Case{ErrorCode::unknown_type, "unknown_type", 400},
           Case{ErrorCode::unauthorized, "unauthorized", 401},
           Case{ErrorCode::token_expired, "token_expired", 401},
           Case{ErrorCode::forbidden, "forbidden", 403},
           Case{ErrorCode::unknown_channel, "unknown_channel", 404},
           Case{ErrorCode::not_subscribed, "not_subscribed", 409},
           Case{ErrorCode::validation_failed, "validation_failed", 400},
           Case{ErrorCode::too_large, "too_large", 413},
           Case{ErrorCode::rate_limited, "rate_limited", 429},
           Case{ErrorCode::unavailable, "unavailable", 503},
           Case{ErrorCode::internal, "internal", 500},
       }) {
    EXPECT_EQ(to_string(c.code), c.name);
    EXPECT_EQ(http_status(c.code), c.status) << c.name;
  }
}

}  // namespace
}  // namespace herald::protocol
