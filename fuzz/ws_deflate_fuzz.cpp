// libFuzzer target for permessage-deflate (src/ws/deflate.*): the input,
// after a control byte, is taken as the compressed payload of a client
// message (untrusted bytes reaching zlib) and inflated under a limit chosen
// by the control byte, directly and through ws::MessageReader as one RSV1
// frame and as a fragmented message fed in small chunks. Checks: no crash or
// out-of-bounds access, the outcome is 0, 1007 or 1009 and the same on every
// path, an accepted message never exceeds the limit, and the reader holds no
// memory once done. The same bytes are then compressed as an outbound frame
// (when DEFLATE shrinks them) and must inflate back to themselves.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ws/deflate.hpp"
#include "ws/frame_codec.hpp"

namespace {

namespace ws = herald::ws;

void check(bool condition) {
  if (!condition) std::abort();
}

struct Collect : ws::MessageHandler {
  std::vector<std::string> messages;
  void on_message(ws::Opcode, std::string_view p) override { messages.emplace_back(p); }
  void on_ping(std::string_view) override {}
  void on_pong(std::string_view) override {}
  void on_close(uint16_t, std::string_view) override {}
};

void append_frame(std::string& out, uint8_t b0, std::string_view payload) {
  out += static_cast<char>(b0);
  const size_t n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) out += static_cast<char>(static_cast<uint64_t>(n) >> (8 * i));
  }
  out.append(4, '\0');  // a zero masking key: the payload goes as is
  out.append(payload);
}

// Feeds `stream` in chunks of `chunk` bytes; returns the reader's result.
uint16_t run_reader(const std::string& stream, size_t max, size_t chunk, Collect& c) {
  ws::MessageReader reader(max);
  reader.enable_deflate();
  uint16_t r = 0;
  for (size_t pos = 0; pos < stream.size() && r == 0; pos += chunk) {
    std::string piece = stream.substr(pos, chunk);
    r = reader.feed(piece.data(), piece.size(), c);
  }
  if (reader.done()) check(reader.idle() && reader.buffered_capacity() == 0);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max = size_t{16} << (data[0] & 0x0F);  // 16 B .. 512 KiB
  const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string_view out;
  const uint16_t direct = ws::inflate_message(payload, max, out);
  check(direct == 0 || direct == ws::close_code::invalid_payload ||
        direct == ws::close_code::message_too_big);
  std::string inflated;
  if (direct == 0) {
    check(out.size() <= max);
    inflated.assign(out);
  }
  // As a binary message (no UTF-8 rule), whole and fragmented in chunks.
  // Compressed bytes over the limit are refused from the frame header, as
  // any message, before inflating.
  const uint16_t want = payload.size() > max ? ws::close_code::message_too_big : direct;
  std::string one;
  append_frame(one, 0x80 | 0x40 | 0x2, payload);
  Collect whole;
  check(run_reader(one, max, one.size(), whole) == want);
  if (want == 0) check(whole.messages.size() == 1 && whole.messages[0] == inflated);
  std::string fragmented;
  const size_t cut = payload.size() / 2;
  append_frame(fragmented, 0x40 | 0x2, payload.substr(0, cut));
  append_frame(fragmented, 0x80 | 0x0, payload.substr(cut));
  Collect pieces;
  check(run_reader(fragmented, max, 1 + (data[0] >> 4), pieces) == want);
  if (want == 0) check(pieces.messages.size() == 1 && pieces.messages[0] == inflated);

  // Outbound: the same bytes compressed round-trip exactly.
  const auto plain = ws::make_frame(payload, ws::Opcode::binary);
  const auto sent = ws::deflated(plain, {.min_bytes = 0, .level = 1 + (data[0] >> 4) % 9});
  if (sent != plain) {
    const std::string_view b = sent->bytes();
    check((static_cast<uint8_t>(b[0]) & 0x40) != 0);
    const uint8_t len7 = static_cast<uint8_t>(b[1]) & 0x7F;
    const size_t header = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    check(b.size() - header < payload.size());
    std::string_view back;
    check(ws::inflate_message(b.substr(header), payload.size(), back) == 0);
    check(back == payload);
  }
  return 0;
}
