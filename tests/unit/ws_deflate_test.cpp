// Unit tests for permessage-deflate (RFC 7692): src/ws/deflate_offer.* (the
// negotiation, in the spirit of Autobahn group 13: every parameter
// combination a client may offer), src/ws/deflate.* (the server compressing
// messages of many sizes and contents once per frame, in the spirit of
// Autobahn group 12, decoded here by zlib as the independent client), the
// reader inflating compressed client messages (whole, fragmented and chopped
// at every byte), the compression bomb limit (1009), corrupt data (1007) and
// RSV1 where it is not allowed (1002), and the handshake's answer.
#include <gtest/gtest.h>
#include <zlib.h>

#include <boost/beast/http/message.hpp>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ws/deflate.hpp"
#include "ws/deflate_offer.hpp"
#include "ws/frame_codec.hpp"
#include "ws/handshake.hpp"

namespace {

namespace ws = herald::ws;
using ws::Opcode;

constexpr std::string_view kAccepted =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

std::string negotiate(std::vector<std::string_view> headers) {
  return ws::negotiate_deflate(headers);
}

// ---- content generators -------------------------------------------------

std::string chat_json(size_t bytes, unsigned seed) {
  std::mt19937 gen(seed);
  static const char* kWords[] = {"hello", "channel", "room", "message", "typing", "the",
                                 "user",  "herald",  "ok",   "see",     "you",    "soon"};
  std::string out;
  while (out.size() < bytes) {
    out += R"({"type":"event","channel":"chat:lobby","offset":)" + std::to_string(gen() % 100000) +
           R"(,"data":{"user":"u)" + std::to_string(gen() % 1000) + R"(","text":")";
    for (int i = 0; i < 8; ++i) {
      out += kWords[gen() % 12];
      out += ' ';
    }
    out += "\"}}\n";
  }
  out.resize(bytes);
  return out;
}

std::string random_bytes(size_t bytes, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(bytes, '\0');
  for (auto& c : out) c = static_cast<char>(gen());
  return out;
}

// ---- the independent decoder: zlib, as a client would ------------------

// Inflates one server message payload the way RFC 7692 7.2.2 says: append
// 00 00 ff ff, raw DEFLATE, a 2^window_bits window, a fresh inflater.
std::string client_inflate(std::string_view payload, int window_bits = 15) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, -window_bits), Z_OK);
  std::string in(payload);
  in.append("\x00\x00\xff\xff", 4);
  std::string out;
  char buf[16384];
  zs.next_in = reinterpret_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    const int rc = inflate(&zs, Z_SYNC_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_STREAM_END || (rc == Z_BUF_ERROR && zs.avail_in == 0)) break;
    if (rc != Z_OK) {
      ADD_FAILURE() << "zlib: " << rc;
      break;
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) break;
  }
  inflateEnd(&zs);
  return out;
}

// Compresses like a client (zlib, sync flush, tail removed: RFC 7692 7.2.1).
std::string client_deflate(std::string_view message, bool final_block = false) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, message.size()) + 16, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  zs.avail_in = static_cast<uInt>(message.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_NE(deflate(&zs, final_block ? Z_FINISH : Z_SYNC_FLUSH), Z_STREAM_ERROR);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  if (!final_block) {
    EXPECT_EQ(out.substr(out.size() - 4), std::string("\x00\x00\xff\xff", 4));
    out.resize(out.size() - 4);
  }
  return out;
}

// ---- server frames --------------------------------------------------------

struct ServerFrame {
  bool fin = false;
  bool rsv1 = false;
  uint8_t opcode = 0;
  std::string payload;
};

