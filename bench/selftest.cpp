// herald-bench scenario `selftest`: checks the bench's own WebSocket client
// (ws_loop.cpp) against a scripted in-process peer on a loopback socket, no
// Herald server needed: the upgrade request and the Sec-WebSocket-Accept
// check, server frames with 7/16/64-bit lengths delivered one byte (or a
// few) per read, fragmented messages with an interleaved ping, masked client
// frames of every length class, close-code echo, and refusals (wrong accept,
// non-101 status, masked or RSV server frames). Also the histogram, the
// sequence checker, the JSON scanning helpers, the NATS parser (operations
// split at every byte position, several per frame) and both protocol
// adapters (client.hpp) end to end against the scripted peer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "client.hpp"
#include "histogram.hpp"
#include "scan.hpp"
#include "scenario.hpp"
#include "seq_tracker.hpp"
#include "ws_loop.hpp"

namespace herald::bench {
namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

struct Recorder final : Handler {
  int opened = 0;
  std::vector<std::string> texts;
  int closed = 0;
  CloseInfo info;
  void on_open(Conn&) override { ++opened; }
  void on_text(Conn&, std::string_view m, uint64_t) override { texts.emplace_back(m); }
  void on_closed(Conn&, const CloseInfo& i) override {
    ++closed;
    info = i;
  }
};

// A server frame (unmasked unless told): header + payload.
std::string frame(uint8_t first_byte, std::string_view payload, bool masked = false) {
  std::string f;
  f += static_cast<char>(first_byte);
  const uint64_t n = payload.size();
  const char m = masked ? char(0x80) : 0;
  if (n < 126) {
    f += static_cast<char>(m | char(n));
  } else if (n <= 0xFFFF) {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xFF);
  } else {
    f += static_cast<char>(m | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xFF);
  }
  if (masked) f.append(4, '\0');  // zero mask: payload unchanged
  f += payload;
  return f;
}

bool wait_fd(int fd, short events, int ms) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, ms) == 1;
}

// The scripted server side of one connection.
struct Peer {
  int fd = -1;
  std::string buf;  // bytes read from the client, not yet consumed
  ~Peer() {
    if (fd >= 0) ::close(fd);
  }

  // Reads until `pred` or 2 s pass, running the client loop meanwhile.
  template <class Pred>
  bool read_until(Loop& loop, Pred pred) {
    for (int i = 0; i < 2000 && !pred(); ++i) {
      loop.run_once(0);
      if (wait_fd(fd, POLLIN, 1)) {
        char tmp[65536];
        const ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
        if (r > 0) buf.append(tmp, static_cast<size_t>(r));
        if (r == 0) return pred();
      }
    }
    return pred();
  }

