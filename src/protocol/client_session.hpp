// One client's protocol v1 session on top of its WebSocket connection:
// parses each text message into a command, checks it against the session's
// state (connected, identity, subscriptions, limits), hands channel work to
// the core::Node and turns results into replies. Also the local subscriber
// that receives the channel frames the node fans out on this worker.
//
// Identity: `connect {token}` (or ?token= on the upgrade URL) is verified by
// the auth::Authenticator; what the verified user may do on a channel is
// decided by auth::check (src/auth/access.hpp) before any request reaches a
// channel's owner. While a token is being verified the session holds back
// later commands (and stops reading), so commands are handled in order with
// the identity they were sent under. Token expiry (the connection's and each
// subscription token's) is checked on the worker's tick.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "auth/abuse_limits.hpp"
#include "auth/access.hpp"
#include "auth/authenticator.hpp"
#include "core/node.hpp"
#include "core/subscribers.hpp"
#include "metrics/metrics.hpp"
#include "protocol/command.hpp"
#include "proxy/hooks.hpp"
#include "sse/event_stream.hpp"
#include "ws/connection.hpp"

namespace herald::protocol {

// What every session of one worker shares.
struct SessionContext {
  core::Node& node;
  unsigned worker = 0;
  CommandParser& parser;        // the worker's parser
  ws::ConnectionLimits limits;  // transport limits
  size_t max_channels_per_connection = 256;
  unsigned ping_seconds = 25;
  metrics::WorkerCounters* counters = nullptr;  // the worker's
  size_t max_pending_requests = 256;            // see limits.max_pending_requests
  auth::Authenticator* auth = nullptr;          // the process's; never null once serving
  auth::TokenCache* token_cache = nullptr;      // the worker's
  auth::AbuseLimits* abuse = nullptr;           // the process's
  boost::asio::any_io_executor executor;        // the worker's
  proxy::Hooks* hooks = nullptr;                // the worker's app backend hooks
};

// GET /sse (client_session_sse.cpp): what the request asked for.
struct SseOpen {
  std::vector<std::string> channels;  // in the request's order (the combined id's)
  std::string token;                  // from the query or the cookie; "" for none
  std::string last_event_id;          // header, or the last_event_id query parameter
  std::string extra_headers;          // response header lines (CORS), each ending "\r\n"
  unsigned retry_ms = 2000;
};

class ClientSession final : public ws::Connection, public core::Subscriber {
 public:
  ClientSession(int fd, ws::ConnectionHost& host, SessionContext& ctx, std::string client_id);

  const std::string& client_id() const { return client_id_; }
  // The verified user, "" for anonymous connections.
  std::string_view user() const { return identity_ ? std::string_view(identity_->user) : ""; }

  // The peer's address (IPv4 as IPv4-mapped IPv6), for the per-IP limits;
  // counts the connection against rate_limits.connections_per_ip and
  // new_connections_per_ip_per_second, closing it (rate_limited, 4029) when
  // over. Call right after start().
  void admit_from(const std::array<unsigned char, 16>& peer);

  // Connects with a token given on the upgrade URL (?token=), as a `connect`
  // without id would; call right after start().
  void connect_with_token(std::string token);

  // The upgrade request headers the connect hook gets ([proxy]
  // forward_headers, forward_cookies); call right after start().
  void set_forwarded_headers(proxy::Headers headers);

  // Server actions (POST /api/disconnect, /api/unsubscribe): close with 4003,
  // or end the subscription to `channel` with reason "kicked". The latter
  // returns whether the session was subscribed.
  void kick(std::string_view reason);
  bool kick_from(const std::string& channel);

  // SSE mode (after use_sse() and start()): connects with `open.token` and
  // subscribes to its channels (with recover from its Last-Event-ID), as
  // the commands a WebSocket client would send. The response (200 and the
  // stream, or the HTTP refusal) waits until every subscription answered.
  // `peer` as for admit_from(), which it calls.
  void start_sse(SseOpen open, const std::array<unsigned char, 16>& peer);

  // core::Subscriber: an event frame for a subscribed channel.
  void deliver(std::string_view channel, const ws::SharedFrame& frame) override {
    ctx_.counters->deliveries.add();
    if (is_sse())
      deliver_sse(channel, frame);
    else
      send(frame);
  }
  // core::Subscriber: the channel was destroyed or expired.
  void end(const std::string& channel, std::string_view reason) override;

