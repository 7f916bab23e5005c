// permessage-deflate (RFC 7692) payload work: compressing outbound frames
// once per frame, and inflating client messages into a bounded buffer.
//
// Compression: a shared Frame gets its compressed variant on first use, by
// whichever worker thread queues it first to a connection that negotiated
// the extension (Frame::deflate_once); every other such connection queues
// the same variant. Each worker thread has its own zlib deflater (a
// z_stream is not thread-safe), reset before each frame: with no context
// takeover every message stands alone, so no per-connection state exists. Inflation: each worker
// thread has one zlib inflater and one output buffer, reset per message and never larger than
// max_message_bytes, so a compression bomb costs at most that much before it is refused. Owns no
// socket; touches only the frame it is given and thread-local state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ws/shared_frame.hpp"

namespace herald::ws {

struct DeflateSettings {
  size_t min_bytes = 256;  // payloads shorter than this go uncompressed
  int level = 6;           // zlib level, 1 (fast) .. 9 (small)
};

// What a connection that negotiated permessage-deflate queues for `frame`:
// its compressed variant (RSV1 set) when `frame` is a complete text or binary
// message of at least settings.min_bytes whose payload DEFLATE shrinks, else
// `frame` itself. Control frames are never compressed. Thread-safe: the
// variant is made once per frame, whatever thread asks first.
SharedFrame deflated(const SharedFrame& frame, const DeflateSettings& settings);

// Inflates one compressed message payload (raw DEFLATE without the final
// 00 00 ff ff, RFC 7692 7.2.2) into this thread's buffer. Returns 0 with
// `out` viewing the message (valid until the next call on this thread), or
// close_code::message_too_big when it inflates past `max_bytes`, or
// close_code::invalid_payload when the data is not valid DEFLATE.
uint16_t inflate_message(std::string_view compressed, size_t max_bytes, std::string_view& out);

}  // namespace herald::ws