  // Sends `data` in pieces of `piece` bytes, letting the client read each.
  void send_slowly(Loop& loop, const std::string& data, size_t piece) {
    for (size_t off = 0; off < data.size(); off += piece) {
      const size_t n = std::min(piece, data.size() - off);
      size_t done = 0;
      while (done < n) {
        const ssize_t w = ::send(fd, data.data() + off + done, n - done, MSG_NOSIGNAL);
        if (w <= 0) return;
        done += static_cast<size_t>(w);
      }
      // Let the loop see exactly this piece.
      for (int k = 0; k < 3; ++k) loop.run_once(200'000);
    }
  }

  // Decodes one masked client frame from buf; false if incomplete/invalid.
  bool client_frame(uint8_t& opcode, std::string& payload, bool& masked) {
    if (buf.size() < 2) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
    opcode = p[0] & 0x0F;
    masked = p[1] & 0x80;
    uint64_t n = p[1] & 0x7F;
    size_t h = 2;
    if (n == 126) {
      if (buf.size() < 4) return false;
      n = (uint64_t{p[2]} << 8) | p[3];
      h = 4;
    } else if (n == 127) {
      if (buf.size() < 10) return false;
      n = 0;
      for (int i = 0; i < 8; ++i) n = (n << 8) | p[2 + i];
      h = 10;
    }
    const size_t mh = masked ? 4 : 0;
    if (buf.size() < h + mh + n) return false;
    payload.assign(buf.data() + h + mh, static_cast<size_t>(n));
    if (masked) {
      for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(payload[i] ^ p[h + (i & 3)]);
    }
    buf.erase(0, h + mh + static_cast<size_t>(n));
    return true;
  }
};

struct Server {
  int lfd = -1;
  uint16_t port = 0;
  Server() {
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd, 16);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Server() { ::close(lfd); }
  bool accept(Loop& loop, Peer& peer) {
    for (int i = 0; i < 2000; ++i) {
      loop.run_once(0);
      if (wait_fd(lfd, POLLIN, 1)) {
        peer.fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        return peer.fd >= 0;
      }
    }
    return false;
  }
};

// Accepts, reads the upgrade request, answers it with `reply(key)`.
template <class Reply>
bool handshake(Server& s, Loop& loop, Peer& peer, Reply reply, std::string* request = nullptr,
               size_t piece = 1 << 20) {
  if (!s.accept(loop, peer)) return false;
  if (!peer.read_until(loop, [&] { return peer.buf.find("\r\n\r\n") != std::string::npos; }))
    return false;
  const size_t end = peer.buf.find("\r\n\r\n") + 4;
  const std::string req = peer.buf.substr(0, end);
  peer.buf.erase(0, end);
  if (request) *request = req;
  const size_t k = req.find("Sec-WebSocket-Key: ");
  if (k == std::string::npos) return false;
  const std::string key = req.substr(k + 19, req.find("\r\n", k) - (k + 19));
  peer.send_slowly(loop, reply(key), piece);
  return true;
}

std::string good_reply(const std::string& key) {
  return "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         websocket_accept(key) + "\r\n\r\n";
}

void test_histogram() {
  std::printf("histogram\n");
  Histogram h;
  for (uint64_t v = 1; v <= 1'000'000; ++v) h.record(v * 1000);  // 1 us .. 1 s, uniform
  auto near = [](uint64_t got, double want) {
    return double(got) > want * 0.99 && double(got) < want * 1.01;
  };
  check(near(h.quantile(0.5), 500e6), "p50 of uniform 1us..1s within 1% of 500 ms");
  check(near(h.quantile(0.99), 990e6), "p99 within 1% of 990 ms");
  check(h.quantile(1.0) == 1'000'000'000 && h.max() == 1'000'000'000, "p100 == max == 1 s");
  bool mono = true;
  for (uint64_t v = 0; v < 5'000'000; v += 7) {
    const size_t i = Histogram::index(v);
    mono &=
        Histogram::lower(i) <= v && (i + 1 >= Histogram::kBuckets || Histogram::lower(i + 1) > v);
  }
  check(mono, "every value falls in [lower(i), lower(i+1))");
  check(Histogram::index(UINT64_MAX) < Histogram::kBuckets, "UINT64_MAX has a bucket");
}

void test_seq_tracker() {
  std::printf("sequence checking\n");
  using R = SeqTracker::Result;
  SeqTracker t(2, {5, 3});
  // Subscriber 0, publisher 0: 1 2 2 4 3 5 -> one duplicate, 4 and 3 out of order.
  const R r1 = t.record(0, 0, 1), r2 = t.record(0, 0, 2), r3 = t.record(0, 0, 2),
          r4 = t.record(0, 0, 4), r5 = t.record(0, 0, 3), r6 = t.record(0, 0, 5);
  check(r1 == R::in_order && r2 == R::in_order && r3 == R::duplicate && r4 == R::out_of_order &&
            r5 == R::out_of_order && r6 == R::in_order,
        "1 2 2 4 3 5: in, in, dup, ooo, ooo, in");
  // Subscriber 1, publisher 1: 1 2 3 in order; publisher 0 only 1 (4 lost).
  t.record(1, 1, 1);
  t.record(1, 1, 2);
  t.record(1, 1, 3);
  t.record(1, 0, 1);
  check(t.record(1, 1, 4) == R::invalid && t.record(0, 2, 1) == R::invalid &&
            t.record(0, 0, 0) == R::invalid,
        "seq past the count, unknown publisher, seq 0 are invalid");
  check(t.unique() == 5 + 3 + 1 && t.duplicated() == 1 && t.out_of_order() == 2 && t.invalid() == 3,
        "counts: unique 9 of 16 expected (7 lost), 1 duplicated, 2 out of order");
  SeqTracker big(1, {1'000'000'000});  // a cap, not a count: bitsets grow as needed
  big.record(0, 0, 1);
  big.record(0, 0, 3);
  big.record(0, 0, 2);
  big.record(0, 0, 100'000);
  big.record(0, 0, 3);
  check(!big.approximate() && big.unique() == 4 && big.out_of_order() == 3 && big.duplicated() == 1,
        "count 1e9: exact bitset grown to the highest seq");
  SeqTracker tiny(1, {1000}, 0);  // no memory for bitsets
  tiny.record(0, 0, 1);
  tiny.record(0, 0, 3);
  tiny.record(0, 0, 3);
  check(tiny.approximate() && tiny.duplicated() == 1 && tiny.out_of_order() == 1,
        "over budget: approximate counts");
}

void test_frames() {
  std::printf("frames from a scripted server\n");
  Server s;
  Recorder rec;
  Endpoint ep;
  std::string err;
  check(parse_ws_url("ws://127.0.0.1:" + std::to_string(s.port) + "/ws?x=1", ep, err), "parse URL");
  Loop loop(ep, rec);
  Conn& c = loop.connect(7);
  Peer peer;
  std::string req;
  // The reply and the first frame arrive in one read.
  const bool hs = handshake(
      s, loop, peer, [&](const std::string& key) { return good_reply(key) + frame(0x81, "hello"); },
      &req);
  check(hs, "handshake exchanged");
  check(req.rfind("GET /ws?x=1 HTTP/1.1\r\n", 0) == 0, "request line carries path and query");
  check(req.find("Host: 127.0.0.1:" + std::to_string(s.port) + "\r\n") != std::string::npos,
        "Host header");
  check(req.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos, "version 13");
  const size_t k = req.find("Sec-WebSocket-Key: ");
  check(k != std::string::npos && req.substr(k + 19, 26).find("==\r\n") == 22,
        "key is 16 random bytes in base64");
  check(rec.opened == 1 && c.state == ConnState::open, "open after a correct 101");

  const std::string big16(300, 'm'), big64(70'000, 'L');
  std::string script = frame(0x81, big16) + frame(0x81, big64) + frame(0x81, "");
  script += frame(0x01, "ab") + frame(0x89, "p") + frame(0x00, "c") +
            frame(0x80, "d");  // fragmented + ping
  script += frame(0x82, "bin") + frame(0x8A, "pong") + frame(0x81, "after");
  // Header bytes one at a time; the long payloads a few KB at a time.
  peer.send_slowly(loop, script.substr(0, 400), 1);
  peer.send_slowly(loop, script.substr(400), 4093);
  loop.run_once(1'000'000);
  check(loop.counters().reads > 400, "the client saw the frame headers one byte per read (" +
                                         std::to_string(loop.counters().reads) + " reads)");
  const std::vector<std::string> want = {"hello", big16, big64, "", "abcd", "after"};
  check(rec.texts == want, "7/16/64-bit lengths, empty, fragmented, split across reads (" +
                               std::to_string(rec.texts.size()) + " texts)");
  check(loop.counters().binary_in == 1, "binary message counted, not delivered");

  // Client -> server: masked frames of each length class, the pong.
  loop.send_text(c, "hi");
  loop.send_text(c, big16);
  loop.send_text(c, big64);
  loop.flush_pending();
  uint8_t op = 0;
  bool masked = false;
  std::string payload;
  std::vector<std::pair<uint8_t, std::string>> got;
  bool all_masked = true;
  peer.read_until(loop, [&] {
    while (peer.client_frame(op, payload, masked)) {
      got.emplace_back(op, payload);
      all_masked &= masked;
    }
    return got.size() >= 4;
  });
  check(got.size() == 4 && got[0] == std::make_pair(uint8_t(0xA), std::string("p")),
        "ping answered with pong 'p'");
  check(got.size() == 4 && got[1].second == "hi" && got[2].second == big16 &&
            got[3].second == big64 && got[1].first == 1,
        "client text frames (7/16/64-bit) decode after unmasking");
  check(all_masked, "every client frame is masked");

  // Close: the client echoes the code and reports it.
  peer.send_slowly(loop, frame(0x88, std::string("\x0f\xa8slow", 6)), 1);
  peer.read_until(loop, [&] { return peer.client_frame(op, payload, masked); });
  check(op == 0x8 && payload == std::string("\x0f\xa8", 2), "close 4008 echoed");
  check(rec.closed == 1 && rec.info.by_peer && rec.info.code == 4008 && rec.info.was_open,
        "on_closed with code 4008: " + rec.info.reason);
}

void test_refusals() {
  std::printf("refusals\n");
  struct Case {
    const char* name;
    std::string (*reply)(const std::string&);
    std::string frames;
  };
  const Case cases[] = {
      {"wrong Sec-WebSocket-Accept",
       [](const std::string&) {
         return std::string(
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
       },
       ""},
      {"status 403",
       [](const std::string&) { return std::string("HTTP/1.1 403 Forbidden\r\n\r\n"); }, ""},
      {"masked server frame", good_reply, frame(0x81, "x", true)},
      {"RSV1 set", good_reply, frame(0xC1, "x")},
      {"fragmented ping", good_reply, frame(0x09, "x")},
      {"continuation without start", good_reply, frame(0x80, "x")},
  };
  for (const auto& tc : cases) {
    Server s;
    Recorder rec;
    Endpoint ep;
    std::string err;
    parse_ws_url("ws://127.0.0.1:" + std::to_string(s.port) + "/", ep, err);
    Loop loop(ep, rec);
    loop.connect(1);
    Peer peer;
    // The reply one byte per read.
    handshake(
        s, loop, peer, [&](const std::string& key) { return tc.reply(key) + tc.frames; }, nullptr,
        1);
    for (int i = 0; i < 50 && rec.closed == 0; ++i) loop.run_once(1'000'000);
    check(rec.closed == 1 && rec.texts.empty(), std::string(tc.name) + " -> " + rec.info.reason);
  }
  Endpoint ep;
  std::string err;
  check(!parse_ws_url("wss://127.0.0.1:1/", ep, err), "wss:// refused");
  check(!parse_ws_url("ws://example.com:80/", ep, err), "host names refused");
  check(parse_ws_url("ws://localhost:8080", ep, err) && ep.path == "/" && ep.port == 8080,
        "localhost, no path");
}

void test_scan() {
  std::printf("JSON scanning\n");
  check(message_type("{\"type\":\"ack\",\"id\":3}") == "ack", "type first");
  check(message_type("{\"id\":3, \"type\" : \"subscribed\"}") == "subscribed",
        "type later, with spaces");
  check(message_type("{\"id\":3}").empty(), "no type");
  const std::string m =
      "{\"type\":\"event\",\"channel\":\"seq\",\"data\": {\"seq\" : 42,\"pub\":7}}";
  const char* p = m.data();
  uint64_t v = 0;
  const char* d = find_key(p, m.data() + m.size(), "\"data\"");
  check(d && *d == '{', "find_key skips a value that equals the key name");
  p = d;
  check(find_uint(p, m.data() + m.size(), "\"seq\"", v) && v == 42,
        "find_uint with spaces around ':'");
  check(find_uint(p, m.data() + m.size(), "\"pub\"", v) && v == 7,
        "find_uint continues after the last one");
}

// Records what the NATS parser reports, as text.
struct NatsLog final : NatsSink {
  std::string log;
  void nats_msg(std::string_view subject, std::string_view sid, std::string_view payload) override {
    log +=
        "MSG(" + std::string(subject) + "," + std::string(sid) + "," + std::string(payload) + ")";
  }
  void nats_ping() override { log += "PING"; }
  void nats_pong() override { log += "PONG"; }
  void nats_info(std::string_view) override { log += "INFO"; }
  void nats_err(std::string_view t) override { log += "ERR(" + std::string(t) + ")"; }
};

// Feeds `chunks` to the parser the way Client does (unfinished bytes kept).
std::string nats_feed(const std::vector<std::string>& chunks, bool& ok) {
  NatsLog sink;
  std::string kept, error;
  ok = true;
  for (const auto& ch : chunks) {
    kept += ch;
    const size_t used = nats_parse(kept, sink, error);
    if (!error.empty()) {
      ok = false;
      break;
    }
    kept.erase(0, used);
  }
  ok &= kept.empty();
  return sink.log;
}

void test_nats_parser() {
  std::printf("NATS parser\n");
  const std::string stream =
      "INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n"
      "MSG bench.fanout 1 10\r\n{\"seq\":1}X\r\n"
      "PING\r\n"
      "MSG bench.room.3 12 _INBOX.r 3\r\nabc\r\n"
      "MSG e 1 0\r\n\r\n"
      "PONG\r\n+OK\r\n-ERR 'Slow Consumer'\r\n"
      "MSG big 2 300\r\n" +
      std::string(300, 'p') + "\r\n";
  const std::string want =
      "INFOMSG(bench.fanout,1,{\"seq\":1}X)PINGMSG(bench.room.3,12,abc)MSG(e,1,)PONGERR( 'Slow "
      "Consumer')MSG(big,2," +
      std::string(300, 'p') + ")";
  bool ok = false;
  check(nats_feed({stream}, ok) == want && ok,
        "one chunk: every operation, MSG with and without reply-to, empty");
  bool all = true;
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    all &= nats_feed({stream.substr(0, cut), stream.substr(cut)}, ok) == want && ok;
  }
  check(all, "split in two at each of " + std::to_string(stream.size() - 1) + " positions");
  std::vector<std::string> bytes;
  for (char ch : stream) bytes.emplace_back(1, ch);
  check(nats_feed(bytes, ok) == want && ok, "one byte per chunk");
  nats_feed({"MSG a 1 3\r\nabcd\r\n"}, ok);
  check(!ok, "payload longer than announced is an error");
  nats_feed({"HELLO\r\n"}, ok);
  check(!ok, "unknown operation is an error");
  check(nats_subject("bench:room:7") == "bench.room.7", "subject from channel");
}

// Records what a protocol adapter reports.
struct ClientLog final : ClientHandler {
  std::string log;
  void on_ready(Conn&, uint64_t) override { log += "ready;"; }
  void on_subscribed(Conn&, uint64_t) override { log += "subscribed;"; }
  void on_event(Conn&, std::string_view d, uint64_t) override {
    log += "event " + std::string(d) + ";";
  }
  void on_ack(Conn&, uint64_t id, uint64_t) override { log += "ack " + std::to_string(id) + ";"; }
  void on_error(Conn&, std::string_view m, bool has_id, uint64_t id, uint64_t) override {
    log += "error " + (has_id ? std::to_string(id) + " " : std::string()) + std::string(m) + ";";
  }
  void on_closed(Conn&, const CloseInfo&) override { log += "closed;"; }
  void on_unsubscribed(Conn&, std::string_view, bool has_id, uint64_t id, uint64_t) override {
    log += "unsubscribed " + (has_id ? std::to_string(id) : std::string("server")) + ";";
  }
  void on_join_leave(Conn&, bool join, std::string_view m, uint64_t) override {
    log += (join ? "join " : "leave ") + std::string(m) + ";";
  }
};

// Runs the client loop until `pred` or 2 s pass.
template <class Pred>
void pump_until(Loop& loop, Pred pred) {
  for (int i = 0; i < 2000 && !pred(); ++i) loop.run_once(1'000'000);
}

// Reads client frames from the peer until `n` arrived (or 2 s passed);
// returns their payloads concatenated.
std::string client_payloads(Peer& peer, Loop& loop, size_t n) {
  std::string all;
  size_t got = 0;
  uint8_t op = 0;
  bool masked = false;
  std::string payload;
  peer.read_until(loop, [&] {
    while (peer.client_frame(op, payload, masked)) {
      all += payload;
      ++got;
    }
    return got >= n;
  });
  return all;
}

void test_nats_client() {
  std::printf("NATS adapter against a scripted nats-server\n");
  Server s;
  ClientLog log;
  Endpoint ep;
  std::string err;
  parse_ws_url("ws://127.0.0.1:" + std::to_string(s.port) + "/", ep, err);
  Client client(Target::nats, ep, log);
  Loop& loop = client.loop();
  Conn& c = client.connect(1);
  Peer peer;
  // INFO split over two binary frames, the first in the upgrade's read.
  handshake(s, loop, peer,
            [&](const std::string& key) { return good_reply(key) + frame(0x82, "INFO {\"a\""); });
  check(log.log.empty(), "not ready before INFO is complete");
  peer.send_slowly(loop, frame(0x82, ":1}\r\n"), 1);
  check(log.log == "ready;", "ready after INFO");
  check(client_payloads(peer, loop, 1).rfind("CONNECT {\"verbose\":false,", 0) == 0,
        "CONNECT sent after INFO");
  client.subscribe(c, client.wire_channel("bench:room:3"));
  client.publish(c, 41, client.wire_channel("bench:room:3"), "bench", "{\"seq\":1}");
  loop.flush_pending();
  check(client_payloads(peer, loop, 2) ==
            "SUB bench.room.3 1\r\nPING\r\nPUB bench.room.3 9\r\n{\"seq\":1}\r\nPING\r\n",
        "SUB + PING, PUB + PING, subjects with '.'");
  log.log.clear();
  // PONG for the SUB, a MSG split over three frames, two MSGs and the PUB's
  // PONG in one frame, a server PING.
  const std::string m1 = "MSG bench.room.3 1 13\r\n{\"seq\":1,\"x\"}\r\n";
  std::string script =
      frame(0x82, "PONG\r\n" + m1.substr(0, 5)) + frame(0x82, m1.substr(5, 20)) +
      frame(0x82, m1.substr(25)) +
      frame(0x82, "MSG bench.room.3 1 2\r\nab\r\nMSG bench.room.3 1 2\r\ncd\r\nPONG\r\nPING\r\n");
  peer.send_slowly(loop, script, 7);
  const std::string want = "subscribed;event {\"seq\":1,\"x\"};event ab;event cd;ack 41;";
  pump_until(loop, [&] {
    return log.log.size() >= want.size();
  });  // the peer's small writes may be held by Nagle
  check(log.log == want,
        "subscribed, MSG across frames, several per frame, PONG as ack (" + log.log + ")");
  check(client_payloads(peer, loop, 1) == "PONG\r\n", "server PING answered with PONG");
  peer.send_slowly(loop, frame(0x82, "-ERR 'Unknown Protocol Operation'\r\n"), 1000);
  pump_until(loop, [&] { return log.log.find("error") != std::string::npos; });
  check(log.log.find("error -ERR 'Unknown Protocol Operation';") != std::string::npos,
        "-ERR reported");
  check(client.counters().protocol_errors == 0, "no protocol errors");
}

void test_herald_client() {
  std::printf("Herald adapter against a scripted peer (only type/id/data)\n");
  Server s;
  ClientLog log;
  Endpoint ep;
  std::string err;
  parse_ws_url("ws://127.0.0.1:" + std::to_string(s.port) + "/ws", ep, err);
  Client client(Target::herald, ep, log);
  Loop& loop = client.loop();
  Conn& c = client.connect(1);
  Peer peer;
  handshake(s, loop, peer, good_reply);
  check(log.log == "ready;", "ready on open");
  client.subscribe(c, client.wire_channel("bench:room:3"));
  client.publish(c, 9, "bench:room:3", "bench", "{\"seq\":1}");
  loop.flush_pending();
  check(client_payloads(peer, loop, 2) ==
            "{\"type\":\"subscribe\",\"id\":1,\"channel\":\"bench:room:3\"}"
            "{\"type\":\"publish\",\"id\":9,\"channel\":\"bench:room:3\",\"event\":\"bench\","
            "\"data\":{\"seq\":1}}",
        "subscribe and publish requests");
  log.log.clear();
  // A minimal peer's replies: no offset, epoch, ts or from.
  peer.send_slowly(
      loop,
      frame(0x81, "{\"type\":\"subscribed\",\"id\":1}") +
          frame(0x81,
                "{\"type\":\"event\",\"channel\":\"c\",\"event\":\"e\",\"data\":{\"seq\":1}}") +
          frame(0x81, "{\"channel\":\"c\",\"type\":\"event\",\"data\":{}}") +
          frame(0x81, "{\"type\":\"ack\",\"id\":9}") + frame(0x81, "{\"type\":\"ping\"}") +
          frame(0x81, "{\"type\":\"error\",\"id\":10,\"code\":\"bad_request\"}"),
      1000);
  pump_until(loop, [&] { return log.log.find("error") != std::string::npos; });
  check(log.log ==
            "subscribed;event "
            "{\"type\":\"event\",\"channel\":\"c\",\"event\":\"e\",\"data\":{\"seq\":1}};"
            "event {\"channel\":\"c\",\"type\":\"event\",\"data\":{}};ack 9;"
            "error 10 {\"type\":\"error\",\"id\":10,\"code\":\"bad_request\"};",
        "subscribed, events (type first or not), ack, error with id (" + log.log + ")");
  check(client_payloads(peer, loop, 1) == "{\"type\":\"pong\"}",
        "app-level ping answered with pong");
  // --idempotency-keys: the key goes before data; a replayed ack is counted.
  client.publish(c, 11, "bench:room:3", "bench", "{\"seq\":2}", "hb0f-3-11");
  loop.flush_pending();
  check(client_payloads(peer, loop, 1) ==
            "{\"type\":\"publish\",\"id\":11,\"channel\":\"bench:room:3\",\"event\":\"bench\","
            "\"idempotency_key\":\"hb0f-3-11\",\"data\":{\"seq\":2}}",
        "publish with idempotency_key");
  log.log.clear();
  peer.send_slowly(loop,
                   frame(0x81, "{\"type\":\"ack\",\"id\":11,\"offset\":5}") +
                       frame(0x81, "{\"type\":\"ack\",\"id\":12,\"offset\":5,\"replayed\":true}"),
                   1000);
  pump_until(loop, [&] { return log.log.find("ack 12") != std::string::npos; });
  check(log.log == "ack 11;ack 12;" && client.counters().replayed_acks == 1,
        "acks with and without replayed:true, one counted (" + log.log + ")");
  // churn: unsubscribe, its reply, a server-side unsubscribe, join/leave
  // (never events).
  check(client.unsubscribe(c, "bench:room:3") == 2, "unsubscribe takes the next id");
  loop.flush_pending();
  check(client_payloads(peer, loop, 1) ==
            "{\"type\":\"unsubscribe\",\"id\":2,\"channel\":\"bench:room:3\"}",
        "unsubscribe request");
  log.log.clear();
  const std::string join =
      "{\"type\":\"join\",\"channel\":\"c\",\"client\":\"c2\",\"user_joined\":true}";
  const std::string leave =
      "{\"type\":\"leave\",\"channel\":\"c\",\"client\":\"c2\",\"user_left\":true}";
  peer.send_slowly(loop,
                   frame(0x81, join) + frame(0x81, leave) +
                       frame(0x81, "{\"type\":\"unsubscribed\",\"id\":2,\"channel\":\"c\"}") +
                       frame(0x81,
                             "{\"type\":\"unsubscribed\",\"channel\":\"c\",\"reason\":"
                             "\"destroyed\"}"),
                   1000);
  pump_until(loop, [&] { return log.log.find("server") != std::string::npos; });
  check(log.log == "join " + join + ";leave " + leave + ";unsubscribed 2;unsubscribed server;",
        "join, leave, unsubscribed reply and server unsubscribe (" + log.log + ")");
}

void test_herald_connect() {
  std::printf("Herald adapter: connect {token} first, ready on connected\n");
  Server s;
  ClientLog log;
  Endpoint ep;
  std::string err;
  parse_ws_url("ws://127.0.0.1:" + std::to_string(s.port) + "/ws", ep, err);
  Client client(Target::herald, ep, log);
  Loop& loop = client.loop();
  const std::string token = "eyJh.eyJz.c2ln-_";
  Conn& c = client.connect(1, &token);
  Peer peer;
  handshake(s, loop, peer, good_reply);
  check(log.log.empty(), "not ready on open");
  check(client_payloads(peer, loop, 1) ==
            "{\"type\":\"connect\",\"id\":1,\"token\":\"eyJh.eyJz.c2ln-_\"}",
        "connect with the token is the first message");
  // Other messages before `connected` do not make it ready.
  peer.send_slowly(loop,
                   frame(0x81, "{\"type\":\"ping\"}") +
                       frame(0x81,
                             "{\"type\":\"connected\",\"id\":1,\"client\":\"c1\",\"user\":"
                             "\"user-1\",\"expires\":1,\"ping\":25,\"version\":\"1\"}"),
                   1000);
  pump_until(loop, [&] { return !log.log.empty(); });
  check(log.log == "ready;", "ready on connected (" + log.log + ")");
  check(c.proto_client == "c1", "client id from connected (" + c.proto_client + ")");
  check(c.upgraded_ns != 0 && c.upgraded_ns >= c.started_ns, "upgrade time recorded");
  client.subscribe(c, "bench:conn:1");
  loop.flush_pending();
  check(client_payloads(peer, loop, 2) ==
            "{\"type\":\"pong\"}{\"type\":\"subscribe\",\"id\":2,\"channel\":\"bench:conn:1\"}",
        "then subscribe (id 2)");
  // A second `connected` (without id, e.g. after ?token=) changes nothing.
  log.log.clear();
  peer.send_slowly(loop, frame(0x81, "{\"type\":\"connected\",\"client\":\"c1\"}"), 1000);
  for (int k = 0; k < 20; ++k) loop.run_once(1'000'000);
  check(log.log.empty(), "a later connected is ignored");

  // Anonymous connect (--connect-first without a token).
  Server s2;
  ClientLog log2;
  parse_ws_url("ws://127.0.0.1:" + std::to_string(s2.port) + "/ws", ep, err);
  Client anon(Target::herald, ep, log2);
  anon.set_connect_first(true);
  anon.connect(2);
  Peer peer2;
  handshake(s2, anon.loop(), peer2, good_reply);
  check(client_payloads(peer2, anon.loop(), 1) == "{\"type\":\"connect\",\"id\":1}",
        "connect without a token");
  peer2.send_slowly(anon.loop(),
                    frame(0x81, "{\"type\":\"error\",\"id\":1,\"code\":\"unauthorized\"}"), 1000);
  pump_until(anon.loop(), [&] { return !log2.log.empty(); });
  check(log2.log == "error 1 {\"type\":\"error\",\"id\":1,\"code\":\"unauthorized\"};",
        "a refused connect is an error, not ready (" + log2.log + ")");

  // --pipeline-connect: ready at once, subscribe right behind connect.
  Server s3;
  ClientLog log3;
  parse_ws_url("ws://127.0.0.1:" + std::to_string(s3.port) + "/ws", ep, err);
  Client piped(Target::herald, ep, log3);
  piped.set_pipeline_connect(true);
  Conn& c3 = piped.connect(3, &token);
  Peer peer3;
  handshake(s3, piped.loop(), peer3, good_reply);
  check(log3.log == "ready;", "pipelined: ready on open");
  piped.subscribe(c3, "bench:conn:3");
  piped.loop().flush_pending();
  check(client_payloads(peer3, piped.loop(), 2) ==
            "{\"type\":\"connect\",\"id\":1,\"token\":\"eyJh.eyJz.c2ln-_\"}"
            "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"bench:conn:3\"}",
        "pipelined: connect then subscribe without waiting");
  peer3.send_slowly(piped.loop(), frame(0x81, "{\"type\":\"connected\",\"id\":1}"), 1000);
  check(log3.log == "ready;", "pipelined: connected changes nothing");
}

}  // namespace

int run_selftest(const Options&) {
  test_histogram();
  test_seq_tracker();
  test_frames();
  test_refusals();
  test_scan();
  test_nats_parser();
  test_nats_client();
  test_herald_client();
  test_herald_connect();
  std::printf(failures ? "selftest: %d FAILED\n" : "selftest: all passed\n", failures);
  return failures ? kExitFailed : kExitOk;
}

}  // namespace herald::bench
