// RFC 6455 frame codec, server side: unmasked frame encoding for the send
// path and MessageReader, the incremental parser of (masked) client frames.
//
// The reader is zero-copy on the common path: a frame wholly inside the
// caller's buffer is unmasked in place and handed to the handler as a view.
// Only the bytes of a frame cut by the end of a read are copied (into
// partial_), and only fragmented messages are reassembled (into message_).
// Both buffers give their heap memory back as soon as they empty, so an idle
// connection's reader owns none. Every limit is checked from the frame
// header, before any payload byte is buffered.
#include "ws/frame_codec.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "ws/deflate.hpp"

namespace herald::ws {
namespace {

constexpr uint8_t kFinBit = 0x80;
constexpr uint8_t kRsv1Bit = 0x40;  // permessage-deflate: a compressed message
constexpr uint8_t kRsv23Bits = 0x30;
constexpr uint8_t kOpcodeBits = 0x0F;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kLen7Bits = 0x7F;
constexpr uint8_t kLen16 = 126;
constexpr uint8_t kLen64 = 127;
constexpr size_t kMaskBytes = 4;
constexpr size_t kMaxCloseReason = kMaxControlPayload - 2;

bool is_control(uint8_t opcode) {
  return (opcode & 0x08) != 0;
}

bool is_known_opcode(uint8_t opcode) {
  return opcode <= static_cast<uint8_t>(Opcode::binary) ||
         (opcode >= static_cast<uint8_t>(Opcode::close) &&
          opcode <= static_cast<uint8_t>(Opcode::pong));
}

struct FrameHeader {
  size_t header_len = 0;  // 0 while the header is incomplete
  size_t need = 0;        // header incomplete: bytes the header needs
  bool fin = false;
  bool rsv1 = false;
  uint8_t opcode = 0;
  uint64_t payload_len = 0;
  uint8_t mask[kMaskBytes] = {};
};

// Decodes and validates the client frame header at p[0..avail). Each rule is
// checked as soon as the bytes it depends on are present. Returns the close
// code for a violation, else 0 with h.header_len set when the header is
// complete, or h.header_len == 0 and h.need set when more bytes are needed.
// `message_size` is what an open fragmented message holds so far.
// `deflate`: permessage-deflate was negotiated, so RSV1 may mark the first
// frame of a compressed message (RFC 7692 6.1); never a continuation or a
// control frame.
uint16_t parse_header(const uint8_t* p, size_t avail, bool in_message, size_t message_size,
                      size_t max_message, bool deflate, FrameHeader& h) {
  h.need = 2;
  if (avail < 1) return 0;
  const uint8_t b0 = p[0];
  if ((b0 & kRsv23Bits) != 0) return close_code::protocol_error;  // no such extension
  h.opcode = b0 & kOpcodeBits;
  h.fin = (b0 & kFinBit) != 0;
  h.rsv1 = (b0 & kRsv1Bit) != 0;
  if (!is_known_opcode(h.opcode)) return close_code::protocol_error;
  const bool control = is_control(h.opcode);
  if (h.rsv1 && (!deflate || control || h.opcode == static_cast<uint8_t>(Opcode::continuation))) {
    return close_code::protocol_error;
  }
  if (control) {
    if (!h.fin) return close_code::protocol_error;  // control frames are never fragmented
  } else if (h.opcode == static_cast<uint8_t>(Opcode::continuation)) {
    if (!in_message) return close_code::protocol_error;  // nothing to continue
  } else if (in_message) {
    return close_code::protocol_error;  // new message inside a fragmented one
  }
  if (avail < 2) return 0;
  const uint8_t b1 = p[1];
  if ((b1 & kMaskBit) == 0) return close_code::protocol_error;  // clients must mask
  const uint8_t len7 = b1 & kLen7Bits;
  if (control && len7 > kMaxControlPayload) return close_code::protocol_error;
  const size_t ext = len7 == kLen16 ? 2 : len7 == kLen64 ? 8 : 0;
  if (ext == 8 && avail > 2 && (p[2] & 0x80) != 0) return close_code::protocol_error;
  h.need = 2 + ext + kMaskBytes;
  if (avail < h.need) return 0;
  uint64_t len = len7;
  if (ext != 0) {
    len = 0;
    for (size_t i = 0; i < ext; ++i) len = (len << 8) | p[2 + i];
  }
  if (!control && len > max_message - std::min(message_size, max_message)) {
    return close_code::message_too_big;
  }
  h.payload_len = len;
  std::memcpy(h.mask, p + 2 + ext, kMaskBytes);
  h.header_len = h.need;
  return 0;
}

// XORs p[0..n) with the 4-byte masking key, eight bytes at a time (the
// fixed-size memcpy calls compile to plain loads and stores).
void unmask(char* p, size_t n, const uint8_t mask[kMaskBytes]) {
  uint8_t pattern[8];
  std::memcpy(pattern, mask, kMaskBytes);
  std::memcpy(pattern + kMaskBytes, mask, kMaskBytes);
  uint64_t m;
  std::memcpy(&m, pattern, sizeof m);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, sizeof w);
    w[0] ^= m;
    w[1] ^= m;
    w[2] ^= m;
    w[3] ^= m;
    std::memcpy(p + i, w, sizeof w);
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, sizeof w);
    w ^= m;
    std::memcpy(p + i, &w, sizeof w);
  }
  for (; i < n; ++i) p[i] = static_cast<char>(p[i] ^ mask[i & 3]);
}

