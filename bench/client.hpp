// herald-bench: the protocol adapter between the WebSocket loop (ws_loop.hpp)
// and the scenarios, one per --target:
//
//   herald  Herald protocol v1, the subset every Herald-protocol peer speaks:
//           {"type":"subscribe","id":N,"channel":C} -> {"type":"subscribed",...},
//           {"type":"publish","id":N,"channel":C,"event":E,"data":D} ->
//           {"type":"ack","id":N} to the publisher and {"type":"event",...,"data":D}
//           to subscribers. Only `type`, `id` and `data` of replies are read
//           (no offset, epoch, connected or ping is needed); app-level
//           {"type":"ping"} is answered with {"type":"pong"}. Optionally
//           (--token-file, --connect-first) each connection first sends
//           {"type":"connect","id":N,"token":T} and is ready on `connected`
//           (whose `client` is kept in Conn::proto_client). `unsubscribe` /
//           `unsubscribed` and the `join` / `leave` messages of presence are
//           passed on for the churn scenario.
//   raw     the same wire format, against herald-rawtcp-peer.
//   nats    nats-server's WebSocket listener with the NATS text protocol
//           inside binary frames: INFO -> CONNECT; SUB subject sid + PING,
//           whose PONG confirms the subscription; PUB subject n + PING per
//           publish, each PONG an ack (nats-server answers in order); MSG
//           parsed across frame boundaries; server PING answered with PONG.
//           Subjects are channel names with ':' replaced by '.'.
//
// Scenarios see the same callbacks whatever the target: ready, subscribed,
// event (with the bytes holding the publisher's data object), ack, error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ws_loop.hpp"

namespace herald::bench {

enum class Target : uint8_t { herald, nats, raw };

const char* target_name(Target t);
bool parse_target(std::string_view s, Target& out);

class ClientHandler {
 public:
  virtual ~ClientHandler() = default;
  // The connection can subscribe and publish (herald/raw: WebSocket open;
  // nats: INFO received and CONNECT sent).
  virtual void on_ready(Conn& c, uint64_t now_ns) = 0;
  // A subscribe was confirmed (herald: `subscribed`; nats: the PONG after SUB).
  virtual void on_subscribed(Conn& c, uint64_t recv_ns) = 0;
  // An event. `data` holds the published data object somewhere inside it:
  // herald/raw pass the whole event message, nats the MSG payload. Valid
  // only during the call.
  virtual void on_event(Conn& c, std::string_view data, uint64_t recv_ns) = 0;
  // A publish was acknowledged (herald/raw: `ack` with its id; nats: the
  // PONG that followed it, with the id given to publish()).
  virtual void on_ack(Conn& c, uint64_t id, uint64_t recv_ns) = 0;
  // An error reply (herald: {"type":"error"}; nats: -ERR). `has_id`: it
  // answers request `id` (herald only).
  virtual void on_error(Conn& c, std::string_view msg, bool has_id, uint64_t id,
                        uint64_t recv_ns) = 0;
  virtual void on_closed(Conn& c, const CloseInfo& info) = 0;
  // A `history` reply (herald only), the whole message; only the history
  // scenario asks for them.
  virtual void on_history(Conn&, std::string_view /*msg*/, uint64_t /*recv_ns*/) {}
  // An `unsubscribed` (herald only), the whole message; `has_id`: the reply
  // to unsubscribe request `id`, else the server ended a subscription. Only
  // the churn scenario unsubscribes.
  virtual void on_unsubscribed(Conn&, std::string_view /*msg*/, bool /*has_id*/, uint64_t /*id*/,
                               uint64_t /*recv_ns*/) {}
  // A `join` (join = true) or `leave` message (herald only), the whole
  // message. Never passed to on_event.
  virtual void on_join_leave(Conn&, bool /*join*/, std::string_view /*msg*/, uint64_t /*recv_ns*/) {
  }
};

// Incremental parser of the NATS server-to-client protocol (the part a
// subscriber and publisher without headers needs): MSG, PING, PONG, INFO,
// +OK, -ERR. Operations may be split anywhere and several may share one
// WebSocket message.
class NatsSink {
 public:
  virtual ~NatsSink() = default;
  virtual void nats_msg(std::string_view subject, std::string_view sid,
                        std::string_view payload) = 0;
  virtual void nats_ping() = 0;
  virtual void nats_pong() = 0;
  virtual void nats_info(std::string_view json) = 0;
  virtual void nats_err(std::string_view text) = 0;
};

// Parses the complete operations at the start of `data` and returns how many
// bytes they took (the rest is an unfinished operation to be kept and
// prefixed to the next bytes). Sets `error` (and returns) on bytes that are
// not NATS protocol.
size_t nats_parse(std::string_view data, NatsSink& sink, std::string& error);

// "bench:room:7" -> "bench.room.7".
std::string nats_subject(std::string_view channel);

struct ClientCounters {
  uint64_t pings_answered = 0;   // app-level (herald ping, NATS PING)
  uint64_t protocol_errors = 0;  // unparsable server messages
  uint64_t replayed_acks = 0;    // herald: acks with "replayed":true (idempotency_key seen before)
};

class Client final : public Handler, private NatsSink {
 public:
  Client(Target t, Endpoint ep, ClientHandler& h);

