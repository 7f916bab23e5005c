// libFuzzer target for the protocol v1 command parser (src/protocol/command.cpp),
// which reads untrusted client messages on the hot path.
//
// Besides "never crash, never leak, no UB" (ASan/UBSan), it checks the parser
// against an independent JSON parser, Boost.JSON:
//  - an accepted message is a valid JSON object, and the fields the Command
//    carries (id, channel, event, data, token, ...) equal what Boost.JSON
//    reads from the same text; for publish, `data` parses on its own;
//  - a message rejected as invalid_json is rejected by Boost.JSON too, or is
//    valid JSON that is not an object; other errors come from valid JSON;
//  - replies built from the result (event, ack, error) are valid JSON.
// Build: cmake --preset fuzz && cmake --build --preset fuzz --target protocol_parser_fuzz
// Run:   build/fuzz/protocol_parser_fuzz -max_total_time=60 corpus/
#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "protocol/command.hpp"
#include "protocol/messages.hpp"

namespace {

using namespace herald::protocol;

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "protocol_parser_fuzz: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(std::min<size_t>(input.size(), 2000)), input.data());
  std::abort();
}

// Set when Boost.JSON refused valid JSON it cannot represent: exponents
// beyond its range ("1e99999999999") are valid RFC 8259 numbers that the
// parser under test accepts (it never converts `data`). Such inputs are
// checked for crashes only.
bool boost_out_of_range = false;

// Parses with the same nesting limit as the CommandParser under test.
bool boost_parse(std::string_view text, boost::json::value& out) {
  boost::json::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = ParserLimits{}.max_depth;
  out = boost::json::parse(text, ec, {}, opts);
  if (ec == boost::json::error::exponent_overflow) boost_out_of_range = true;
  return !ec;
}

void check_valid_json(const std::string& text, std::string_view input) {
  boost::json::value v;
  if (!boost_parse(text, v)) fail(("built invalid JSON: " + text).c_str(), input);
}

const boost::json::value* field(const boost::json::value& obj, const char* key) {
  return obj.as_object().if_contains(key);
}

void expect_string(const boost::json::value& obj, const char* key, const std::string& got,
                   std::string_view input) {
  const boost::json::value* v = field(obj, key);
  if (got.empty() && v == nullptr) return;
  if (v == nullptr || !v->is_string() || v->as_string() != got) {
    fail((std::string("field differs from Boost.JSON: ") + key).c_str(), input);
  }
}