ServerFrame parse_server_frame(std::string_view b) {
  ServerFrame f;
  const auto b0 = static_cast<uint8_t>(b[0]);
  f.fin = (b0 & 0x80) != 0;
  f.rsv1 = (b0 & 0x40) != 0;
  EXPECT_EQ(b0 & 0x30, 0);
  f.opcode = b0 & 0x0F;
  EXPECT_EQ(static_cast<uint8_t>(b[1]) & 0x80, 0) << "server frames are not masked";
  uint64_t len = static_cast<uint8_t>(b[1]) & 0x7F;
  size_t pos = 2;
  if (len == 126 || len == 127) {
    const size_t ext = len == 126 ? 2 : 8;
    len = 0;
    for (size_t i = 0; i < ext; ++i) len = (len << 8) | static_cast<uint8_t>(b[pos + i]);
    pos += ext;
  }
  EXPECT_EQ(b.size(), pos + len) << "one frame, exactly";
  f.payload = std::string(b.substr(pos));
  return f;
}

// ---- client frames --------------------------------------------------------

std::string client_frame(uint8_t first_byte, std::string_view payload) {
  std::string out(1, static_cast<char>(first_byte));
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
  const char key[4] = {0x37, static_cast<char>(0xfa), 0x21, 0x3d};
  out.append(key, 4);
  for (size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ key[i & 3]);
  return out;
}

constexpr uint8_t kFin = 0x80, kRsv1 = 0x40, kRsv2 = 0x20;
constexpr uint8_t kText = 0x1, kBinary = 0x2, kCont = 0x0, kPing = 0x9, kClose = 0x8;

struct Recorder : ws::MessageHandler {
  std::vector<std::pair<Opcode, std::string>> messages;
  int pings = 0;
  void on_message(Opcode op, std::string_view p) override { messages.emplace_back(op, p); }
  void on_ping(std::string_view) override { ++pings; }
  void on_pong(std::string_view) override {}
  void on_close(uint16_t, std::string_view) override {}
};

struct Result {
  uint16_t code = 0;
  std::vector<std::pair<Opcode, std::string>> messages;
};

// Feeds `stream` in pieces of `chunk` bytes (0: whole) to a reader.
Result feed(const std::string& stream, bool deflate, size_t max = 1 << 20, size_t chunk = 0) {
  ws::MessageReader reader(max);
  if (deflate) reader.enable_deflate();
  Recorder rec;
  Result r;
  const size_t step = chunk == 0 ? stream.size() : chunk;
  for (size_t pos = 0; pos < stream.size() && r.code == 0; pos += step) {
    std::string piece = stream.substr(pos, step);
    r.code = reader.feed(piece.data(), piece.size(), rec);
  }
  EXPECT_TRUE(reader.idle());
  r.messages = rec.messages;
  return r;
}

// ==== negotiation (Autobahn group 13's parameter combinations) =============

TEST(DeflateOffer, PlainOfferGetsBothNoContextTakeovers) {
  EXPECT_EQ(negotiate({"permessage-deflate"}), kAccepted);
}

TEST(DeflateOffer, NoOfferOrOtherExtensionsOnlyIsDeclined) {
  EXPECT_EQ(negotiate({}), "");
  EXPECT_EQ(negotiate({"x-webkit-deflate-frame"}), "");
  EXPECT_EQ(negotiate({"permessage-deflate-x"}), "");
}

TEST(DeflateOffer, BrowserOfferWithValuelessClientMaxWindowBits) {
  // What Chromium and Firefox send; the answer must not name
  // client_max_window_bits (Herald inflates with any window).
  EXPECT_EQ(negotiate({"permessage-deflate; client_max_window_bits"}), kAccepted);
}

TEST(DeflateOffer, ClientMaxWindowBitsEveryValidValue) {
  for (int bits = 8; bits <= 15; ++bits) {
    const std::string offer = "permessage-deflate; client_max_window_bits=" + std::to_string(bits);
    EXPECT_EQ(negotiate({offer}), kAccepted) << offer;
  }
}

