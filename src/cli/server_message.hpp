// Reading what the server sends the command-line client: WebSocket
// messages (docs/protocol.md section 7) and the HTTP API's JSON bodies
// (section 10, the same fields without `type`), and writing events as the
// client's output lines. Pure functions, no I/O (tests/unit/cli_test.cpp).
//
// The server's JSON is read with simdjson (as src/protocol reads clients');
// `data`, `from`, `members` and `ts` are kept as the raw bytes the server
// sent, so the output relays them byte for byte, like the server relays
// `data`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::cli {

// One event object (`event` messages, and the elements of `events`).
struct EventFields {
  std::string channel;
  std::string event;
  std::optional<uint64_t> offset;  // absent: ephemeral
  std::string ts;                  // raw JSON number
  std::string from;                // raw JSON object, "" when absent
  std::string data;                // raw JSON
};

// The fields of one server message that the client acts on; absent fields
// stay empty. A message of type `event` has its fields in `ev`.
struct ServerMessage {
  std::string type;  // "" for an HTTP API body
  std::string id;    // raw JSON
  std::string channel, epoch, code, message, reason;
  std::optional<uint64_t> offset;
  std::optional<uint64_t> ping;  // connected
  std::optional<bool> recovered;
  std::string complete;        // presence: raw JSON
  std::string members;         // presence: raw JSON array
  std::string clients, users;  // presence_stats: raw JSON numbers
  bool replayed = false;       // ack / publish reply
  std::vector<EventFields> events;
  EventFields ev;
};

// Parses one message or body; nullopt (and `why`) when it is not a JSON
// object of the protocol's shape.
std::optional<ServerMessage> parse_server_message(std::string_view text,
                                                  std::string* why = nullptr);

// The client's output line for an event, newline included:
// {"channel":…,"event":…,"offset":…,"epoch":…,"ts":…,"from":…,"data":…}
// (`offset` absent for an ephemeral event, `from` when the event has none,
// `epoch` when unknown).
void append_event_line(std::string& out, const EventFields& ev, std::string_view epoch);

// "code: message" of an error message, "HTTP <status>" style fallback done
// by the caller.
std::string describe_error(const ServerMessage& m);

}  // namespace herald::cli
