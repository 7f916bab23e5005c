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

enum class CommandType {
  connect,
  subscribe,
  unsubscribe,
  publish,
  history,
  presence,
  pong,
  refresh,
  sub_refresh,
  presence_stats,
  destroy,
  rpc,
};

struct RecoverPosition {
  std::string epoch;
  uint64_t offset = 0;
};

struct Command {
  CommandType type = CommandType::pong;
  // Raw JSON of the request id (a number or a string, e.g. `7` or `"a"`),
  // empty when the request had none. Replies echo it byte for byte.
  std::string id;
  std::string channel;  // every command but connect, refresh and pong
  std::string event;    // publish; destroy: "" for no final event
  std::string data;  // publish, rpc: raw JSON value; connect, subscribe, destroy: raw JSON or empty
  std::string method;  // rpc
  std::string token;  // connect, subscribe (subscription token), refresh, sub_refresh; "" if absent
  bool ephemeral = false;                  // publish
  std::string idempotency_key;             // publish; "" if absent
  std::optional<uint64_t> history;         // subscribe: send the last N events
  std::optional<RecoverPosition> recover;  // subscribe
  std::optional<uint64_t> limit;           // history
  std::optional<uint64_t> before;          // history
  std::optional<uint64_t> after;           // history
};

struct CommandError {
  ErrorCode code = ErrorCode::bad_request;
  std::string message;  // human readable, names the offending field
  std::string id;       // raw JSON id when it could be read, else empty
};

struct ParserLimits {
  size_t max_channel_length = 255;
  size_t max_event_length = 128;
  // Deepest nesting of arrays and objects in a message, the command object
  // itself being level 1 (so `data` may nest max_depth - 1 levels). Deeper
  // messages are invalid_json. Capped at 1024.
  size_t max_depth = 128;
};

// The wire name of a command type ("subscribe", ...).
std::string_view to_string(CommandType type);

class CommandParser {
 public:
  explicit CommandParser(ParserLimits limits = {});
  ~CommandParser();
  CommandParser(const CommandParser&) = delete;
  CommandParser& operator=(const CommandParser&) = delete;

  // Parses one text message. Errors: invalid_json (not JSON, or not an
  // object), unknown_type (`type` names no command), bad_request (missing or
  // wrong-typed field, bad channel or event name; message names the field).
  // Never throws (an allocation failure is reported as `internal`); any
  // bytes are safe to pass. Views into `text` are not kept.
  std::variant<Command, CommandError> parse(std::string_view text);

  // Parses a JSON object as a command of the given type, with the same rules
  // and messages as parse(), except that `type` is not required (and is
  // ignored when present). For bodies whose type is implied, such as the
  // server API's POST /api/publish (CommandType::publish).
  std::variant<Command, CommandError> parse_as(CommandType type, std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ParserLimits limits_;
};

// Channel names: 1..max_length bytes of [A-Za-z0-9_-:.@=/], documented in
// docs/protocol.md. Returns an empty string when valid, else the reason as a
// complete error message naming the field, e.g. "channel: too long (max 255
// bytes)" or "channel: invalid character '!' at 3; allowed: letters, digits
// and _-:.@=/" (positions are 0-based byte offsets).
std::string check_channel_name(std::string_view name, size_t max_length);

// Event names: 1..max_length bytes of [A-Za-z0-9_-.:]. Empty when valid, else
// a message like check_channel_name's, naming the field `event`.
std::string check_event_name(std::string_view name, size_t max_length);

// Idempotency keys of publish: 1..128 bytes of [A-Za-z0-9_-.:] (a UUID fits).
inline constexpr size_t kMaxIdempotencyKeyLength = 128;
std::string check_idempotency_key(std::string_view key);

}  // namespace herald::protocol
