// Unit tests for the RFC 6455 frame codec (src/ws/frame_codec.*). The
// reader tests replay the case groups of the Autobahn TestSuite (1 framing,
// 2 pings/pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8,
// 7 close handling, 9 limits) byte for byte, as masked client frames, and
// deliver every stream whole, byte by byte, split at every position and in
// random chunks: the outcome must never depend on how the bytes arrive.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstring>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ws/frame_codec.hpp"

namespace {

namespace ws = herald::ws;
using ws::Opcode;
using namespace std::string_literals;

constexpr uint8_t kCont = 0x0;
constexpr uint8_t kText = 0x1;
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;
constexpr uint8_t kPong = 0xA;
constexpr size_t kMax = size_t{1} << 20;  // large enough for every case but the limit tests

std::mt19937& rng() {
  static std::mt19937 gen(0x6865726c);
  return gen;
}

// ---- building client frames -------------------------------------------

struct FrameOpts {
  bool fin = true;
  uint8_t rsv = 0;                                 // 3 bits: RSV1 = 4, RSV2 = 2, RSV3 = 1
  bool masked = true;                              // clients must mask
  int length_bits = 0;                             // 0: shortest form, else 7, 16 or 64
  std::optional<uint32_t> key = std::nullopt;      // masking key, random by default
  std::optional<uint64_t> claimed = std::nullopt;  // length written in the header
};

std::string frame(uint8_t opcode, std::string_view payload, FrameOpts o = {}) {
  std::string out;
  out += static_cast<char>((o.fin ? 0x80 : 0) | ((o.rsv & 7) << 4) | (opcode & 0x0F));
  const uint8_t mask_bit = o.masked ? 0x80 : 0;
  const uint64_t n = o.claimed.value_or(payload.size());
  const int bits = o.length_bits != 0 ? o.length_bits : n < 126 ? 7 : n <= 0xFFFF ? 16 : 64;
  if (bits == 7) {
    out += static_cast<char>(mask_bit | n);
  } else if (bits == 16) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) out += static_cast<char>(n >> (8 * i));
  }
  if (!o.masked) return out + std::string(payload);
  const uint32_t k = o.key.value_or(static_cast<uint32_t>(rng()()));
  const uint8_t key[4] = {static_cast<uint8_t>(k >> 24), static_cast<uint8_t>(k >> 16),
                          static_cast<uint8_t>(k >> 8), static_cast<uint8_t>(k)};
  out.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    out += static_cast<char>(payload[i] ^ static_cast<char>(key[i & 3]));
  }
  return out;
}

std::string text(std::string_view p, bool fin = true) {
  return frame(kText, p, {.fin = fin});
}
std::string binary(std::string_view p, bool fin = true) {
  return frame(kBinary, p, {.fin = fin});
}
std::string cont(std::string_view p, bool fin = true) {
  return frame(kCont, p, {.fin = fin});
}
std::string ping(std::string_view p) {
  return frame(kPing, p);
}
std::string pong(std::string_view p) {
  return frame(kPong, p);
}
std::string close_frame(uint16_t code, std::string_view reason = {}) {
  std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return frame(kClose, payload + std::string(reason));
}

// A text message sent as one fragment per piece.
std::string fragmented(uint8_t opcode, const std::vector<std::string>& pieces) {
  std::string out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    out += frame(i == 0 ? opcode : kCont, pieces[i], {.fin = i + 1 == pieces.size()});
  }
  return out;
}

std::vector<std::string> bytes_of(std::string_view s) {
  std::vector<std::string> out;
  for (char c : s) out.emplace_back(1, c);
  return out;
}

// ---- recording what the reader reports --------------------------------

struct Event {
  char kind = 'M';  // M message, P ping, O pong, C close
  Opcode op = Opcode::text;
  std::string payload;
  uint16_t code = 0;
  bool operator==(const Event&) const = default;
};

std::string shown(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 48; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  if (s.size() > 48) out += "...";
  return out;
}

void PrintTo(const Event& e, std::ostream* os) {
  *os << e.kind << "(";
  if (e.kind == 'M') *os << (e.op == Opcode::text ? "text " : "binary ");
  if (e.kind == 'C') *os << e.code << " ";
  *os << e.payload.size() << " bytes \"" << shown(e.payload) << "\")";
}

Event Text(std::string p) {
  return {'M', Opcode::text, std::move(p), 0};
}
Event Binary(std::string p) {
  return {'M', Opcode::binary, std::move(p), 0};
}
Event Ping(std::string p) {
  return {'P', Opcode::text, std::move(p), 0};
}
Event Pong(std::string p) {
  return {'O', Opcode::text, std::move(p), 0};
}
Event Close(uint16_t code, std::string reason = {}) {
  return {'C', Opcode::text, std::move(reason), code};
}

struct Recorder : ws::MessageHandler {
  std::vector<Event> events;
  std::vector<std::string_view> views;  // as received, valid only during the feed
  bool closed = false;

  void on_message(Opcode op, std::string_view p) override { add({'M', op, std::string(p), 0}, p); }
  void on_ping(std::string_view p) override { add(Ping(std::string(p)), p); }
  void on_pong(std::string_view p) override { add(Pong(std::string(p)), p); }
  void on_close(uint16_t code, std::string_view reason) override {
    add(Close(code, std::string(reason)), reason);
    closed = true;
  }
  void add(Event e, std::string_view view) {
    EXPECT_FALSE(closed) << "handler called after on_close";
    events.push_back(std::move(e));
    views.push_back(view);
  }
};

struct Outcome {
  uint16_t code = 0;
  std::vector<Event> events;
  bool operator==(const Outcome&) const = default;
};

void PrintTo(const Outcome& o, std::ostream* os) {
  *os << "code " << o.code << ", events [";
  for (const auto& e : o.events) {
    PrintTo(e, os);
    *os << " ";
  }
  *os << "]";
}

Outcome ok(std::vector<Event> events) {
  return {0, std::move(events)};
}
Outcome failed(uint16_t code, std::vector<Event> events = {}) {
  return {code, std::move(events)};
}

// Feeds `stream` cut into pieces of the given sizes, each in its own heap
// buffer (so ASan catches any read past a piece), and checks the reader's
// invariants on the way: once done, results and handler calls stop.
Outcome run(std::string_view stream, const std::vector<size_t>& sizes, size_t max = kMax) {
  ws::MessageReader reader(max);
  Recorder rec;
  uint16_t code = 0;
  size_t pos = 0;
  for (size_t size : sizes) {
    std::vector<char> piece(stream.begin() + pos, stream.begin() + pos + size);
    pos += size;
    const bool was_done = reader.done();
    const size_t events_before = rec.events.size();
    const uint16_t previous = code;
    code = reader.feed(piece.data(), piece.size(), rec);
    if (was_done) {
      EXPECT_EQ(code, previous);
      EXPECT_EQ(rec.events.size(), events_before);
    }
    if (reader.done()) {
      EXPECT_TRUE(reader.idle());
      EXPECT_EQ(reader.buffered_capacity(), 0u);
    }
    if (reader.idle()) {
      EXPECT_EQ(reader.buffered_capacity(), 0u);
    }
    EXPECT_LE(reader.buffered_bytes(), max + 14 + 131);
  }
  EXPECT_EQ(pos, stream.size());
  return {code, rec.events};
}