TEST(DeflateOffer, ServerMaxWindowBits15IsAnswered) {
  EXPECT_EQ(negotiate({"permessage-deflate; server_max_window_bits=15"}),
            std::string(kAccepted) + "; server_max_window_bits=15");
  EXPECT_EQ(negotiate({R"(permessage-deflate; server_max_window_bits="15")"}),
            std::string(kAccepted) + "; server_max_window_bits=15");
}

TEST(DeflateOffer, ServerMaxWindowBitsBelow15IsDeclined) {
  // Herald compresses with a 32 KiB window: a smaller one is not promised.
  for (int bits = 8; bits <= 14; ++bits) {
    const std::string offer = "permessage-deflate; server_max_window_bits=" + std::to_string(bits);
    EXPECT_EQ(negotiate({offer}), "") << offer;
  }
}

TEST(DeflateOffer, NextOfferIsTriedWhenTheFirstIsDeclined) {
  EXPECT_EQ(negotiate({"permessage-deflate; server_max_window_bits=10, permessage-deflate; "
                       "client_max_window_bits"}),
            kAccepted);
  // The same list split over two headers.
  EXPECT_EQ(negotiate({"permessage-deflate; server_max_window_bits=9",
                       "permessage-deflate; server_no_context_takeover"}),
            kAccepted);
  EXPECT_EQ(negotiate({"x-webkit-deflate-frame, permessage-deflate"}), kAccepted);
}

TEST(DeflateOffer, NoContextTakeoverParametersAreAccepted) {
  EXPECT_EQ(negotiate({"permessage-deflate; server_no_context_takeover"}), kAccepted);
  EXPECT_EQ(negotiate({"permessage-deflate; client_no_context_takeover"}), kAccepted);
  EXPECT_EQ(negotiate({"permessage-deflate; server_no_context_takeover; "
                       "client_no_context_takeover; client_max_window_bits=12; "
                       "server_max_window_bits=15"}),
            std::string(kAccepted) + "; server_max_window_bits=15");
  EXPECT_EQ(negotiate({"PerMessage-Deflate ;\tServer_No_Context_Takeover"}), kAccepted);
}

TEST(DeflateOffer, InvalidParametersDeclineTheOffer) {
  for (const char* offer : {
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
           "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
           "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
           "permessage-deflate; server_max_window_bits=15; server_max_window_bits=15",
           "permessage-deflate; server_no_context_takeover=1",
           "permessage-deflate; client_no_context_takeover=true",
           "permessage-deflate; server_max_window_bits",
           "permessage-deflate; server_max_window_bits=16",
           "permessage-deflate; client_max_window_bits=7",
           "permessage-deflate; client_max_window_bits=16",
           "permessage-deflate; client_max_window_bits=08",
           "permessage-deflate; client_max_window_bits=abc",
           "permessage-deflate; client_max_window_bits=\"\"",
           "permessage-deflate; mux",
       }) {
    EXPECT_EQ(negotiate({offer}), "") << offer;
  }
}

TEST(DeflateOffer, MalformedHeaderDeclinesEverything) {
  for (const char* header : {
           "permessage-deflate;",
           "permessage-deflate; =15",
           "permessage-deflate; client_max_window_bits=\"15",
           "permessage-deflate client_max_window_bits",
           "permessage-deflate; server_max_window_bits=15 15",
           "@permessage-deflate",
       }) {
    EXPECT_EQ(negotiate({header}), "") << header;
  }
  EXPECT_EQ(negotiate({"permessage-deflate, ,"}), kAccepted) << "empty list elements are fine";
}