// Appends to `s`, growing its capacity geometrically but never past `limit`
// (the most the buffer can ever need), so a peer announcing a large frame
// does not get memory reserved before it sends the bytes.
void append_bounded(std::string& s, const char* p, size_t n, size_t limit) {
  const size_t size = s.size() + n;
  if (size > s.capacity()) s.reserve(std::max(size, std::min(limit, 2 * s.capacity())));
  s.append(p, n);
}

bool is_continuation_byte(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Length of the longest prefix of s[0..n) that does not end inside a
// multi-byte sequence whose remaining bytes may still arrive.
size_t complete_prefix(const unsigned char* s, size_t n) {
  for (size_t k = 1; k <= 4 && k <= n; ++k) {
    const unsigned char c = s[n - k];
    if (is_continuation_byte(c)) continue;
    if (c < 0x80) return n;
    const size_t seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    return seq > k ? n - k : n;
  }
  return n;
}

// Whether s[0..n), a lead byte followed by fewer continuation bytes than it
// announces, can still be completed into a valid code point (RFC 3629
// table: no overlong forms, no surrogates, nothing above U+10FFFF).
bool viable_incomplete(const unsigned char* s, size_t n) {
  const unsigned char c = s[0];
  if (c < 0xC2 || c > 0xF4) return false;
  if (n >= 2) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0) {
      lo = 0xA0;
    } else if (c == 0xED) {
      hi = 0x9F;
    } else if (c == 0xF0) {
      lo = 0x90;
    } else if (c == 0xF4) {
      hi = 0x8F;
    }
    if (s[1] < lo || s[1] > hi) return false;
  }
  for (size_t i = 2; i < n; ++i) {
    if (!is_continuation_byte(s[i])) return false;
  }
  return true;
}

bool valid_utf8(const char* p, size_t n) {
  return simdjson::validate_utf8(p, n);
}

}  // namespace

size_t encode_header(uint8_t* out, Opcode op, uint64_t payload_len, bool fin) {
  out[0] = static_cast<uint8_t>((fin ? kFinBit : 0) | static_cast<uint8_t>(op));
  if (payload_len < kLen16) {
    out[1] = static_cast<uint8_t>(payload_len);
    return 2;
  }
  if (payload_len <= 0xFFFF) {
    out[1] = kLen16;
    out[2] = static_cast<uint8_t>(payload_len >> 8);
    out[3] = static_cast<uint8_t>(payload_len);
    return 4;
  }
  out[1] = kLen64;
  for (size_t i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_len >> (56 - 8 * i));
  return 10;
}