std::vector<size_t> chunks_of(size_t n, size_t k) {
  std::vector<size_t> sizes;
  for (size_t pos = 0; pos < n; pos += k) sizes.push_back(std::min(k, n - pos));
  return sizes;
}

std::vector<size_t> random_chunks(size_t n, size_t max_chunk) {
  std::vector<size_t> sizes;
  std::uniform_int_distribution<size_t> dist(1, max_chunk);
  for (size_t pos = 0; pos < n;) {
    const size_t k = std::min(dist(rng()), n - pos);
    sizes.push_back(k);
    pos += k;
  }
  return sizes;
}

// The outcome must be `want` however the stream is chopped.
void expect_stream(std::string_view stream, const Outcome& want, size_t max = kMax) {
  const size_t n = stream.size();
  EXPECT_EQ(run(stream, {n}, max), want) << "delivered whole";
  if (::testing::Test::HasFailure()) return;
  if (n <= 300'000) {
    EXPECT_EQ(run(stream, chunks_of(n, 1), max), want) << "byte by byte";
  }
  for (size_t k : {2, 3, 5, 7, 13, 997}) {
    if (n > 300'000 && k < 997) continue;
    EXPECT_EQ(run(stream, chunks_of(n, k), max), want) << "chunks of " << k;
    if (::testing::Test::HasFailure()) return;
  }
  if (n <= 600) {
    for (size_t i = 1; i < n; ++i) {
      EXPECT_EQ(run(stream, {i, n - i}, max), want) << "split at " << i;
      if (::testing::Test::HasFailure()) return;
    }
  }
  for (int round = 0; round < 8; ++round) {
    EXPECT_EQ(run(stream, random_chunks(n, round < 4 ? 20 : 5000), max), want) << "random chunks";
    if (::testing::Test::HasFailure()) return;
  }
}

// ---- 1.x framing --------------------------------------------------------

const size_t kLengths[] = {0, 125, 126, 127, 128, 65535, 65536};

TEST(Autobahn1Framing, TextPayloadLengths_1_1_1to7) {
  for (size_t len : kLengths) {
    SCOPED_TRACE("length " + std::to_string(len));
    const std::string payload(len, '*');
    expect_stream(text(payload), ok({Text(payload)}));
  }
}

TEST(Autobahn1Framing, BinaryPayloadLengths_1_2_1to7) {
  for (size_t len : kLengths) {
    SCOPED_TRACE("length " + std::to_string(len));
    const std::string payload(len, '\xfe');
    expect_stream(binary(payload), ok({Binary(payload)}));
  }
}

TEST(Autobahn1Framing, LengthFormsAre7_16_64Bit) {
  EXPECT_EQ(static_cast<uint8_t>(text(std::string(125, 'a'))[1]), 0x80 | 125);
  EXPECT_EQ(static_cast<uint8_t>(text(std::string(126, 'a'))[1]), 0x80 | 126);
  EXPECT_EQ(static_cast<uint8_t>(text(std::string(65535, 'a'))[1]), 0x80 | 126);
  EXPECT_EQ(static_cast<uint8_t>(text(std::string(65536, 'a'))[1]), 0x80 | 127);
  // Non-minimal length encodings are tolerated (Autobahn does not test them).
  expect_stream(frame(kText, "abc", {.length_bits = 16}), ok({Text("abc")}));
  expect_stream(frame(kBinary, "abc", {.length_bits = 64}), ok({Binary("abc")}));
}

TEST(Autobahn1Framing, Text65536Chopped997_1_1_8) {
  const std::string payload(65536, '*');
  EXPECT_EQ(run(text(payload), chunks_of(65536 + 14, 997)), ok({Text(payload)}));
}

TEST(Autobahn1Framing, Binary65536Chopped997_1_2_8) {
  const std::string payload(65536, '\xfe');
  EXPECT_EQ(run(binary(payload), chunks_of(65536 + 14, 997)), ok({Binary(payload)}));
}

TEST(Autobahn1Framing, ManyFramesInOneRead) {
  std::string stream;
  std::vector<Event> want;
  for (size_t len = 0; len < 300; len += 7) {
    std::string payload(len, 'x');
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>('a' + (i + len) % 26);
    stream += text(payload);
    want.push_back(Text(payload));
  }
  expect_stream(stream, ok(want));
}

TEST(Autobahn1Framing, UnmaskingAllLengthsAndKeys) {
  // Every length around the word-at-a-time boundaries, with edge and random keys.
  for (uint32_t key : {0u, 0xFFFFFFFFu, 0x01020304u, 0x80808080u, static_cast<uint32_t>(rng()())}) {
    for (size_t len = 0; len <= 80; ++len) {
      std::string payload(len, '\0');
      for (auto& c : payload) c = static_cast<char>(rng()());
      EXPECT_EQ(run(frame(kBinary, payload, {.key = key}), {len + 6 + (len >= 126 ? 2 : 0)}),
                ok({Binary(payload)}));
    }
  }
}

TEST(Autobahn1Framing, Length64WithTopBitSetIsProtocolError) {
  const std::string stream = frame(kBinary, "", {.claimed = uint64_t{1} << 63});
  expect_stream(stream, failed(1002));
  // Known from the first length byte, before the rest of the header.
  EXPECT_EQ(run(stream.substr(0, 3), {3}), failed(1002));
  EXPECT_EQ(run(stream.substr(0, 3), {1, 1, 1}), failed(1002));
  EXPECT_EQ(run(stream.substr(0, 4), {2, 2}), failed(1002));  // found by the fuzzer
}

TEST(Autobahn1Framing, UnmaskedFramesAreProtocolErrors) {
  expect_stream(frame(kText, "Hello", {.masked = false}), failed(1002));
  expect_stream(frame(kBinary, "", {.masked = false}), failed(1002));
  expect_stream(frame(kPing, "x", {.masked = false}), failed(1002));
  expect_stream(frame(kClose, "", {.masked = false}), failed(1002));
  expect_stream(text("ok") + frame(kText, "no mask", {.masked = false}),
                failed(1002, {Text("ok")}));
  // A masked first fragment does not excuse an unmasked continuation.
  expect_stream(text("a", false) + frame(kCont, "b", {.masked = false}), failed(1002));
}

// ---- 2.x pings and pongs --------------------------------------------

TEST(Autobahn2PingPong, PingWithoutPayload_2_1) {
  expect_stream(ping(""), ok({Ping("")}));
}

TEST(Autobahn2PingPong, PingWithTextPayload_2_2) {
  expect_stream(ping("Hello, world!"), ok({Ping("Hello, world!")}));
}

TEST(Autobahn2PingPong, PingWithBinaryPayload_2_3) {
  const std::string payload = "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"s;
  expect_stream(ping(payload), ok({Ping(payload)}));
}

TEST(Autobahn2PingPong, PingWith125BytePayload_2_4) {
  const std::string payload(125, '\xfe');
  expect_stream(ping(payload), ok({Ping(payload)}));
}

TEST(Autobahn2PingPong, PingWith126BytePayloadFails_2_5) {
  const std::string stream = ping(std::string(126, '\xfe'));
  expect_stream(stream, failed(1002));
  EXPECT_EQ(run(stream.substr(0, 2), {2}), failed(1002)) << "known from the first two bytes";
}

TEST(Autobahn2PingPong, PingWith125BytesChopped_2_6) {
  const std::string payload(125, '\xfe');
  EXPECT_EQ(run(ping(payload), chunks_of(131, 1)), ok({Ping(payload)}));
}

TEST(Autobahn2PingPong, UnsolicitedPongWithoutPayload_2_7) {
  expect_stream(pong(""), ok({Pong("")}));
}

TEST(Autobahn2PingPong, UnsolicitedPongWithPayload_2_8) {
  expect_stream(pong("unsolicited pong payload"), ok({Pong("unsolicited pong payload")}));
}

TEST(Autobahn2PingPong, UnsolicitedPongThenPing_2_9) {
  expect_stream(pong("unsolicited pong payload") + ping("ping payload"),
                ok({Pong("unsolicited pong payload"), Ping("ping payload")}));
}

TEST(Autobahn2PingPong, TenPings_2_10_and_2_11) {
  std::string stream;
  std::vector<Event> want;
  for (int i = 0; i < 10; ++i) {
    stream += ping("payload-" + std::to_string(i));
    want.push_back(Ping("payload-" + std::to_string(i)));
  }
  expect_stream(stream, ok(want));
}

TEST(Autobahn2PingPong, FragmentedPingFails) {
  expect_stream(frame(kPing, "fragment1", {.fin = false}) + cont("fragment2"), failed(1002));
}

// ---- 3.x reserved bits ------------------------------------------------

TEST(Autobahn3ReservedBits, TextWithRsv1_3_1) {
  expect_stream(frame(kText, "Hello, world!", {.rsv = 4}), failed(1002));
}

TEST(Autobahn3ReservedBits, ValidTextThenRsv2ThenPing_3_2) {
  expect_stream(
      text("Hello, world!") + frame(kText, "Hello, world!", {.rsv = 2}) + ping("Hello, world!"),
      failed(1002, {Text("Hello, world!")}));
}

TEST(Autobahn3ReservedBits, ValidTextThenRsv3ThenPing_3_3_and_3_4) {
  for (uint8_t rsv : {3, 4}) {
    expect_stream(
        text("Hello, world!") + frame(kText, "Hello, world!", {.rsv = rsv}) + ping("Hello, world!"),
        failed(1002, {Text("Hello, world!")}));
  }
}

TEST(Autobahn3ReservedBits, BinaryWithRsv5_3_5) {
  expect_stream(frame(kBinary, "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"s, {.rsv = 5}), failed(1002));
}

TEST(Autobahn3ReservedBits, PingWithRsv6_3_6) {
  expect_stream(frame(kPing, "Hello, world!", {.rsv = 6}), failed(1002));
}

TEST(Autobahn3ReservedBits, CloseWithRsv7_3_7) {
  expect_stream(frame(kClose, "\x03\xe8"s, {.rsv = 7}), failed(1002));
}

TEST(Autobahn3ReservedBits, EveryRsvCombinationOnEveryOpcodeAfterAValidFrame) {
  for (uint8_t rsv = 1; rsv <= 7; ++rsv) {
    for (uint8_t op : {kText, kBinary, kPing, kPong, kClose}) {
      SCOPED_TRACE("rsv " + std::to_string(rsv) + " opcode " + std::to_string(op));
      expect_stream(binary("before") + frame(op, "", {.rsv = rsv}) + text("after"),
                    failed(1002, {Binary("before")}));
    }
    // On a continuation of an open message, and with a control frame between.
    expect_stream(text("frag", false) + frame(kCont, "ment", {.rsv = rsv}), failed(1002));
    expect_stream(text("frag", false) + frame(kPing, "p", {.rsv = rsv}) + cont("ment"),
                  failed(1002));
  }
}

// ---- 4.x opcodes ------------------------------------------------------

TEST(Autobahn4Opcodes, ReservedNonControlOpcodes_4_1) {
  expect_stream(frame(3, ""), failed(1002));                         // 4.1.1
  expect_stream(frame(4, "reserved opcode payload"), failed(1002));  // 4.1.2
  expect_stream(text("Hello, world!") + frame(5, "") + ping("Hello, world!"),
                failed(1002, {Text("Hello, world!")}));  // 4.1.3
  expect_stream(text("Hello, world!") + frame(6, "reserved opcode payload") + ping("Hello, world!"),
                failed(1002, {Text("Hello, world!")}));  // 4.1.4
  const std::string chopped =
      text("Hello, world!") + frame(7, "reserved opcode payload") + ping("Hello, world!");
  EXPECT_EQ(run(chopped, chunks_of(chopped.size(), 1)),
            failed(1002, {Text("Hello, world!")}));  // 4.1.5 chopped
}

TEST(Autobahn4Opcodes, ReservedControlOpcodes_4_2) {
  expect_stream(frame(0xB, ""), failed(1002));                         // 4.2.1
  expect_stream(frame(0xC, "reserved opcode payload"), failed(1002));  // 4.2.2
  expect_stream(text("Hello, world!") + frame(0xD, "") + ping("Hello, world!"),
                failed(1002, {Text("Hello, world!")}));  // 4.2.3
  expect_stream(text("Hello, world!") + frame(0xE, "reserved opcode payload") + ping("x"),
                failed(1002, {Text("Hello, world!")}));  // 4.2.4
  expect_stream(text("Hello, world!") + frame(0xF, "reserved opcode payload") + ping("x"),
                failed(1002, {Text("Hello, world!")}));  // 4.2.5
}

TEST(Autobahn4Opcodes, EveryReservedOpcodeFailsFromTheFirstByte) {
  for (uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    SCOPED_TRACE("opcode " + std::to_string(op));
    expect_stream(frame(op, "payload"), failed(1002));
    EXPECT_EQ(run(frame(op, "payload").substr(0, 1), {1}), failed(1002));
  }
}

// ---- 5.x fragmentation ------------------------------------------------

TEST(Autobahn5Fragmentation, FragmentedPingAndPongFail_5_1_and_5_2) {
  expect_stream(frame(kPing, "fragment1", {.fin = false}) + cont("fragment2"), failed(1002));
  expect_stream(frame(kPong, "fragment1", {.fin = false}) + cont("fragment2"), failed(1002));
  expect_stream(frame(kClose, "\x03\xe8"s, {.fin = false}) + cont(""), failed(1002));
}

TEST(Autobahn5Fragmentation, TextInTwoFragments_5_3to5_5) {
  expect_stream(text("fragment1", false) + cont("fragment2"), ok({Text("fragment1fragment2")}));
}

TEST(Autobahn5Fragmentation, PingBetweenFragments_5_6to5_8) {
  expect_stream(text("fragment1", false) + ping("pongme 2!") + cont("fragment2"),
                ok({Ping("pongme 2!"), Text("fragment1fragment2")}));
}

TEST(Autobahn5Fragmentation, ContinuationWithoutStart_5_9to5_14) {
  for (bool fin : {true, false}) {
    expect_stream(cont("non-continuation payload", fin) + text("Hello, world!"), failed(1002));
  }
  // A continuation right after a finished message has nothing to continue.
  expect_stream(text("done") + cont("more"), failed(1002, {Text("done")}));
}

TEST(Autobahn5Fragmentation, FragmentsAfterAFinishedMessage_5_15) {
  expect_stream(
      text("fragment1", false) + cont("fragment2") + cont("fragment3", false) + text("fragment4"),
      failed(1002, {Text("fragment1fragment2")}));
}

TEST(Autobahn5Fragmentation, StartingWithContinuation_5_16_and_5_17) {
  for (int i = 0; i < 2; ++i) {
    expect_stream(cont("fragment1", i == 0) + text("fragment2", false) + cont("fragment3"),
                  failed(1002));
  }
}

TEST(Autobahn5Fragmentation, NewMessageDuringFragmentedMessage_5_18) {
  expect_stream(text("fragment1", false) + text("fragment2"), failed(1002));
  expect_stream(text("fragment1", false) + binary("fragment2", false), failed(1002));
  expect_stream(binary("fragment1", false) + ping("p") + text("fragment2"),
                failed(1002, {Ping("p")}));
}

TEST(Autobahn5Fragmentation, FiveFragmentsWithPings_5_19_and_5_20) {
  const std::string stream = text("fragment1", false) + cont("fragment2", false) +
                             ping("pongme 1!") + cont("fragment3", false) +
                             cont("fragment4", false) + ping("pongme 2!") + cont("fragment5");
  expect_stream(stream, ok({Ping("pongme 1!"), Ping("pongme 2!"),
                            Text("fragment1fragment2fragment3fragment4fragment5")}));
}

TEST(Autobahn5Fragmentation, BinaryFragmentsAndManyFragments) {
  expect_stream(binary("\x00\x01"s, false) + cont("\x02"s, false) + cont("\xff"s),
                ok({Binary("\x00\x01\x02\xff"s)}));
  std::string payload;
  for (int i = 0; i < 1000; ++i) payload += static_cast<char>('a' + i % 26);
  EXPECT_EQ(run(fragmented(kText, bytes_of(payload)), {7000}), ok({Text(payload)}));
  const std::string stream = fragmented(kBinary, bytes_of(payload));
  EXPECT_EQ(run(stream, chunks_of(stream.size(), 3)), ok({Binary(payload)}));
}

TEST(Autobahn5Fragmentation, EmptyFragments_6_1_2_and_6_1_3) {
  expect_stream(text("", false) + cont("", false) + cont(""), ok({Text("")}));
  expect_stream(text("", false) + cont("middle frame payload", false) + cont(""),
                ok({Text("middle frame payload")}));
  expect_stream(text("", false) + cont("", false) + cont("last"), ok({Text("last")}));
  expect_stream(binary("", false) + ping("") + cont(""), ok({Ping(""), Binary("")}));
}

TEST(Autobahn5Fragmentation, MessagesAfterAFragmentedMessage) {
  expect_stream(text("a", false) + cont("b") + binary("c") + text("d", false) + cont("e"),
                ok({Text("ab"), Binary("c"), Text("de")}));
}

// ---- 6.x UTF-8 --------------------------------------------------------

const std::string kKosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // κόσμε

struct Utf8Case {
  std::string bytes;
  bool valid;
};

// The byte sequences of Autobahn cases 6.5-6.23 (Markus Kuhn's UTF-8
// decoder stress test).
std::vector<Utf8Case> autobahn_utf8_cases() {
  std::vector<Utf8Case> cases = {
      {kKosme, true},                       // 6.5.1
      {"\x00"s, true},                      // 6.7.1 first possible
      {"\xc2\x80", true},                   // 6.7.2
      {"\xe0\xa0\x80", true},               // 6.7.3
      {"\xf0\x90\x80\x80", true},           // 6.7.4
      {"\xf8\x88\x80\x80\x80", false},      // 6.8.1 five bytes
      {"\xfc\x84\x80\x80\x80\x80", false},  // 6.8.2 six bytes
      {"\x7f", true},                       // 6.9.1 last possible
      {"\xdf\xbf", true},                   // 6.9.2
      {"\xef\xbf\xbf", true},               // 6.9.3
      {"\xf4\x8f\xbf\xbf", true},           // 6.9.4
      {"\xf7\xbf\xbf\xbf", false},          // 6.10.1
      {"\xfb\xbf\xbf\xbf\xbf", false},      // 6.10.2
      {"\xfd\xbf\xbf\xbf\xbf\xbf", false},  // 6.10.3
      {"\xed\x9f\xbf", true},               // 6.11.1 other boundaries
      {"\xee\x80\x80", true},               // 6.11.2
      {"\xef\xbf\xbd", true},               // 6.11.3
      {"\xf4\x8f\xbf\xbf", true},           // 6.11.4
      {"\xf4\x90\x80\x80", false},          // 6.11.5 above U+10FFFF
      {"\x80", false},                      // 6.12.1 unexpected continuation
      {"\xbf", false},                      // 6.12.2
      {"\x80\xbf", false},                  // 6.12.3
      {"\x80\xbf\x80", false},              // 6.12.4
      {"\x80\xbf\x80\xbf", false},          // 6.12.5
      {"\x80\xbf\x80\xbf\x80", false},      // 6.12.6
      {"\x80\xbf\x80\xbf\x80\xbf", false},  // 6.12.7
      {"\xc0", false},                      // 6.14.1 last byte missing
      {"\xe0\x80", false},                  // 6.14.2
      {"\xf0\x80\x80", false},              // 6.14.3
      {"\xf8\x80\x80\x80", false},          // 6.14.4
      {"\xfc\x80\x80\x80\x80", false},      // 6.14.5
      {"\xdf", false},                      // 6.14.6
      {"\xef\xbf", false},                  // 6.14.7
      {"\xf7\xbf\xbf", false},              // 6.14.8
      {"\xfb\xbf\xbf\xbf", false},          // 6.14.9
      {"\xfd\xbf\xbf\xbf\xbf", false},      // 6.14.10
      {"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"
       "\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
       false},                              // 6.15.1 concatenation
      {"\xfe", false},                      // 6.16.1 impossible bytes
      {"\xff", false},                      // 6.16.2
      {"\xfe\xfe\xff\xff", false},          // 6.16.3
      {"\xc0\xaf", false},                  // 6.17.1 overlong '/'
      {"\xe0\x80\xaf", false},              // 6.17.2
      {"\xf0\x80\x80\xaf", false},          // 6.17.3
      {"\xf8\x80\x80\x80\xaf", false},      // 6.17.4
      {"\xfc\x80\x80\x80\x80\xaf", false},  // 6.17.5
      {"\xc1\xbf", false},                  // 6.18.1 maximum overlong
      {"\xe0\x9f\xbf", false},              // 6.18.2
      {"\xf0\x8f\xbf\xbf", false},          // 6.18.3
      {"\xf8\x87\xbf\xbf\xbf", false},      // 6.18.4
      {"\xfc\x83\xbf\xbf\xbf\xbf", false},  // 6.18.5
      {"\xc0\x80", false},                  // 6.19.1 overlong NUL
      {"\xe0\x80\x80", false},              // 6.19.2
      {"\xf0\x80\x80\x80", false},          // 6.19.3
      {"\xf8\x80\x80\x80\x80", false},      // 6.19.4
      {"\xfc\x80\x80\x80\x80\x80", false},  // 6.19.5
      {"\xed\xa0\x80", false},              // 6.20.1 single surrogates
      {"\xed\xad\xbf", false},              // 6.20.2
      {"\xed\xae\x80", false},              // 6.20.3
      {"\xed\xaf\xbf", false},              // 6.20.4
      {"\xed\xb0\x80", false},              // 6.20.5
      {"\xed\xbe\x80", false},              // 6.20.6
      {"\xed\xbf\xbf", false},              // 6.20.7
      {"\xed\xa0\x80\xed\xb0\x80", false},  // 6.21.1 paired surrogates
      {"\xed\xa0\x80\xed\xbf\xbf", false},  // 6.21.2
      {"\xed\xad\xbf\xed\xb0\x80", false},  // 6.21.3
      {"\xed\xad\xbf\xed\xbf\xbf", false},  // 6.21.4
      {"\xed\xae\x80\xed\xb0\x80", false},  // 6.21.5
      {"\xed\xae\x80\xed\xbf\xbf", false},  // 6.21.6
      {"\xed\xaf\xbf\xed\xb0\x80", false},  // 6.21.7
      {"\xed\xaf\xbf\xed\xbf\xbf", false},  // 6.21.8
      {"\xef\xbf\xbe", true},               // 6.22.1 noncharacters are valid
      {"\xef\xbf\xbf", true},               // 6.22.2
      {"\xf0\x9f\xbf\xbe", true},           // 6.22.3
      {"\xf0\x9f\xbf\xbf", true},           // 6.22.4
      {"\xf4\x8f\xbf\xbe", true},           // 6.22.31
      {"\xf4\x8f\xbf\xbf", true},           // 6.22.32
      {"\xef\xb7\x90", true},               // 6.22.33 U+FDD0
      {"\xef\xb7\xaf", true},               // 6.22.34 U+FDEF
      {"\xef\xbf\xb9", true},               // 6.23.1 U+FFF9
      {"\xef\xbf\xbd", true},               // 6.23.4 U+FFFD
      {"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", true},  // 6.2
  };
  // 6.12.8: all 64 continuation bytes.
  std::string all_continuations;
  for (int c = 0x80; c <= 0xbf; ++c) all_continuations += static_cast<char>(c);
  cases.push_back({all_continuations, false});
  // 6.13.x: every lonely start byte followed by a space.
  for (int c = 0xc0; c <= 0xfd; ++c)
    cases.push_back({std::string{static_cast<char>(c), ' '}, false});
  // 6.6.x: every prefix of κόσμε, valid only at code point boundaries.
  for (size_t n = 1; n <= kKosme.size(); ++n) {
    const bool boundary = n == 2 || n == 5 || n == 7 || n == 9 || n == 11;
    cases.push_back({kKosme.substr(0, n), boundary});
  }
  return cases;
}

Outcome utf8_outcome(const Utf8Case& c) {
  return c.valid ? ok({Text(c.bytes)}) : failed(1007);
}

TEST(Autobahn6Utf8, EmptyText_6_1_1) {
  expect_stream(text(""), ok({Text("")}));
}

TEST(Autobahn6Utf8, ValidTextInOneFrameTwoFragmentsAndByteFragments_6_2) {
  const std::string hello =
      "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!";
  expect_stream(text(hello), ok({Text(hello)}));  // 6.2.1
  expect_stream(fragmented(kText, {hello.substr(0, 9), hello.substr(9)}),
                ok({Text(hello)}));                                        // 6.2.2
  expect_stream(fragmented(kText, bytes_of(hello)), ok({Text(hello)}));    // 6.2.3
  expect_stream(fragmented(kText, bytes_of(kKosme)), ok({Text(kKosme)}));  // 6.2.4
}

TEST(Autobahn6Utf8, SurrogateInsideText_6_3) {
  const std::string bad = kKosme + "\xed\xa0\x80" + "edited";
  expect_stream(text(bad), failed(1007));                         // 6.3.1
  expect_stream(fragmented(kText, bytes_of(bad)), failed(1007));  // 6.3.2
  expect_stream(text(kKosme), ok({Text(kKosme)}));                // 6.5.1 valid counterpart
}

// 6.4.x: an invalid fragment fails the message as soon as it arrives, before
// the rest of the message is sent.
TEST(Autobahn6Utf8, FailFastOnInvalidFragment_6_4) {
  const std::string rest = cont("edited");
  // 6.4.1: a complete code point above U+10FFFF.
  std::string first = text(kKosme, false) + cont("\xf4\x90\x80\x80", false);
  EXPECT_EQ(run(first, {first.size()}), failed(1007));
  expect_stream(first + rest, failed(1007));
  // 6.4.2: F4 90 can no longer start a valid code point.
  first = text(kKosme + "\xf4", false) + cont("\x90", false);
  EXPECT_EQ(run(first, {first.size()}), failed(1007));
  expect_stream(first + cont("\x80\x80"
                             "edited"),
                failed(1007));
  // A surrogate's first two bytes already fail.
  first = text("ab\xed", false) + cont("\xa0", false);
  EXPECT_EQ(run(first, {first.size()}), failed(1007));
  // A lead byte that can never start a sequence.
  first = text("ab\xc0", false);
  EXPECT_EQ(run(first, {first.size()}), failed(1007));
  // But a valid incomplete prefix waits for the next fragment.
  first = text("ab\xf4", false) + cont("\x8f", false);
  EXPECT_EQ(run(first, {first.size()}), ok({}));
  expect_stream(first + cont("\xbf\xbf"), ok({Text("ab\xf4\x8f\xbf\xbf")}));
  // 6.4.3 and 6.4.4: one frame, chopped; fails when the frame is complete.
  const std::string whole = text(kKosme + "\xf4\x90\x80\x80" + "edited");
  EXPECT_EQ(run(whole, {7 + 11, 4, whole.size() - 22}), failed(1007));
}

TEST(Autobahn6Utf8, StressTestSequencesInOneFrame_6_5to6_23) {
  for (const auto& c : autobahn_utf8_cases()) {
    SCOPED_TRACE("case \"" + shown(c.bytes) + "\"");
    EXPECT_EQ(run(text(c.bytes), {c.bytes.size() + 6}), utf8_outcome(c));
    // And with text around it.
    const std::string wrapped = "abc" + c.bytes + "xyz";
    EXPECT_EQ(run(text(wrapped), {wrapped.size() + 6}),
              c.valid ? ok({Text(wrapped)}) : failed(1007));
  }
}

TEST(Autobahn6Utf8, StressTestSequencesInByteFragmentsAndChopped_6_5to6_23) {
  for (const auto& c : autobahn_utf8_cases()) {
    SCOPED_TRACE("case \"" + shown(c.bytes) + "\"");
    const std::string stream = fragmented(kText, bytes_of(c.bytes));
    EXPECT_EQ(run(stream, {stream.size()}), utf8_outcome(c)) << "one byte per fragment";
    EXPECT_EQ(run(text(c.bytes), chunks_of(c.bytes.size() + 6, 1)), utf8_outcome(c)) << "chopped";
  }
}

TEST(Autobahn6Utf8, SplitAcrossTwoFragmentsAtEveryByte) {
  for (const auto& c : autobahn_utf8_cases()) {
    for (size_t i = 0; i <= c.bytes.size(); ++i) {
      SCOPED_TRACE("case \"" + shown(c.bytes) + "\" split at " + std::to_string(i));
      const std::string stream = fragmented(kText, {c.bytes.substr(0, i), c.bytes.substr(i)});
      EXPECT_EQ(run(stream, {stream.size()}), utf8_outcome(c));
    }
  }
}

TEST(Autobahn6Utf8, ValidMultiByteTextsSplitAtEveryByteAndChopped) {
  const std::string texts[] = {
      kKosme,
      "\xf0\x9f\x98\x80 smile \xe2\x82\xac euro \xc3\xa9t\xc3\xa9 \xf4\x8f\xbf\xbf",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83"
      "\x88",
  };
  for (const auto& t : texts) {
    for (size_t i = 0; i <= t.size(); ++i) {
      for (size_t j = i; j <= t.size(); j += 3) {
        const std::string stream =
            fragmented(kText, {t.substr(0, i), t.substr(i, j - i), t.substr(j)});
        EXPECT_EQ(run(stream, {stream.size()}), ok({Text(t)}));
      }
    }
    expect_stream(fragmented(kText, bytes_of(t)) + text(t), ok({Text(t), Text(t)}));
  }
}

TEST(Autobahn6Utf8, InvalidSequencesAfterValidFragments) {
  // Truncated at the very end of the message: only the last fragment tells.
  expect_stream(text(kKosme, false) + cont("\xe1\xbd"), failed(1007));
  expect_stream(text(kKosme, false) + cont("\xce", false) + cont(""), failed(1007));
  // Overlong and out of range across fragments.
  expect_stream(text("a\xc0", false) + cont("\xaf"), failed(1007));
  expect_stream(text("a\xf4", false) + cont("\x90\x80\x80"), failed(1007));
  // Continuation bytes beyond a complete sequence.
  expect_stream(text("\xc3\xa9", false) + cont("\xa9"), failed(1007));
  // Binary messages are not checked.
  expect_stream(binary("\xc0", false) + cont("\xff"), ok({Binary("\xc0\xff")}));
}

// ---- 7.x close handling -----------------------------------------------

TEST(Autobahn7Close, MessageThenClose_7_1_1) {
  expect_stream(text("Hello World!") + close_frame(1000), ok({Text("Hello World!"), Close(1000)}));
}

TEST(Autobahn7Close, FramesAfterCloseAreNotParsed_7_1_2to7_1_4) {
  expect_stream(close_frame(1000) + close_frame(1000), ok({Close(1000)}));
  expect_stream(close_frame(1000) + ping("Hello World!"), ok({Close(1000)}));
  expect_stream(close_frame(1000) + text("Hello World!"), ok({Close(1000)}));
  // Not even garbage is looked at.
  expect_stream(close_frame(1000) + "\xff\xff\xff\xff"s + frame(3, "x"), ok({Close(1000)}));
}

TEST(Autobahn7Close, CloseBetweenFragments_7_1_5) {
  expect_stream(text("fragment1", false) + close_frame(1000) + cont("fragment2"),
                ok({Close(1000)}));
}

TEST(Autobahn7Close, LargeMessageThenCloseThenPing_7_1_6) {
  std::string big;
  while (big.size() < 256 * 1024) big += "BAsd7&jh23";
  expect_stream(text(big) + close_frame(1000) + ping("Hello World!"), ok({Text(big), Close(1000)}));
}

TEST(Autobahn7Close, EmptyClose_7_3_1) {
  expect_stream(frame(kClose, ""), ok({Close(1005)}));
}

TEST(Autobahn7Close, ClosePayloadOfOneByte_7_3_2) {
  expect_stream(frame(kClose, "a"), failed(1002));
}

TEST(Autobahn7Close, CloseWithCodeAndReason_7_3_3to7_3_5) {
  expect_stream(close_frame(1000), ok({Close(1000)}));
  expect_stream(close_frame(1000, "Hello World!"), ok({Close(1000, "Hello World!")}));
  const std::string reason(123, '*');
  expect_stream(close_frame(1000, reason), ok({Close(1000, reason)}));
  expect_stream(close_frame(1001, kKosme), ok({Close(1001, kKosme)}));
}

TEST(Autobahn7Close, CloseWithReasonTooLong_7_3_6) {
  expect_stream(close_frame(1000, std::string(124, '*')), failed(1002));
}

TEST(Autobahn7Close, CloseReasonInvalidUtf8_7_5_1) {
  expect_stream(close_frame(1000, kKosme + "\xed\xa0\x80" + "edited"), failed(1007));
  expect_stream(close_frame(1000, "\xc0\xaf"), failed(1007));
  expect_stream(close_frame(1000, "ab\xe1\xbd"), failed(1007));
}

TEST(Autobahn7Close, ValidCloseCodes_7_7) {
  for (uint16_t code :
       {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    SCOPED_TRACE("code " + std::to_string(code));
    EXPECT_TRUE(ws::is_valid_received_close_code(code));
    expect_stream(close_frame(code), ok({Close(code)}));
  }
}

TEST(Autobahn7Close, InvalidCloseCodes_7_9_and_7_13) {
  for (uint16_t code :
       {0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    SCOPED_TRACE("code " + std::to_string(code));
    EXPECT_FALSE(ws::is_valid_received_close_code(code));
    expect_stream(close_frame(code), failed(1002));
    expect_stream(close_frame(code, "reason"), failed(1002));
  }
}

TEST(Autobahn7Close, CloseAfterErrorIsIgnored) {
  expect_stream(frame(3, "") + close_frame(1000), failed(1002));
}

// ---- 9.x limits ----------------------------------------------------------

constexpr size_t kLimit = 1000;

TEST(Autobahn9Limits, SingleFrameJustUnderAndOverTheLimit) {
  for (uint8_t op : {kText, kBinary}) {
    const Event just_fits =
        op == kText ? Text(std::string(kLimit, 'x')) : Binary(std::string(kLimit, 'x'));
    expect_stream(
        frame(op, std::string(kLimit - 1, 'x')) + frame(op, std::string(kLimit, 'x')),
        ok({op == kText ? Text(std::string(kLimit - 1, 'x')) : Binary(std::string(kLimit - 1, 'x')),
            just_fits}),
        kLimit);
    expect_stream(frame(op, "ok") + frame(op, std::string(kLimit + 1, 'x')),
                  failed(1009, {op == kText ? Text("ok") : Binary("ok")}), kLimit);
  }
}

TEST(Autobahn9Limits, FragmentedJustUnderAndOverTheLimit) {
  const std::string half(kLimit / 2, 'y');
  expect_stream(text(half, false) + ping("p") + cont(half), ok({Ping("p"), Text(half + half)}),
                kLimit);
  expect_stream(binary(half, false) + cont(half + "z"), failed(1009), kLimit);
  // Control frames between fragments do not count.
  expect_stream(text(half, false) + ping(std::string(125, 'p')) + cont(half),
                ok({Ping(std::string(125, 'p')), Text(half + half)}), kLimit);
  // Many small fragments.
  std::vector<std::string> pieces(kLimit / 10, std::string(10, 'q'));
  expect_stream(fragmented(kText, pieces), ok({Text(std::string(kLimit, 'q'))}), kLimit);
  pieces.push_back("!");
  expect_stream(fragmented(kText, pieces), failed(1009), kLimit);
}

TEST(Autobahn9Limits, TooBigIsKnownFromTheHeaderBeforeBuffering) {
  // The header alone, no payload sent yet.
  std::string header = frame(kText, "", {.claimed = kLimit + 1});
  ws::MessageReader reader(kLimit);
  Recorder rec;
  EXPECT_EQ(reader.feed(header.data(), header.size(), rec), 1009);
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  EXPECT_EQ(reader.buffered_capacity(), 0u);

  // A continuation header that would take the message over the limit.
  ws::MessageReader reader2(kLimit);
  std::string stream =
      text(std::string(kLimit - 10, 'x'), false) + frame(kCont, "", {.claimed = 11});
  EXPECT_EQ(reader2.feed(stream.data(), stream.size(), rec), 1009);
  EXPECT_TRUE(rec.events.empty());

  // Absurd 64-bit lengths.
  expect_stream(frame(kBinary, "", {.claimed = uint64_t{1} << 62}), failed(1009), kLimit);
  expect_stream(frame(kBinary, "", {.claimed = (uint64_t{1} << 63) - 1}), failed(1009), kLimit);
}

TEST(Autobahn9Limits, LargeMessages_9_1_to_9_6) {
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('!' + i % 90);
  // 9.1/9.2: one frame; 9.5/9.6: chopped.
  expect_stream(text(big), ok({Text(big)}), big.size());
  expect_stream(binary(big), ok({Binary(big)}), big.size());
  expect_stream(text(big), failed(1009), big.size() - 1);
  // 9.3/9.4: fragmented in various fragment sizes.
  for (size_t frag : {64, 256, 4096, 65536}) {
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < big.size(); pos += frag) pieces.push_back(big.substr(pos, frag));
    const std::string stream = fragmented(kText, pieces);
    EXPECT_EQ(run(stream, {stream.size()}, big.size()), ok({Text(big)}));
    EXPECT_EQ(run(stream, chunks_of(stream.size(), 1000), big.size()), ok({Text(big)}));
  }
}

// ---- reader memory and zero copy ------------------------------------------

TEST(WsReaderMemory, WholeFramesAreDeliveredInPlaceWithoutCopy) {
  std::string stream = text("first") + binary(std::string(300, 'b')) + ping("p") + text("", false) +
                       cont("frag") + close_frame(1000, "bye");
  Recorder rec;
  ws::MessageReader reader(kMax);
  ASSERT_EQ(reader.feed(stream.data(), stream.size(), rec), 0);
  ASSERT_EQ(rec.views.size(), 5u);
  const char* begin = stream.data();
  const char* end = begin + stream.size();
  for (auto v : rec.views) {
    EXPECT_GE(v.data(), begin);
    EXPECT_LE(v.data() + v.size(), end);
  }
  // The payload was unmasked in place.
  EXPECT_EQ(std::string_view(rec.views[0].data(), 5), "first");
}

TEST(WsReaderMemory, IdleReaderOwnsNoHeapMemory) {
  const std::string payload(5000, 'z');
  const std::string stream = text(payload) + text("x", false) + cont(payload, false) + ping("p") +
                             cont(payload) + binary("tail");
  for (size_t k : {1, 100, 4999, 5003}) {
    ws::MessageReader reader(kMax);
    Recorder rec;
    size_t pos = 0;
    while (pos < stream.size()) {
      std::string piece = stream.substr(pos, k);
      pos += piece.size();
      ASSERT_EQ(reader.feed(piece.data(), piece.size(), rec), 0);
      if (reader.idle()) {
        EXPECT_EQ(reader.buffered_capacity(), 0u);
      }
      // Never more than the unfinished frame and the unfinished message.
      EXPECT_LE(reader.buffered_capacity(), 2 * (payload.size() + 14) + 2 * payload.size() + 64);
    }
    EXPECT_TRUE(reader.idle());
    EXPECT_EQ(reader.buffered_bytes(), 0u);
    EXPECT_EQ(reader.buffered_capacity(), 0u);
    EXPECT_EQ(rec.events.size(), 4u);
  }
}

TEST(WsReaderMemory, AnnouncedLengthIsNotReservedUpFront) {
  ws::MessageReader reader(size_t{64} << 20);
  Recorder rec;
  std::string stream = frame(kBinary, std::string(1 << 20, 'a'));
  std::string start = stream.substr(0, 100);
  ASSERT_EQ(reader.feed(start.data(), start.size(), rec), 0);
  EXPECT_EQ(reader.buffered_bytes(), 100u);
  EXPECT_LT(reader.buffered_capacity(), 1000u);
  EXPECT_FALSE(reader.idle());
}

TEST(WsReaderMemory, BufferedBytesTrackPartialFramesAndMessages) {
  ws::MessageReader reader(kMax);
  Recorder rec;
  std::string stream = text("abcdef", false);
  ASSERT_EQ(reader.feed(stream.data(), stream.size(), rec), 0);
  EXPECT_EQ(reader.buffered_bytes(), 6u);
  EXPECT_FALSE(reader.idle());
  stream = cont("ghi");
  ASSERT_EQ(reader.feed(stream.data(), 4, rec), 0);  // header only
  EXPECT_EQ(reader.buffered_bytes(), 6u + 4u);
  ASSERT_EQ(reader.feed(stream.data() + 4, stream.size() - 4, rec), 0);
  EXPECT_TRUE(reader.idle());
  EXPECT_EQ(reader.buffered_capacity(), 0u);
  EXPECT_EQ(rec.events, (std::vector<Event>{Text("abcdefghi")}));
}

TEST(WsReaderMemory, ErrorAndCloseAreSticky) {
  ws::MessageReader reader(kMax);
  Recorder rec;
  std::string stream = text("partial", false) + frame(kText, "x", {.masked = false});
  EXPECT_EQ(reader.feed(stream.data(), stream.size(), rec), 1002);
  EXPECT_TRUE(reader.done());
  EXPECT_TRUE(reader.idle());
  EXPECT_EQ(reader.buffered_capacity(), 0u);
  std::string more = text("ignored");
  EXPECT_EQ(reader.feed(more.data(), more.size(), rec), 1002);
  EXPECT_EQ(reader.feed(nullptr, 0, rec), 1002);
  EXPECT_TRUE(rec.events.empty());

  ws::MessageReader closed(kMax);
  stream = close_frame(1000) + text("ignored");
  EXPECT_EQ(closed.feed(stream.data(), stream.size(), rec), 0);
  EXPECT_TRUE(closed.done());
  EXPECT_EQ(closed.feed(more.data(), more.size(), rec), 0);
  EXPECT_EQ(rec.events, (std::vector<Event>{Close(1000)}));
}

TEST(WsReaderMemory, EmptyFeedsAnywhereAreHarmless) {
  const std::string stream = text("hello", false) + ping("p") + cont(" world");
  ws::MessageReader reader(kMax);
  Recorder rec;
  char dummy = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    EXPECT_EQ(reader.feed(&dummy, 0, rec), 0);
    std::string b(1, stream[i]);
    EXPECT_EQ(reader.feed(b.data(), 1, rec), 0);
  }
  EXPECT_EQ(rec.events, (std::vector<Event>{Ping("p"), Text("hello world")}));
}

// ---- encoding ------------------------------------------------------------

std::vector<uint8_t> header_bytes(Opcode op, uint64_t len, bool fin = true) {
  uint8_t out[ws::kMaxHeaderBytes] = {};
  const size_t n = ws::encode_header(out, op, len, fin);
  return {out, out + n};
}

TEST(WsFrameEncoding, EncodeHeaderLengths) {
  using V = std::vector<uint8_t>;
  EXPECT_EQ(header_bytes(Opcode::text, 0), (V{0x81, 0}));
  EXPECT_EQ(header_bytes(Opcode::text, 125), (V{0x81, 125}));
  EXPECT_EQ(header_bytes(Opcode::text, 126), (V{0x81, 126, 0x00, 0x7e}));
  EXPECT_EQ(header_bytes(Opcode::binary, 65535), (V{0x82, 126, 0xff, 0xff}));
  EXPECT_EQ(header_bytes(Opcode::binary, 65536), (V{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(header_bytes(Opcode::text, uint64_t{1} << 32), (V{0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0}));
  EXPECT_EQ(header_bytes(Opcode::text, 5, false), (V{0x01, 5}));
  EXPECT_EQ(header_bytes(Opcode::continuation, 5, true), (V{0x80, 5}));
  EXPECT_EQ(header_bytes(Opcode::ping, 0), (V{0x89, 0}));
  EXPECT_EQ(header_bytes(Opcode::pong, 3), (V{0x8a, 3}));
}

// Masks a server frame the way a client would, so the reader can parse it.
std::string as_client(std::string_view server_frame) {
  size_t hl = 2;
  const uint8_t len7 = static_cast<uint8_t>(server_frame[1]) & 0x7f;
  if (len7 == 126) hl = 4;
  if (len7 == 127) hl = 10;
  std::string out(server_frame.substr(0, hl));
  out[1] = static_cast<char>(out[1] | 0x80);
  const char key[4] = {'\x12', '\x34', '\x56', '\x78'};
  out.append(key, 4);
  for (size_t i = hl; i < server_frame.size(); ++i)
    out += static_cast<char>(server_frame[i] ^ key[(i - hl) & 3]);
  return out;
}

TEST(WsFrameEncoding, EncodeFrameRoundTrips) {
  for (size_t len : kLengths) {
    const std::string payload(len, 'e');
    const std::string f = ws::encode_frame(Opcode::text, payload);
    EXPECT_EQ(f.size(), len + (len < 126 ? 2 : len <= 65535 ? 4 : 10));
    EXPECT_EQ(f.substr(f.size() - len), payload);
    EXPECT_EQ(run(as_client(f), {f.size() + 4}), ok({Text(payload)}));
  }
  EXPECT_EQ(ws::encode_frame(Opcode::binary, "\x01\x02"s), "\x82\x02\x01\x02"s);
}

TEST(WsFrameEncoding, EncodeClose) {
  EXPECT_EQ(ws::encode_close(ws::close_code::no_status), "\x88\x00"s);
  EXPECT_EQ(ws::encode_close(1000), "\x88\x02\x03\xe8"s);
  EXPECT_EQ(ws::encode_close(4008, "slow"), "\x88\x06\x0f\xa8slow"s);
  // Long reasons are cut to fit 125 bytes, at a code point boundary.
  const std::string ascii = ws::encode_close(1000, std::string(300, 'r'));
  EXPECT_EQ(ascii.size(), 2u + 125u);
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";
  const std::string cut = ws::encode_close(1000, accents);
  EXPECT_EQ(cut.size(), 2u + 2u + 122u);
  EXPECT_TRUE(simdjson::validate_utf8(cut.substr(4)));
  // What we send, a client-side reader would accept.
  EXPECT_EQ(run(as_client(cut), {cut.size() + 4}), ok({Close(1000, accents.substr(0, 122))}));
  EXPECT_EQ(run(as_client(ws::encode_close(1005)), {6}), ok({Close(1005)}));
}

TEST(WsFrameEncoding, ReceivedCloseCodeRanges) {
  int valid = 0;
  for (uint32_t code = 0; code <= 0xFFFF; ++code)
    valid += ws::is_valid_received_close_code(static_cast<uint16_t>(code));
  EXPECT_EQ(valid, 4 + 5 + 2000);
  EXPECT_FALSE(ws::is_valid_received_close_code(ws::close_code::no_status));
  EXPECT_TRUE(ws::is_valid_received_close_code(ws::close_code::message_too_big));
  EXPECT_TRUE(ws::is_valid_received_close_code(ws::close_code::unauthorized));
}

}  // namespace