TEST(DeflateHandshake, AnswersTheOfferOnlyWhenEnabled) {
  boost::beast::http::request_header<> req;
  req.method(boost::beast::http::verb::get);
  req.target("/ws");
  req.version(11);
  req.set(boost::beast::http::field::upgrade, "websocket");
  req.set(boost::beast::http::field::connection, "Upgrade");
  req.set(boost::beast::http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  req.set(boost::beast::http::field::sec_websocket_version, "13");
  req.set(boost::beast::http::field::sec_websocket_extensions,
          "permessage-deflate; client_max_window_bits");
  const auto on = ws::check_upgrade(req, {}, true);
  EXPECT_TRUE(on.accepted);
  EXPECT_TRUE(on.deflate);
  EXPECT_NE(on.response.find("\r\nSec-WebSocket-Extensions: " + std::string(kAccepted) + "\r\n"),
            std::string::npos)
      << on.response;
  EXPECT_TRUE(on.response.ends_with("\r\n\r\n"));
  const auto off = ws::check_upgrade(req, {}, false);
  EXPECT_TRUE(off.accepted);
  EXPECT_FALSE(off.deflate);
  EXPECT_EQ(off.response.find("Sec-WebSocket-Extensions"), std::string::npos);
  req.set(boost::beast::http::field::sec_websocket_extensions,
          "permessage-deflate; server_max_window_bits=9");
  const auto declined = ws::check_upgrade(req, {}, true);
  EXPECT_TRUE(declined.accepted) << "a declined offer still upgrades, uncompressed";
  EXPECT_FALSE(declined.deflate);
  EXPECT_EQ(declined.response.find("Sec-WebSocket-Extensions"), std::string::npos);
}

// ==== the server compressing (Autobahn group 12's sizes and contents) ======

TEST(DeflateCompress, MessagesOfManySizesRoundTripThroughZlib) {
  const size_t sizes[] = {1,    16,    64,    125,   126,    256,    1000,
                          4096, 16384, 65535, 65536, 131072, 1 << 20};
  for (const int level : {1, 6, 9}) {
    for (const size_t size : sizes) {
      for (const bool binary : {false, true}) {
        const std::string message = chat_json(size, static_cast<unsigned>(size));
        const auto plain = ws::make_frame(message, binary ? Opcode::binary : Opcode::text);
        const auto sent = ws::deflated(plain, {.min_bytes = 0, .level = level});
        if (size < 64) {  // too short to shrink: sent as it is, or else must round-trip
          if (sent == plain) continue;
        }
        ASSERT_NE(sent, plain) << "JSON of " << size << " bytes shrinks, level " << level;
        const auto f = parse_server_frame(sent->bytes());
        EXPECT_TRUE(f.fin);
        EXPECT_TRUE(f.rsv1);
        EXPECT_EQ(f.opcode, binary ? kBinary : kText);
        EXPECT_LT(f.payload.size(), message.size());
        EXPECT_EQ(client_inflate(f.payload), message) << size << " bytes, level " << level;
      }
    }
  }
}

TEST(DeflateCompress, ChatJsonOfOneKilobyteShrinksAtLeastTwice) {
  const std::string message = chat_json(1024, 7);
  const auto sent = ws::deflated(ws::make_frame(message), {});
  EXPECT_LT(sent->size() * 2, message.size() + 2);
}

TEST(DeflateCompress, OneVariantPerFrameWhateverAsksAndHowOften) {
  const auto plain = ws::make_frame(chat_json(4096, 1));
  const auto first = ws::deflated(plain, {});
  EXPECT_NE(first, plain);
  EXPECT_EQ(ws::deflated(plain, {}), first) << "compressed once, then shared";
  // From many threads at once (as workers queue one event frame): one variant.
  const auto racing = ws::make_frame(chat_json(8192, 2));
  std::vector<ws::SharedFrame> seen(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i)
    threads.emplace_back([&, i] { seen[i] = ws::deflated(racing, {.min_bytes = 0, .level = 6}); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<ws::SharedFrame>(seen.begin(), seen.end()).size(), 1u);
  EXPECT_NE(seen[0], racing);
  EXPECT_EQ(client_inflate(parse_server_frame(seen[0]->bytes()).payload), chat_json(8192, 2));
}

TEST(DeflateCompress, IncompressibleAndSmallPayloadsGoUncompressed) {
  const auto noise = ws::make_frame(random_bytes(4096, 3), Opcode::binary);
  EXPECT_EQ(ws::deflated(noise, {.min_bytes = 0, .level = 9}), noise);
  const auto small = ws::make_frame(chat_json(255, 4));
  EXPECT_EQ(ws::deflated(small, {.min_bytes = 256, .level = 6}), small) << "under the threshold";
  const auto at = ws::make_frame(chat_json(256, 4));
  EXPECT_NE(ws::deflated(at, {.min_bytes = 256, .level = 6}), at) << "at the threshold";
  const auto empty = ws::make_frame("");
  EXPECT_EQ(ws::deflated(empty, {.min_bytes = 0, .level = 6}), empty);
}

TEST(DeflateCompress, ControlFramesAreNeverCompressed) {
  const std::string payload(120, 'a');
  for (const auto op : {Opcode::ping, Opcode::pong}) {
    const auto f = ws::make_frame(payload, op);
    EXPECT_EQ(ws::deflated(f, {.min_bytes = 0, .level = 6}), f);
  }
  const auto close = ws::make_close_frame(1000, std::string(100, 'b'));
  EXPECT_EQ(ws::deflated(close, {.min_bytes = 0, .level = 6}), close);
}

TEST(DeflateCompress, SequenceDecodesWithFreshInflaterPerMessage) {
  // server_no_context_takeover: each message stands alone, so a client that
  // resets its inflater per message decodes every one, in any order.
  std::vector<std::string> messages;
  std::vector<std::string> payloads;
  for (unsigned i = 0; i < 50; ++i) {
    messages.push_back(chat_json(300 + 97 * i, i));
    payloads.push_back(
        parse_server_frame(ws::deflated(ws::make_frame(messages.back()), {})->bytes()).payload);
  }
  for (size_t i = payloads.size(); i-- > 0;) EXPECT_EQ(client_inflate(payloads[i]), messages[i]);
}

// ==== the reader inflating client messages ================================

TEST(DeflateInflate, CompressedTextInOneFrame) {
  const std::string message = chat_json(5000, 9);
  const auto r = feed(client_frame(kFin | kRsv1 | kText, client_deflate(message)), true);
  EXPECT_EQ(r.code, 0);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].first, Opcode::text);
  EXPECT_EQ(r.messages[0].second, message);
}