  Target target() const { return target_; }
  Loop& loop() { return loop_; }
  // Starts a connection. Herald target: with a `token` (kept by the caller
  // until the connection ends), or when connect_first() is set, the first
  // message is {"type":"connect","id":N[,"token":T]} and the connection is
  // ready only once `connected` arrived (an `error` and the server's close
  // 4001 come through on_error/on_closed instead).
  // `endpoint`: an index from add_endpoint() (0: the constructor's).
  Conn& connect(uint64_t user, const std::string* token = nullptr, uint32_t endpoint = 0);
  // Another server for connect() (e.g. one more Herald node); returns its index.
  uint32_t add_endpoint(Endpoint ep) { return loop_.add_endpoint(std::move(ep)); }
  // Every connection sends `connect` first, with or without a token.
  void set_connect_first(bool on) { connect_first_ = on; }
  // With `connect`: the connection is ready at once, so what it sends next
  // leaves in the same write as `connect` (the server holds commands until
  // the token is verified); `connected` is then not waited for.
  void set_pipeline_connect(bool on) { pipeline_connect_ = on; }

  // The name to pass to subscribe()/publish() for a channel: the channel
  // itself, or for nats its subject. Computed once per channel by scenarios.
  std::string wire_channel(std::string_view channel) const;
  // Subscribes `c` (ready) to `wire` (from wire_channel); on_subscribed follows.
  void subscribe(Conn& c, std::string_view wire);
  // Publishes `data` (a JSON object) as event `event` on `wire`; on_ack
  // with `id` follows. Herald target: a non-empty `idempotency_key` (1..128
  // bytes of [A-Za-z0-9_.:-], not escaped) is sent as the publish's
  // `idempotency_key`; acks saying `"replayed":true` are counted
  // (counters().replayed_acks).
  void publish(Conn& c, uint64_t id, std::string_view wire, std::string_view event,
               std::string_view data, std::string_view idempotency_key = {});
  // Ends the subscription of `c` to `wire` (herald only); on_unsubscribed
  // with the returned id follows.
  uint64_t unsubscribe(Conn& c, std::string_view wire);
  // Asks for the newest `limit` events of `wire` (herald only); on_history
  // follows.
  void history(Conn& c, uint64_t id, std::string_view wire, uint64_t limit);

  const ClientCounters& counters() const { return counters_; }

  // Handler (from the loop).
  void on_open(Conn& c) override;
  void on_text(Conn& c, std::string_view msg, uint64_t recv_ns) override;
  void on_binary(Conn& c, std::string_view msg, uint64_t recv_ns) override;
  void on_closed(Conn& c, const CloseInfo& info) override { h_.on_closed(c, info); }

 private:
  void on_herald(Conn& c, std::string_view msg, uint64_t recv_ns);
  void on_nats(Conn& c, std::string_view bytes, uint64_t recv_ns);
  void nats_send(Conn& c, std::string_view bytes) { loop_.send_binary(c, bytes); }
  void expect_pong(Conn& c, uint64_t tag);
  // NatsSink, for the connection being parsed (cur_).
  void nats_msg(std::string_view subject, std::string_view sid, std::string_view payload) override;
  void nats_ping() override;
  void nats_pong() override;
  void nats_info(std::string_view json) override;
  void nats_err(std::string_view text) override;

  Target target_;
  ClientHandler& h_;
  Loop loop_;
  ClientCounters counters_;
  bool connect_first_ = false;
  bool pipeline_connect_ = false;
  std::string scratch_;
  Conn* cur_ = nullptr;  // connection whose bytes nats_parse is reading
  uint64_t cur_recv_ns_ = 0;
};

}  // namespace herald::bench