std::string encode_frame(Opcode op, std::string_view payload) {
  uint8_t header[kMaxHeaderBytes];
  const size_t header_len = encode_header(header, op, payload.size());
  std::string frame;
  frame.reserve(header_len + payload.size());
  frame.append(reinterpret_cast<const char*>(header), header_len);
  frame.append(payload);
  return frame;
}

std::string encode_close(uint16_t code, std::string_view reason) {
  if (code == close_code::no_status) return encode_frame(Opcode::close, {});
  if (reason.size() > kMaxCloseReason) {
    // Cut at a code point boundary so the peer still sees valid UTF-8.
    size_t cut = kMaxCloseReason;
    while (cut > 0 && is_continuation_byte(static_cast<unsigned char>(reason[cut]))) --cut;
    reason = reason.substr(0, cut);
  }
  char payload[kMaxControlPayload];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  if (!reason.empty()) std::memcpy(payload + 2, reason.data(), reason.size());
  return encode_frame(Opcode::close, std::string_view(payload, 2 + reason.size()));
}

bool is_valid_received_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

uint16_t MessageReader::feed(char* data, size_t len, MessageHandler& handler) {
  if (done_) return result_;
  if (len == 0) return 0;
  size_t pos = 0;
  if (!partial_.empty()) {
    if (const uint16_t err = resume_partial(data, len, pos, handler)) return err;
    if (done_) return result_;
  }
  while (pos < len) {
    const size_t avail = len - pos;
    FrameHeader h;
    if (const uint16_t err =
            parse_header(reinterpret_cast<const uint8_t*>(data + pos), avail, in_message_,
                         message_.size(), max_message_bytes_, deflate_, h)) {
      return fail(err);
    }
    if (h.header_len == 0) {  // a few header bytes: fits the string's inline storage
      partial_.assign(data + pos, avail);
      return 0;
    }
    const uint64_t frame_len = h.header_len + h.payload_len;
    if (avail < frame_len) {
      append_bounded(partial_.get(), data + pos, avail, static_cast<size_t>(frame_len));
      return 0;
    }
    const uint16_t err = on_frame(h.opcode, h.fin, h.rsv1, h.mask, data + pos + h.header_len,
                                  static_cast<size_t>(h.payload_len), handler);
    if (err != 0) return err;
    if (done_) return result_;
    pos += static_cast<size_t>(frame_len);
  }
  return 0;
}

// Moves bytes from data[pos..len) into partial_ until the frame it holds is
// complete, then processes that frame. Returns 0 (with pos == len when the
// frame is still incomplete) or the error code.
uint16_t MessageReader::resume_partial(char* data, size_t len, size_t& pos,
                                       MessageHandler& handler) {
  for (;;) {
    FrameHeader h;
    if (const uint16_t err =
            parse_header(reinterpret_cast<const uint8_t*>(partial_.data()), partial_.size(),
                         in_message_, message_.size(), max_message_bytes_, deflate_, h)) {
      return fail(err);
    }
    const uint64_t target = h.header_len != 0 ? h.header_len + h.payload_len : h.need;
    if (partial_.size() < target) {
      if (pos == len) return 0;
      const size_t take =
          static_cast<size_t>(std::min<uint64_t>(target - partial_.size(), len - pos));
      append_bounded(partial_.get(), data + pos, take, static_cast<size_t>(target));
      pos += take;
      continue;  // parse again: new header bytes may complete it or break a rule
    }
    const uint16_t err = on_frame(h.opcode, h.fin, h.rsv1, h.mask, partial_.data() + h.header_len,
                                  static_cast<size_t>(h.payload_len), handler);
    partial_.release();
    return err;
  }
}