TEST(DeflateInflate, FinalBlockAndEmptyMessages) {
  const std::string message = chat_json(700, 10);
  auto r = feed(client_frame(kFin | kRsv1 | kText, client_deflate(message, true)), true);
  EXPECT_EQ(r.code, 0);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].second, message);
  // An empty message: "00" (RFC 7692 7.2.3.6) and the BFINAL empty block.
  r = feed(client_frame(kFin | kRsv1 | kText, std::string(1, '\0')) +
               client_frame(kFin | kRsv1 | kText, client_deflate("", true)),
           true);
  EXPECT_EQ(r.code, 0);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].second, "");
  EXPECT_EQ(r.messages[1].second, "");
}

TEST(DeflateInflate, FragmentedCompressedMessageChoppedAnyWay) {
  const std::string message = chat_json(3000, 11) + "\xc3\xa9\xe2\x82\xac";
  const std::string z = client_deflate(message);
  // RSV1 on the first frame only (RFC 7692 6.1), split mid code point of the
  // compressed bytes, with a ping between fragments.
  const std::string stream = client_frame(kRsv1 | kText, z.substr(0, 10)) +
                             client_frame(kPing | kFin, "p") +
                             client_frame(kCont, z.substr(10, z.size() / 2)) +
                             client_frame(kCont | kFin, z.substr(10 + z.size() / 2)) +
                             client_frame(kFin | kText, "plain after");
  for (const size_t chunk : {0, 1, 2, 7, 64, 1000}) {
    const auto r = feed(stream, true, 1 << 20, chunk);
    EXPECT_EQ(r.code, 0) << chunk;
    ASSERT_EQ(r.messages.size(), 2u) << chunk;
    EXPECT_EQ(r.messages[0].second, message) << chunk;
    EXPECT_EQ(r.messages[1].second, "plain after") << chunk;
  }
}

