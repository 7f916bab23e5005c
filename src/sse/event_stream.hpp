// The Server-Sent Events wire format of the SSE fallback (GET /sse,
// docs/protocol.md section 14): pure functions, no I/O, no state.
//
// Owns: turning protocol JSON messages into SSE messages (`data:` lines),
// the SSE variant of a shared WebSocket frame (built once per event, held
// by the frame, whichever worker asks first), the combined event id
// (`id:`) of a stream's channels and its parsing, and the parsing of the
// /sse request's query. Touches nothing else; the session that uses them is
// protocol::ClientSession (client_session_sse.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ws/shared_frame.hpp"

namespace herald::sse {

// A channel's position in a stream: the epoch and the offset of the last
// event the client got (the `subscribed` offset before any event).
struct Position {
  std::string epoch;
  uint64_t offset = 0;
};

// Appends `json` (one protocol message) as `data:` lines, one per line of
// the text: a JSON value may hold raw line breaks (pretty-printed `data`),
// which SSE cannot carry inside one field. EventSource joins the lines with
// "\n". No terminating blank line.
void append_data_lines(std::string& out, std::string_view json);

// The SSE variant of `frame` (one or more server WebSocket text frames, as
// the node builds them): each message as data lines. A frame that carries
// an event with an offset (Frame::event_offset) ends without the blank
// line, so the subscriber appends its own `id:` line and the blank line;
// any other frame's messages end with their blank lines. Built once per
// frame, thread-safe (std::call_once on the frame).
const ws::SharedFrame& variant_of(const ws::Frame& frame);

// For a stream of one channel, whose id is `<epoch>:<offset>` whoever reads
// it: the whole SSE message of an event frame with an offset (the variant
// and its id line), built once per frame for the first caller's `epoch`;
// null for a caller with another epoch (it makes its own id line).
const ws::SharedFrame* single_channel_message(const ws::Frame& frame, std::string_view epoch);

// Percent-encodes every byte of `s` outside [A-Za-z0-9._~-].
void append_percent_encoded(std::string& out, std::string_view s);

// The combined event id of a stream: one entry per channel of the request,
// in the request's order, joined by ','; an entry is
// `<percent-encoded epoch>:<offset>`, or empty while the channel has no
// position yet. One channel: `<epoch>:<offset>`.
std::string encode_id(const std::vector<std::optional<Position>>& positions);
// The same, appended to `out` (no temporary: it runs per client and event).
void append_id(std::string& out, const std::vector<std::optional<Position>>& positions);
// Parses a Last-Event-ID for a stream of `channels` channels; nullopt when
// it is malformed or has another number of entries.
std::optional<std::vector<std::optional<Position>>> decode_id(std::string_view id, size_t channels);

// What GET /sse asked for, from its query string (after '?').
struct Query {
  std::vector<std::string> channels;  // `channel=a&channel=b`, in order (names may hold ',')
  std::string token;                  // `token=`, "" when absent
  std::string last_event_id;          // `last_event_id=`, "" when absent
  std::string error;                  // non-empty: malformed (the reason)
};
// `max_channels` bounds the list (more is an error, before anything is
// subscribed).
Query parse_query(std::string_view target, size_t max_channels);

// The value of cookie `name` in a Cookie header ("" when absent).
std::string cookie_value(std::string_view header, std::string_view name);

}  // namespace herald::sse
