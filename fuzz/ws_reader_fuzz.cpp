// libFuzzer target for the WebSocket frame parser (ws::MessageReader): feeds
// arbitrary bytes in chunks chosen by the first input byte and checks that
// the reader never crashes or reads outside what it was given, that what it
// reports is well-formed (text is UTF-8, control payloads fit 125 bytes,
// close codes are valid), and that once it failed or saw a close frame it
// stays there: same result, no more handler calls, no memory held. The
// chunked run is also compared with a run on the whole input at once: what
// the reader reports must not depend on how the bytes arrive.
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ws/frame_codec.hpp"

namespace {

namespace ws = herald::ws;

[[noreturn]] void fail() {
  std::abort();
}

void check(bool condition) {
  if (!condition) fail();
}

struct CheckingHandler : ws::MessageHandler {
  size_t max_message = 0;
  size_t calls = 0;
  bool closed = false;
  std::vector<std::string> log;  // one entry per call: kind, code or opcode, payload

  void on_message(ws::Opcode op, std::string_view payload) override {
    seen();
    check(op == ws::Opcode::text || op == ws::Opcode::binary);
    check(payload.size() <= max_message);
    if (op == ws::Opcode::text) check(simdjson::validate_utf8(payload.data(), payload.size()));
    record(op == ws::Opcode::text ? "T" : "B", payload);
  }
  void on_ping(std::string_view payload) override {
    seen();
    check(payload.size() <= ws::kMaxControlPayload);
    record("P", payload);
  }
  void on_pong(std::string_view payload) override {
    seen();
    check(payload.size() <= ws::kMaxControlPayload);
    record("O", payload);
  }
  void on_close(uint16_t code, std::string_view reason) override {
    seen();
    check(code == ws::close_code::no_status || ws::is_valid_received_close_code(code));
    check(code != ws::close_code::no_status || reason.empty());
    check(reason.size() <= ws::kMaxControlPayload - 2);
    check(simdjson::validate_utf8(reason.data(), reason.size()));
    record("C" + std::to_string(code) + ":", reason);
    closed = true;
  }

  void seen() {
    check(!closed);
    ++calls;
  }
  // Copies every byte, so ASan sees a view into freed or foreign memory.
  void record(std::string kind, std::string_view payload) { log.push_back(kind.append(payload)); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte: low 4 bits pick the chunking, high 4 bits the message limit.
  const uint8_t control = data[0];
  ++data;
  --size;
  const size_t max_message = size_t{16} << (control >> 4);  // 16 B .. 512 KiB
  const unsigned mode = control & 0x0F;

  ws::MessageReader reader(max_message);
  CheckingHandler handler;
  handler.max_message = max_message;
  uint32_t state = control * 2654435761u + 1;  // chunk sizes for the random modes
  uint16_t result = 0;
  size_t pos = 0;
  while (pos < size) {
    size_t chunk;
    if (mode == 0) {
      chunk = size;  // everything at once
    } else if (mode <= 8) {
      chunk = mode;  // fixed chunks of 1..8 bytes
    } else {
      state = state * 1103515245u + 12345u;
      chunk = 1 + (state >> 16) % (mode == 9 ? 3 : mode == 15 ? 4096 : 64u << (mode - 10));
    }
    chunk = std::min(chunk, size - pos);
    // Each chunk in its own exact-size allocation: reading past it trips ASan.
    std::unique_ptr<char[]> piece(new char[chunk]);
    std::memcpy(piece.get(), data + pos, chunk);
    pos += chunk;

    const bool was_done = reader.done();
    const size_t calls_before = handler.calls;
    const uint16_t r = reader.feed(piece.get(), chunk, handler);
    if (was_done) {
      check(r == result);  // sticky result
      check(handler.calls == calls_before);
    }
    result = r;
    check(r == 0 || r == ws::close_code::protocol_error || r == ws::close_code::invalid_payload ||
          r == ws::close_code::message_too_big);
    if (r != 0) check(reader.done());
    if (handler.closed) check(reader.done() && r == 0);
    if (reader.done()) check(reader.idle());
    if (reader.idle()) check(reader.buffered_capacity() == 0);
    check(reader.buffered_bytes() <= max_message + 14 + ws::kMaxControlPayload + 6);
  }
  // One more feed after the end changes nothing once done.
  if (reader.done()) {
    char byte = '\x81';
    const size_t calls_before = handler.calls;
    check(reader.feed(&byte, 1, handler) == result);
    check(handler.calls == calls_before);
  }

  // The same bytes delivered at once give the same result and the same calls.
  if (mode != 0) {
    ws::MessageReader whole_reader(max_message);
    CheckingHandler whole;
    whole.max_message = max_message;
    std::unique_ptr<char[]> copy(new char[size]);
    if (size != 0) std::memcpy(copy.get(), data, size);
    check(whole_reader.feed(copy.get(), size, whole) == result);
    check(whole.log == handler.log);
    check(whole_reader.buffered_bytes() == reader.buffered_bytes());
  }
  return 0;
}
