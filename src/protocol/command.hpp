// Client -> server commands of protocol v1 and their parser.
//
// The parser is the one place where untrusted JSON from clients is read on
// the hot path. It uses simdjson's on-demand API and keeps `data` as the raw
// JSON bytes the client sent (never re-serialized), so the publish path can
// splice them into the event it builds. One CommandParser per worker thread:
// it reuses its simdjson parser and padded scratch buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/errors.hpp"

namespace herald::protocol {

enum class CommandType { connect, subscribe, unsubscribe, publish, history, presence, pong };

struct RecoverPosition {
  std::string epoch;
  uint64_t offset = 0;
};

struct Command {
  CommandType type = CommandType::pong;
  // Raw JSON of the request id (a number or a string, e.g. `7` or `"a"`),
  // empty when the request had none. Replies echo it byte for byte.
  std::string id;
  std::string channel;   // subscribe, unsubscribe, publish, history, presence
  std::string event;     // publish
  std::string data;      // publish: raw JSON value; connect: raw JSON or empty
  std::string token;     // connect, subscribe (channel token); empty if absent
  bool ephemeral = false;                 // publish
  std::optional<uint64_t> history;        // subscribe: send the last N events
  std::optional<RecoverPosition> recover; // subscribe
  std::optional<uint64_t> limit;          // history
  std::optional<uint64_t> before;         // history
  std::optional<uint64_t> after;          // history
};

struct CommandError {
  ErrorCode code = ErrorCode::bad_request;
  std::string message;  // human readable, names the offending field
  std::string id;       // raw JSON id when it could be read, else empty
};

struct ParserLimits {
  size_t max_channel_length = 255;
  size_t max_event_length = 128;
};

class CommandParser {
 public:
  explicit CommandParser(ParserLimits limits = {});
  ~CommandParser();
  CommandParser(const CommandParser&) = delete;
  CommandParser& operator=(const CommandParser&) = delete;

  // Parses one text message. Errors: invalid_json (not JSON, or not an
  // object), unknown_type (`type` names no command), bad_request (missing or
  // wrong-typed field, bad channel or event name; message names the field).
  std::variant<Command, CommandError> parse(std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ParserLimits limits_;
};

// Channel names: 1..max_length bytes of [A-Za-z0-9_-:.@=/], documented in
// docs/protocol.md. Returns an empty string when valid, else the reason.
std::string check_channel_name(std::string_view name, size_t max_length);

// Event names: 1..max_length bytes of [A-Za-z0-9_-.:]. Empty when valid.
std::string check_event_name(std::string_view name, size_t max_length);

}  // namespace herald::protocol