 private:
  // 56 bytes (issue 15: each connection's one subscription is paid per idle
  // connection; the rare pending unsubscribe's id is boxed).
  struct Subscription {
    std::string channel;
    int64_t expires = 0;  // its subscription token's exp, 0: none
    // Raw id of an unsubscribe that arrived while pending (null: none or "").
    std::unique_ptr<std::string> unsubscribe_id;
    uint32_t seq = 0;     // tells a reply for this subscription from an older one
    bool active = false;  // reply received, in the local subscriber table
    bool unsubscribe_pending = false;
    bool kicked = false;      // the pending unsubscribe is a server action's
    auth::OpSet granted = 0;  // operations its subscription token grants
  };

  // Every reply and server message goes through these two: for an SSE
  // stream they become SSE messages, and while the stream opens its first
  // error or close becomes the HTTP refusal (client_session_sse.cpp).
  void send_text(std::string_view json);
  void close(uint16_t code, std::string_view reason = {});

  // --- SSE (client_session_sse.cpp) ---
  struct SseStream {
    std::vector<std::string> channels;                    // the request's, in its order
    std::vector<std::optional<sse::Position>> positions;  // per channel: the combined id
    std::string head;     // the 200 response head and `retry:`, until the stream opens
    std::string held;     // SSE bytes queued while the stream opens
    size_t awaiting = 0;  // the request's subscriptions not answered yet
    bool open = false;    // the head went out (or the stream was refused)
  };
  SseStream* sse() { return rare_ ? rare_->sse.get() : nullptr; }
  void deliver_sse(std::string_view channel, const ws::SharedFrame& frame);
  // `subscribed` (its JSON in `json`): the channel's position, with the id.
  void sse_subscribed(const std::string& channel, std::string_view epoch, uint64_t offset,
                      std::string_view json);
  // Queues SSE bytes, or holds them while the stream opens.
  void sse_send(std::string_view bytes);
  void sse_send(const ws::SharedFrame& bytes);
  // The stream opens: headers, retry and what was held.
  void sse_accept();
  // The stream is refused before it opened: an HTTP error with `json`.
  void sse_refuse(int status, std::string_view json, uint16_t close_code);

  void on_text(std::string_view text) override;
  void on_ping_due() override;
  void on_tick(ws::Clock::time_point now) override;
  void on_closed() override;

  void handle(Command& cmd);
  void handle_connect(Command& cmd);
  void on_connect_verified(const std::string& id, auth::VerifyResult result);
  // A verified identity (a token's claims, or the connect hook's result):
  // `connected` (with `data`), then its channels' subscriptions.
  void accept_identity(const std::string& id, auth::Claims& claims, std::string_view data);
  bool connect_hook_applies(const Command& cmd) const;
  void connect_through_hook(Command& cmd);
  // A hook's disconnect: close with its code and reason.
  void disconnect(const proxy::Disconnect& d);
  void publish_checked(Command& cmd);
  void publish_through_hook(Command& cmd);
  void subscribe_through_hook(Command& cmd, auth::OpSet granted, int64_t expires);
  void handle_rpc(Command& cmd);
  // Whether the channel's namespace sends subscribe / publish to the hook.
  bool proxied(const std::string& channel, bool publish) const;
  // The refresh hook, for an identity the connect hook gave, shortly before
  // it expires (on the tick); false when not due.
  bool maybe_refresh(int64_t now);
  void handle_refresh(Command& cmd);
  void handle_sub_refresh(Command& cmd);
  void handle_subscribe(Command& cmd);
  void subscribe_with_token(Command& cmd);
  void subscribe_checked(Command& cmd, auth::OpSet granted, int64_t expires, bool notify);
  // After the subscribe hook allowed it (`info` overrides the connection's
  // in the channel, `data` goes into `subscribed`).
  void subscribe_granted(Command& cmd, auth::OpSet granted, int64_t expires, bool notify,
                         std::string info, std::string data);
  void handle_unsubscribe(const Command& cmd);
  void handle_publish(Command& cmd);
  void handle_history(const Command& cmd);
  void handle_presence(const Command& cmd);
  void handle_destroy(Command& cmd);
  void on_subscribed(const std::string& channel, uint32_t seq, const std::string& id, bool notify,
                     const core::SubscribeResult& result, const std::string& data);
  void finish_unsubscribe(const std::string& channel, const std::string& id,
                          std::string_view reason = {});

  // The access rules (auth::check) for `op` on `channel`; replies with the
  // refusal and returns false when refused. Channels of unknown namespaces
  // pass: their owner answers unknown_channel.
  // `granted`: the operations a subscription token grants (default: those
  // of the connection's subscription to `channel`, if any).
  bool allowed(auth::Op op, const std::string& channel, std::string_view id,
               std::optional<auth::OpSet> granted = std::nullopt);