void check_command(const Command& cmd, const boost::json::value& doc, std::string_view input) {
  if (!cmd.id.empty()) {
    boost::json::value id;
    if (!boost_parse(cmd.id, id) || !(id.is_number() || id.is_string())) fail("bad raw id", input);
    const boost::json::value* orig = field(doc, "id");
    if (orig == nullptr || boost::json::serialize(*orig) != boost::json::serialize(id)) {
      fail("id differs from Boost.JSON", input);
    }
  }
  switch (cmd.type) {
    case CommandType::publish: {
      boost::json::value data;
      if (!boost_parse(cmd.data, data)) fail("publish data is not valid JSON", input);
      const boost::json::value* orig = field(doc, "data");
      if (orig == nullptr) fail("publish without data accepted", input);
      // Compared as serialized text: Boost.JSON 1.81 reads `0e400` as NaN,
      // and NaN != NaN.
      if (boost::json::serialize(*orig) != boost::json::serialize(data)) {
        fail("publish data differs from Boost.JSON", input);
      }
      expect_string(doc, "channel", cmd.channel, input);
      expect_string(doc, "event", cmd.event, input);
      if (!check_channel_name(cmd.channel, ParserLimits{}.max_channel_length).empty() ||
          !check_event_name(cmd.event, ParserLimits{}.max_event_length).empty()) {
        fail("bad name accepted", input);
      }
      if (!cmd.idempotency_key.empty() &&
          (!check_idempotency_key(cmd.idempotency_key).empty() || cmd.ephemeral))
        fail("bad idempotency_key accepted", input);
      std::string out;
      EventView ev;
      ev.channel = cmd.channel;
      ev.event = cmd.event;
      ev.data = cmd.data;
      ev.offset = 1;
      ev.ts_ms = 1;
      ev.from_client = cmd.token;  // any valid UTF-8 string will do
      ev.from_user = cmd.token;
      append_event(out, ev);
      check_valid_json(out, input);
      break;
    }
    case CommandType::connect:
      if (!cmd.data.empty()) {
        boost::json::value data;
        if (!boost_parse(cmd.data, data)) fail("connect data is not valid JSON", input);
      }
      expect_string(doc, "token", cmd.token, input);
      break;
    case CommandType::subscribe:
    case CommandType::unsubscribe:
    case CommandType::history:
    case CommandType::presence:
    case CommandType::presence_stats:
      expect_string(doc, "channel", cmd.channel, input);
      if (!check_channel_name(cmd.channel, ParserLimits{}.max_channel_length).empty()) {
        fail("bad channel accepted", input);
      }
      if (cmd.recover) {
        std::string out;
        append_subscribed(out, cmd.id, cmd.channel, cmd.recover->epoch, cmd.recover->offset, true,
                          "[]");
        check_valid_json(out, input);
      }
      break;
    case CommandType::refresh:
      expect_string(doc, "token", cmd.token, input);
      if (cmd.token.empty() && field(doc, "token") == nullptr) fail("refresh without token", input);
      break;
    case CommandType::sub_refresh:
      expect_string(doc, "token", cmd.token, input);
      expect_string(doc, "channel", cmd.channel, input);
      if (!check_channel_name(cmd.channel, ParserLimits{}.max_channel_length).empty()) {
        fail("bad channel accepted", input);
      }
      break;
    case CommandType::destroy:
      expect_string(doc, "channel", cmd.channel, input);
      if (!check_channel_name(cmd.channel, ParserLimits{}.max_channel_length).empty())
        fail("bad channel accepted", input);
      if (!cmd.event.empty() &&
          !check_event_name(cmd.event, ParserLimits{}.max_event_length).empty())
        fail("bad final event name accepted", input);
      if (!cmd.data.empty()) {
        boost::json::value data;
        if (!boost_parse(cmd.data, data)) fail("destroy data is not valid JSON", input);
        if (cmd.event.empty()) fail("destroy data without event accepted", input);
      }
      break;
    case CommandType::rpc: {
      expect_string(doc, "method", cmd.method, input);
      if (cmd.method.empty() || cmd.method.size() > 128) fail("bad rpc method accepted", input);
      boost::json::value data;
      if (!boost_parse(cmd.data, data)) fail("rpc data is not valid JSON", input);
      std::string out;
      append_rpc_result(out, cmd.id, cmd.data);
      check_valid_json(out, input);
      break;
    }
    case CommandType::pong:
      break;
  }
  std::string ack;
  append_ack(ack, cmd.id, 7);
  check_valid_json(ack, input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  static CommandParser parser;
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);

  auto result = parser.parse(input);
  boost::json::value doc;
  boost_out_of_range = false;
  const bool boost_ok = boost_parse(input, doc);
  if (boost_out_of_range) return 0;

  if (const auto* cmd = std::get_if<Command>(&result)) {
    if (!boost_ok) fail("accepted a message Boost.JSON rejects", input);
    if (!doc.is_object()) fail("accepted a message that is not an object", input);
    check_command(*cmd, doc, input);
  } else {
    const auto& err = std::get<CommandError>(result);
    if (err.message.empty()) fail("error without a message", input);
    if (err.code == ErrorCode::invalid_json) {
      if (boost_ok && doc.is_object()) fail("invalid_json for a valid JSON object", input);
    } else if (!boost_ok) {
      fail("invalid JSON not reported as invalid_json", input);
    }
    std::string out;
    append_error(out, err.code, err.message, err.id);
    check_valid_json(out, input);
  }

  // parse_as shares the code; run it too so its paths are covered.
  auto as_publish = parser.parse_as(CommandType::publish, input);
  if (const auto* cmd = std::get_if<Command>(&as_publish)) {
    if (!boost_ok || !doc.is_object()) fail("parse_as accepted invalid JSON", input);
    check_command(*cmd, doc, input);
  }
  return 0;
}
