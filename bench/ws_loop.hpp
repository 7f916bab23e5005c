// herald-bench: a single-threaded epoll event loop of WebSocket client
// connections (RFC 6455 client side, written for load generation).
//
// The loop owns every connection: a non-blocking connect, the HTTP upgrade
// with a random Sec-WebSocket-Key (the reply must be 101 with the matching
// Sec-WebSocket-Accept), masked frames out, unmasked server frames in
// (7/16/64-bit lengths, frames split across reads, fragmented messages,
// ping/pong/close control frames). Reads go into one shared buffer; only an
// unfinished frame's bytes are kept per connection. Writes are corked: sends
// during one loop turn are appended to the connection's outbound buffer and
// leave in one write() at the end of the turn. What to do with messages is
// the scenario's business, through the Handler interface (usually the
// protocol adapter of client.hpp). Knows no JSON.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::bench {

// Monotonic clock in nanoseconds (system-wide on Linux, so it can be compared
// between processes on one machine).
uint64_t now_ns();

struct Endpoint {
  std::string host;  // as written in the URL (used for the Host header)
  uint16_t port = 80;
  std::string path = "/";  // path + query, as sent in the request line
  sockaddr_in addr{};
};

// Parses ws://host[:port][/path]. Only IPv4 literals and "localhost" are
// accepted: the bench talks to a server on this machine, never resolves names.
bool parse_ws_url(std::string_view url, Endpoint& out, std::string& error);

// base64(SHA-1(key + RFC 6455 GUID)): the Sec-WebSocket-Accept for a key.
std::string websocket_accept(const std::string& key);

enum class ConnState : uint8_t { connecting, upgrading, open, closed };

// Why a connection ended; passed to Handler::on_closed.
struct CloseInfo {
  bool was_open = false;  // the upgrade had completed
  bool by_peer = false;   // the server sent a close frame or closed TCP
  uint16_t code = 0;      // close code from the server's close frame, 0 if none
  std::string reason;     // human-readable cause
};

struct Conn {
  int fd = -1;
  uint32_t index = 0;  // position in Loop's table
  ConnState state = ConnState::connecting;
  uint64_t user = 0;        // scenario data (role, number)
  uint32_t endpoint = 0;    // which of the loop's endpoints (0: the first, --url)
  uint64_t started_ns = 0;  // when connect() was called
  std::string accept_key;   // expected Sec-WebSocket-Accept
  std::string in;           // unfinished frame (or handshake reply) bytes
  std::string fragments;    // unfinished fragmented message
  uint8_t fragment_opcode = 0;
  std::string out;          // bytes to write
  size_t out_off = 0;       // already written part of `out`
  bool dirty = false;       // in the loop's flush list
  bool want_write = false;  // EPOLLOUT registered
  // For the protocol adapter (client.hpp), not the loop: bytes of an
  // unfinished NATS operation, the meaning of each PONG still expected
  // (read from proto_pending_head on), a counter for ids/sids, and a state.
  std::string proto_in;
  std::vector<uint64_t> proto_pending;
  size_t proto_pending_head = 0;
  uint32_t proto_next_id = 0;
  uint8_t proto_state = 0;
  // Herald target: the token to send in a first `connect` (null: none; the
  // string belongs to the scenario's Options), and when the upgrade
  // completed (for the connect -> connected time).
  const std::string* proto_token = nullptr;
  uint64_t upgraded_ns = 0;
  // Herald target: the connection's id from `connected` (`client`), empty
  // when no `connect` was sent or it had none.
  std::string proto_client;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // The upgrade completed; the connection can send.
  virtual void on_open(Conn& c) = 0;
  // A complete text message. `recv_ns` is the time the bytes were read.
  // The view is valid only during the call.
  virtual void on_text(Conn& c, std::string_view msg, uint64_t recv_ns) = 0;
  // A complete binary message (same rules); ignored unless overridden.
  virtual void on_binary(Conn&, std::string_view, uint64_t) {}
  // The connection ended (error, server close, or our own close()). Called
  // once per connection; the Conn stays valid (state closed) afterwards.
  virtual void on_closed(Conn& c, const CloseInfo& info) = 0;
};

