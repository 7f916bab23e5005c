// RFC 6455 frame codec, server side.
//
// Encoding: servers send unmasked frames; `encode_header` writes the 2..10
// byte header so the publish path can frame an event once into a shared
// buffer. Decoding: `MessageReader` is an incremental parser of client
// frames. It is fed whatever bytes arrived (from the worker's shared read
// buffer, which it may modify: payloads are unmasked in place), keeps only an
// unfinished frame's bytes and an unfinished fragmented message between
// calls, and reports complete messages and control frames to a handler.
// Every protocol violation ends parsing with the close code the connection
// must be failed with. With permessage-deflate enabled (enable_deflate), a
// message whose first frame has RSV1 is inflated (ws/deflate.hpp, bounded by
// the message limit) before its UTF-8 is checked and it is reported. This
// file knows nothing about sockets or JSON.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

namespace herald::ws {

enum class Opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Close codes used by Herald (RFC 6455 section 7.4 and the protocol's 4xxx).
namespace close_code {
inline constexpr uint16_t normal = 1000;
inline constexpr uint16_t going_away = 1001;
inline constexpr uint16_t protocol_error = 1002;
inline constexpr uint16_t unsupported_data = 1003;
inline constexpr uint16_t no_status = 1005;  // never sent on the wire
inline constexpr uint16_t invalid_payload = 1007;
inline constexpr uint16_t policy_violation = 1008;
inline constexpr uint16_t message_too_big = 1009;
inline constexpr uint16_t internal_error = 1011;
inline constexpr uint16_t unauthorized = 4001;
inline constexpr uint16_t kicked = 4003;  // disconnected by a server action
inline constexpr uint16_t slow_consumer = 4008;
inline constexpr uint16_t rate_limited = 4029;
}  // namespace close_code

inline constexpr size_t kMaxHeaderBytes = 10;  // server frames carry no mask
inline constexpr size_t kMaxControlPayload = 125;

// Writes an unmasked frame header for a payload of `payload_len` bytes into
// `out` (at least kMaxHeaderBytes long); returns the header length.
size_t encode_header(uint8_t* out, Opcode op, uint64_t payload_len, bool fin = true);

// A whole unmasked frame: header + payload.
std::string encode_frame(Opcode op, std::string_view payload);

// A close frame with `code` and a reason (truncated to fit 125 bytes).
// code == close_code::no_status encodes an empty close frame.
std::string encode_close(uint16_t code, std::string_view reason = {});

// Whether a close code received from a peer is allowed on the wire
// (RFC 6455 7.4.1/7.4.2: 1000-1003, 1007-1011, 3000-4999).
bool is_valid_received_close_code(uint16_t code);

// Receives what MessageReader decodes. Views are valid only during the call.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  // A complete (reassembled) text or binary message; text is valid UTF-8.
  virtual void on_message(Opcode op, std::string_view payload) = 0;
  virtual void on_ping(std::string_view payload) = 0;
  virtual void on_pong(std::string_view payload) = 0;
  // The peer's close frame, already validated. code is close_code::no_status
  // when the frame had no payload. No further frames are parsed after it.
  virtual void on_close(uint16_t code, std::string_view reason) = 0;
};

class MessageReader {
 public:
  explicit MessageReader(size_t max_message_bytes)
      : max_message_bytes_(static_cast<uint32_t>(
            std::min<size_t>(max_message_bytes, std::numeric_limits<uint32_t>::max()))) {}

  // Parses as many frames as `data` holds, calling `handler` for each
  // complete message and control frame, and keeps any unfinished frame.
  // Returns 0 while the stream is valid, or the close code to fail the
  // connection with (1002 protocol error, 1007 invalid UTF-8 or corrupt
  // compressed data, 1009 too big, also once inflated).
  // After an error or a close frame, further calls return the same result
  // and parse nothing. `data` may be modified (unmasked in place).
  uint16_t feed(char* data, size_t len, MessageHandler& handler);

  // permessage-deflate was negotiated: RSV1 on a message's first frame
  // means its payload is compressed (inflated before it is handed over).
  // Without it RSV1 is a protocol error (1002).
  void enable_deflate() { deflate_ = true; }

  // True when no partial frame or fragmented message is held (the reader
  // then owns no heap memory).
  bool idle() const { return partial_.empty() && message_.empty() && !in_message_; }

  // Bytes currently buffered for unfinished frames and messages.
  size_t buffered_bytes() const { return partial_.size() + message_.size(); }

  // Heap bytes reserved by the buffers (0 when idle: capacity is released as
  // soon as a buffer empties), for memory accounting.
  size_t buffered_capacity() const { return partial_.heap_capacity() + message_.heap_capacity(); }

  // True once a close frame or an error ended parsing; feed() then returns
  // the same result and parses nothing.
  bool done() const { return done_; }

 private:
  // Implementation state; see frame_codec.cpp.
  // A byte buffer that holds a pointer only until bytes must be kept, so an
  // idle connection's reader is a few words (memory per connection).
  class LazyBuffer {
   public:
    bool empty() const { return !s_ || s_->empty(); }
    size_t size() const { return s_ ? s_->size() : 0; }
    char* data() { return s_ ? s_->data() : nullptr; }
    const char* data() const { return s_ ? s_->data() : nullptr; }
    size_t heap_capacity() const { return s_ ? sizeof(std::string) + s_->capacity() : 0; }
    std::string& get() {
      if (!s_) s_ = std::make_unique<std::string>();
      return *s_;
    }
    void assign(const char* p, size_t n) { get().assign(p, n); }
    void release() { s_.reset(); }
    operator std::string_view() const { return s_ ? std::string_view(*s_) : std::string_view(); }

   private:
    std::unique_ptr<std::string> s_;
  };

  uint32_t max_message_bytes_;
  uint32_t utf8_checked_ = 0;  // prefix of message_ (text) already validated
  LazyBuffer partial_;         // bytes of a frame whose end has not arrived
  LazyBuffer message_;         // payload of a fragmented message so far
  Opcode message_op_ = Opcode::text;
  bool in_message_ = false;
  bool compressed_ = false;  // the fragmented message in message_ is compressed
  bool deflate_ = false;     // see enable_deflate()
  bool done_ = false;
  uint16_t result_ = 0;

  uint16_t resume_partial(char* data, size_t len, size_t& pos, MessageHandler& handler);
  uint16_t on_frame(uint8_t opcode, bool fin, bool rsv1, const uint8_t* mask, char* payload,
                    size_t len, MessageHandler& handler);
  uint16_t deliver(Opcode op, std::string_view payload, bool compressed, MessageHandler& handler);
  uint16_t on_fragment(std::string_view payload, bool fin, MessageHandler& handler);
  uint16_t on_close_frame(std::string_view payload, MessageHandler& handler);
  uint16_t fail(uint16_t code);
  void end_message();
};

}  // namespace herald::ws