TEST(DeflateInflate, CompressedBinaryAndUncompressedMessagesMix) {
  const std::string bin = random_bytes(2000, 12);
  const auto r = feed(client_frame(kFin | kRsv1 | kBinary, client_deflate(bin)) +
                          client_frame(kFin | kText, "uncompressed") +
                          client_frame(kFin | kRsv1 | kText, client_deflate("{\"a\":1}")),
                      true);
  EXPECT_EQ(r.code, 0);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].first, Opcode::binary);
  EXPECT_EQ(r.messages[0].second, bin);
  EXPECT_EQ(r.messages[1].second, "uncompressed");
  EXPECT_EQ(r.messages[2].second, "{\"a\":1}");
}

TEST(DeflateInflate, CompressionBombClosesWith1009) {
  const size_t max = 64 * 1024;
  const std::string bomb = client_deflate(std::string(16 << 20, 'A'));  // 16 MiB in ~16 KiB
  ASSERT_LT(bomb.size(), max);
  auto r = feed(client_frame(kFin | kRsv1 | kText, bomb), true, max);
  EXPECT_EQ(r.code, ws::close_code::message_too_big);
  EXPECT_TRUE(r.messages.empty());
  // The limit is exact: max bytes inflated pass, one more fails.
  r = feed(client_frame(kFin | kRsv1 | kText, client_deflate(std::string(max, 'x'))), true, max);
  EXPECT_EQ(r.code, 0);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].second.size(), max);
  r = feed(client_frame(kFin | kRsv1 | kText, client_deflate(std::string(max + 1, 'x'))), true,
           max);
  EXPECT_EQ(r.code, ws::close_code::message_too_big);
  // Fragmented, the same.
  r = feed(client_frame(kRsv1 | kText, bomb.substr(0, 100)) +
               client_frame(kCont | kFin, bomb.substr(100)),
           true, max);
  EXPECT_EQ(r.code, ws::close_code::message_too_big);
}

TEST(DeflateInflate, CorruptDataAndInvalidUtf8Close1007) {
  auto r = feed(client_frame(kFin | kRsv1 | kText, "\xff\xff\xff\xff garbage"), true);
  EXPECT_EQ(r.code, ws::close_code::invalid_payload);
  EXPECT_TRUE(r.messages.empty());
  r = feed(client_frame(kFin | kRsv1 | kText, client_deflate("caf\xc3 invalid")), true);
  EXPECT_EQ(r.code, ws::close_code::invalid_payload);
  EXPECT_TRUE(r.messages.empty());
}

TEST(DeflateInflate, Rsv1WhereNotAllowedIs1002) {
  const std::string z = client_deflate("hello hello hello");
  // Not negotiated (Autobahn 3.1's rule still holds).
  EXPECT_EQ(feed(client_frame(kFin | kRsv1 | kText, z), false).code,
            ws::close_code::protocol_error);
  // On a continuation frame.
  EXPECT_EQ(feed(client_frame(kText, "a") + client_frame(kFin | kRsv1 | kCont, z), true).code,
            ws::close_code::protocol_error);
  // On control frames.
  EXPECT_EQ(feed(client_frame(kFin | kRsv1 | kPing, "x"), true).code,
            ws::close_code::protocol_error);
  EXPECT_EQ(feed(client_frame(kFin | kRsv1 | kClose, std::string("\x03\xe8", 2)), true).code,
            ws::close_code::protocol_error);
  // RSV2 is still unknown.
  EXPECT_EQ(feed(client_frame(kFin | kRsv2 | kText, "x"), true).code,
            ws::close_code::protocol_error);
}

}  // namespace