struct LoopCounters {
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t reads = 0, writes = 0, epoll_waits = 0;
  uint64_t frames_in = 0, frames_out = 0;
  uint64_t binary_in = 0;       // binary messages received
  uint64_t pings_answered = 0;  // WebSocket-level pings
};

class Loop {
 public:
  Loop(Endpoint ep, Handler& h, size_t max_message_bytes = 64u << 20);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Another server to connect to (e.g. a second Herald node); returns its
  // index for connect(). The constructor's endpoint is index 0.
  uint32_t add_endpoint(Endpoint ep);

  // Starts a connection to endpoint `endpoint`; on_open or on_closed
  // follows. Never returns null; a connection that fails at once is
  // reported through on_closed in the next turn.
  Conn& connect(uint64_t user, uint32_t endpoint = 0);

  // Queues a masked text frame; it leaves at the end of the current turn.
  void send_text(Conn& c, std::string_view payload);
  // The same with a binary frame.
  void send_binary(Conn& c, std::string_view payload);
  // Sends a close frame (1000 unless told) and closes the socket after
  // flushing what is queued; on_closed follows.
  void close(Conn& c, uint16_t code = 1000);
  // Closes every connection at once without a close handshake.
  void close_all_now();
  // Drops a connection at once (no close handshake); on_closed follows with
  // `reason`.
  void abort(Conn& c, std::string reason) { fail(c, std::move(reason)); }
  // Drops a connection at once with a TCP RST (SO_LINGER 0), as a crashed
  // or unplugged client's kernel would; on_closed follows with `reason`.
  void reset(Conn& c, std::string reason);
  // Gives a closed connection's Conn back for reuse by a later connect()
  // (from the next turn on, so no event of this turn can reach the new
  // connection): for scenarios that open connections for as long as they
  // run (soak), which would otherwise keep one Conn per connection ever
  // opened. The caller keeps no pointer to it afterwards.
  void recycle(Conn& c);

  // One turn: waits up to `timeout_ns` (0: poll, negative: forever) for
  // socket events, handles them, flushes every written-to connection.
  void run_once(int64_t timeout_ns);
  // Writes what was queued outside run_once (e.g. by a timer-driven sender).
  void flush_pending() { flush_dirty(); }

  // Connections that are connecting or upgrading, and that have waited
  // longer than `timeout_ns`, are failed.
  void expire_handshakes(uint64_t now, uint64_t timeout_ns);

  size_t handshaking() const { return handshaking_; }
  const LoopCounters& counters() const { return counters_; }
  const std::vector<std::unique_ptr<Conn>>& conns() const { return conns_; }

 private:
  void on_event(Conn& c, uint32_t events);
  void on_connected(Conn& c);
  void on_readable(Conn& c);
  // Parses `len` bytes of frames; returns how many were consumed (the rest
  // is an unfinished frame). Stops early when the connection ends.
  size_t parse_frames(Conn& c, char* data, size_t len, uint64_t recv_ns);
  size_t parse_handshake(Conn& c, char* data, size_t len);
  void queue_frame(Conn& c, uint8_t opcode, std::string_view payload);
  void flush(Conn& c);
  void flush_dirty();
  void mark_dirty(Conn& c);
  void set_want_write(Conn& c, bool on);
  void fail(Conn& c, std::string reason, bool by_peer = false, uint16_t code = 0);
  void finish(Conn& c, CloseInfo info);
  uint32_t next_mask();

  // Per endpoint: where to connect, and its upgrade request up to the key.
  std::vector<Endpoint> eps_;
  std::vector<std::string> request_prefixes_;
  Handler& handler_;
  size_t max_message_bytes_;
  int epfd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> dirty_;
  std::vector<std::pair<Conn*, std::string>> failed_now_;  // connect() failures, reported next turn
  std::vector<uint32_t> recycled_;  // recycle()d this turn: free from the next one
  std::vector<uint32_t> free_;      // indexes connect() may reuse
  std::vector<char> rbuf_;
  size_t handshaking_ = 0;
  uint64_t rng_;
  LoopCounters counters_;
};

}  // namespace herald::bench