uint16_t MessageReader::on_frame(uint8_t opcode, bool fin, bool rsv1, const uint8_t* mask,
                                 char* payload, size_t len, MessageHandler& handler) {
  unmask(payload, len, mask);
  const std::string_view view(payload, len);
  const auto op = static_cast<Opcode>(opcode);
  switch (op) {
    case Opcode::text:
    case Opcode::binary:
      if (fin) return deliver(op, view, rsv1, handler);
      in_message_ = true;
      message_op_ = op;
      compressed_ = rsv1;
      utf8_checked_ = 0;
      return on_fragment(view, false, handler);
    case Opcode::continuation:
      return on_fragment(view, fin, handler);
    case Opcode::close:
      return on_close_frame(view, handler);
    case Opcode::ping:
      handler.on_ping(view);
      return 0;
    case Opcode::pong:
      handler.on_pong(view);
      return 0;
  }
  return fail(close_code::protocol_error);  // unreachable: parse_header rejects the rest
}

// One fragment (first, middle or last) of a fragmented message.
uint16_t MessageReader::on_fragment(std::string_view payload, bool fin, MessageHandler& handler) {
  const bool text = message_op_ == Opcode::text;
  if (fin && message_.empty()) {
    // Every earlier fragment was empty: the message is this payload, no copy.
    const Opcode op = message_op_;
    const bool compressed = compressed_;
    end_message();
    return deliver(op, payload, compressed, handler);
  }
  append_bounded(message_.get(), payload.data(), payload.size(), max_message_bytes_);
  if (compressed_) {
    // Compressed bytes: UTF-8 can only be checked once inflated, at the end.
    if (fin) {
      const uint16_t err = deliver(message_op_, message_, true, handler);
      end_message();
      return err;
    }
    return 0;
  }
  if (text) {
    // Validate what was not validated yet: up to the end on the last
    // fragment, else up to the last complete code point, and fail fast when
    // the incomplete tail can no longer become valid.
    const auto* bytes = reinterpret_cast<const unsigned char*>(message_.data());
    const size_t size = message_.size();
    const size_t end = fin ? size : std::max<size_t>(utf8_checked_, complete_prefix(bytes, size));
    if (!valid_utf8(message_.data() + utf8_checked_, end - utf8_checked_) ||
        (end < size && !viable_incomplete(bytes + end, size - end))) {
      return fail(close_code::invalid_payload);
    }
    utf8_checked_ = static_cast<uint32_t>(end);
  }
  if (fin) {
    handler.on_message(message_op_, message_);
    end_message();
  }
  return 0;
}

// A complete message: inflated first when compressed (bounded by
// max_message_bytes, a compression bomb fails with 1009), then its UTF-8
// checked when text.
uint16_t MessageReader::deliver(Opcode op, std::string_view payload, bool compressed,
                                MessageHandler& handler) {
  if (compressed) {
    std::string_view inflated;
    if (const uint16_t err = inflate_message(payload, max_message_bytes_, inflated)) {
      return fail(err);
    }
    payload = inflated;
  }
  if (op == Opcode::text && !valid_utf8(payload.data(), payload.size())) {
    return fail(close_code::invalid_payload);
  }
  handler.on_message(op, payload);
  return 0;
}

uint16_t MessageReader::on_close_frame(std::string_view payload, MessageHandler& handler) {
  uint16_t code = close_code::no_status;
  std::string_view reason;
  if (!payload.empty()) {
    if (payload.size() < 2) return fail(close_code::protocol_error);
    code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                 static_cast<uint8_t>(payload[1]));
    if (!is_valid_received_close_code(code)) return fail(close_code::protocol_error);
    reason = payload.substr(2);
    if (!valid_utf8(reason.data(), reason.size())) return fail(close_code::invalid_payload);
  }
  done_ = true;
  result_ = 0;
  handler.on_close(code, reason);
  // `reason` may point into partial_, which the caller releases; drop an
  // unfinished message now: nothing more will be parsed.
  end_message();
  return 0;
}

uint16_t MessageReader::fail(uint16_t code) {
  done_ = true;
  result_ = code;
  partial_.release();
  end_message();
  return code;
}

void MessageReader::end_message() {
  message_.release();
  in_message_ = false;
  compressed_ = false;
  utf8_checked_ = 0;
}

}  // namespace herald::ws