  // Verifies a token off the command path: later commands wait (see the
  // file comment) until `then` has run.
  void verify_token(auth::TokenKind kind, std::string token,
                    std::function<void(ClientSession&, auth::VerifyResult)> then);
  // Holds later commands (as verify_token does) until the returned
  // callback's `then` has run with the hook's reply; nothing runs once the
  // connection is gone.
  template <class Reply>
  std::function<void(Reply)> after_hook(std::function<void(ClientSession&, Reply)> then);
  // A command's hook said no: a refusal becomes the command's error reply, a
  // disconnect closes the connection. True when it did either.
  template <class Reply>
  bool refused_by_hook(const Reply& reply, std::string_view id);
  void release_held();
  void update_next_expiry();

  // Requests waiting for a channel owner: reading pauses at the limit.
  void request_sent();
  void reply_received();

  void reply_error(ErrorCode code, std::string_view message, std::string_view id,
                   std::string_view details = {});
  // rate_limited with retry_after_ms; closes with 4029 once the client has
  // ignored rate_limits.violations_before_close of them in a row (`close_now`:
  // at once).
  void reply_rate_limited(std::string_view message, uint64_t retry_after_ms, std::string_view id,
                          bool close_now = false);
  // The per-connection buckets (commands, publishes, the namespace's
  // publishes); false after replying rate_limited.
  bool within_command_rate(const Command& cmd);
  bool within_publish_rate(const Command& cmd);
  std::string peer_string() const;
  void reply_failure(const core::Failure& failure, std::string_view id);
  // The callback of a request sent to a channel owner (after request_sent):
  // counts the reply, answers a failure with its error, else calls
  // `reply(session, id, result)`; nothing once the connection is gone.
  template <class Result, class Reply>
  auto on_reply(std::string id, Reply reply) {
    return [self = weak_self(), id = std::move(id), reply = std::move(reply)](const Result& r) {
      auto s = self.lock();
      if (!s) return;
      s->reply_received();
      if (!s->is_open()) return;
      if (r.failure)
        s->reply_failure(*r.failure, id);
      else
        reply(*s, id, r);
    };
  }
  std::weak_ptr<ClientSession> weak_self();

  SessionContext& ctx_;
  std::string client_id_;
  Subscription* find(std::string_view channel);
  void erase(std::string_view channel);

  // A plain vector: a connection has few subscriptions (at most
  // limits.max_channels_per_connection), and a hash map would cost more
  // memory per idle connection than the linear search costs time.
  std::vector<Subscription> subscriptions_;
  uint32_t next_seq_ = 0;
  uint32_t pending_requests_ = 0;
  bool connected_ = false;
  bool verifying_ = false;      // a token verification or a hook request is in flight
  bool hook_identity_ = false;  // identity_ came from the connect hook
  bool refreshing_ = false;     // a refresh hook request is in flight, or failed
  uint16_t violations_ = 0;     // rate_limited replies in a row
  bool counted_ip_ = false;     // holds a rate_limits.connections_per_ip slot
  bool counted_user_ = false;   // holds a rate_limits.connections_per_user slot
  // Earliest token expiry of the connection and its subscriptions (seconds
  // since the Unix epoch), 0: none; checked on every tick.
  int64_t next_expiry_ = 0;
  std::unique_ptr<auth::Identity> identity_;  // null: anonymous
  std::array<unsigned char, 16> peer_{};
  // Token buckets of this connection, made on first use when a limit is set.
  struct Buckets {
    auth::TokenBucket commands;
    auth::TokenBucket publishes;
    // Per namespace with its own publishes_per_second (few per connection).
    std::vector<std::pair<std::string, auth::TokenBucket>> namespaces;
  };
  // What few connections use, or use for a moment, in one box: the others
  // pay one null pointer (issue 15: the session is paid per idle connection;
  // three pointers and the padding the members above had cost one 16-byte
  // malloc step).
  struct Rare {
    std::unique_ptr<Buckets> buckets;
    // The upgrade request headers for the connect hook, until connected.
    std::unique_ptr<proxy::Headers> forwarded;
    // Messages that arrived while verifying_, handled once it is over.
    std::vector<std::string> held;
    // SSE streams only (client_session_sse.cpp).
    std::unique_ptr<SseStream> sse;
  };
  std::unique_ptr<Rare> rare_;
  Rare& rare() {
    if (!rare_) rare_ = std::make_unique<Rare>();
    return *rare_;
  }
  // Frees the box once nothing is in it.
  void shed_rare() {
    if (rare_ && !rare_->buckets && !rare_->forwarded && rare_->held.empty() && !rare_->sse)
      rare_.reset();
  }
};

}  // namespace herald::protocol
