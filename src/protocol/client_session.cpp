// ClientSession: protocol v1 command handling for one client; see
// client_session.hpp. Runs on the worker thread that owns the connection.
// Tokens, expiry and server actions are in client_session_identity.cpp,
// rate limits in client_session_limits.cpp.
#include "protocol/client_session.hpp"

#include "protocol/messages.hpp"
#include "ws/frame_codec.hpp"

namespace herald::protocol {

ClientSession::ClientSession(int fd, ws::ConnectionHost& host, SessionContext& ctx,
                             std::string client_id)
    : ws::Connection(fd, host, ctx.limits), ctx_(ctx), client_id_(std::move(client_id)) {}

std::weak_ptr<ClientSession> ClientSession::weak_self() {
  return std::static_pointer_cast<ClientSession>(shared_from_this());
}

void ClientSession::on_text(std::string_view text) {
  ctx_.counters->messages_received.add();
  if (verifying_) {
    auto& held = rare().held;
    held.emplace_back(text);
    // Bounded: a client that keeps sending while it waits is not read further
    // (a hook wait reads on, so a close or ping from the peer is still seen).
    if (held.size() >= ctx_.max_pending_requests) pause_reading();
    return;
  }
  auto parsed = ctx_.parser.parse(text);
  if (auto* err = std::get_if<CommandError>(&parsed)) {
    reply_error(err->code, err->message, err->id);
    return;
  }
  handle(std::get<Command>(parsed));
}

void ClientSession::handle(Command& cmd) {
  if (cmd.type == CommandType::connect) {
    handle_connect(cmd);
    return;
  }
  if (!connected_) {
    if (ctx_.auth->enabled() || ctx_.hooks->enabled(proxy::Hook::connect)) {
      if (cmd.type != CommandType::pong)
        reply_error(ErrorCode::unauthorized,
                    "connect first: this server expects a connect message (with a token, or "
                    "without one for anonymous access or the application's connect hook) "
                    "before any other",
                    cmd.id);
      return;
    }
    connected_ = true;  // open server: the first other command connects anonymously
  }
  if (cmd.type != CommandType::pong) {
    if (!within_command_rate(cmd)) return;
    // A publish counts as accepted once its own buckets pass too.
    if (cmd.type != CommandType::publish) violations_ = 0;
  }
  switch (cmd.type) {
    case CommandType::subscribe:
      handle_subscribe(cmd);
      break;
    case CommandType::unsubscribe:
      handle_unsubscribe(cmd);
      break;
    case CommandType::publish:
      handle_publish(cmd);
      break;
    case CommandType::history:
      handle_history(cmd);
      break;
    case CommandType::presence:
    case CommandType::presence_stats:
      handle_presence(cmd);
      break;
    case CommandType::destroy:
      handle_destroy(cmd);
      break;
    case CommandType::refresh:
      handle_refresh(cmd);
      break;
    case CommandType::sub_refresh:
      handle_sub_refresh(cmd);
      break;
    case CommandType::rpc:
      handle_rpc(cmd);
      break;
    case CommandType::pong:
    case CommandType::connect:
      break;
  }
}

// --- channels ---------------------------------------------------------------------

bool ClientSession::allowed(auth::Op op, const std::string& channel, std::string_view id,
                            std::optional<auth::OpSet> granted) {
  const core::Namespace* ns = ctx_.node.namespace_of(ctx_.worker, channel);
  if (!ns) return true;
  if (!granted) {
    const Subscription* sub = find(channel);
    granted = sub ? sub->granted : 0;
  }
  auto refusal =
      auth::check(ns->options, ctx_.auth->enabled(), identity_.get(), op, channel, *granted);
  if (!refusal) return true;
  reply_error(refusal->code, refusal->message, id);
  return false;
}

ClientSession::Subscription* ClientSession::find(std::string_view channel) {
  for (auto& sub : subscriptions_) {
    if (sub.channel == channel) return &sub;
  }
  return nullptr;
}

void ClientSession::erase(std::string_view channel) {
  for (auto it = subscriptions_.begin(); it != subscriptions_.end(); ++it) {
    if (it->channel == channel) {
      *it = std::move(subscriptions_.back());
      subscriptions_.pop_back();
      break;
    }
  }
  if (subscriptions_.empty()) std::vector<Subscription>().swap(subscriptions_);
}

void ClientSession::handle_subscribe(Command& cmd) {
  if (find(cmd.channel)) {
    reply_error(ErrorCode::bad_request, "already subscribed to " + cmd.channel, cmd.id);
    return;
  }
  if (subscriptions_.size() >= ctx_.max_channels_per_connection) {
    reply_error(ErrorCode::forbidden,
                "channel limit reached (" + std::to_string(ctx_.max_channels_per_connection) +
                    " per connection)",
                cmd.id);
    return;
  }
  if (cmd.token.empty() || !ctx_.auth->enabled()) {
    if (allowed(auth::Op::subscribe, cmd.channel, cmd.id)) subscribe_checked(cmd, 0, 0, false);
    return;
  }
  subscribe_with_token(cmd);
}

void ClientSession::subscribe_checked(Command& cmd, auth::OpSet granted, int64_t expires,
                                      bool notify) {
  // Channels a token or the connect hook named were decided already.
  if (!notify && proxied(cmd.channel, false)) {
    subscribe_through_hook(cmd, granted, expires);
    return;
  }
  subscribe_granted(cmd, granted, expires, notify, identity_ ? identity_->info : std::string(), {});
}

void ClientSession::subscribe_granted(Command& cmd, auth::OpSet granted, int64_t expires,
                                      bool notify, std::string info, std::string data) {
  const uint32_t seq = ++next_seq_;
  subscriptions_.push_back(
      Subscription{cmd.channel, expires, nullptr, seq, false, false, false, granted});
  if (expires) update_next_expiry();
  core::SubscribeRequest req{cmd.channel,
                             cmd.history,
                             cmd.recover,
                             client_id_,
                             identity_ ? identity_->user : std::string(),
                             std::move(info)};
  request_sent();
  ctx_.node.subscribe(
      ctx_.worker, std::move(req),
      [self = weak_self(), channel = cmd.channel, seq, notify, id = std::move(cmd.id),
       data = std::move(data)](const core::SubscribeResult& result) {
        if (auto s = self.lock()) s->on_subscribed(channel, seq, id, notify, result, data);
      });
}

void ClientSession::on_subscribed(const std::string& channel, uint32_t seq, const std::string& id,
                                  bool notify, const core::SubscribeResult& result,
                                  const std::string& data) {
  reply_received();
  Subscription* sub = find(channel);
  if (!sub || sub->seq != seq || !is_open()) return;
  if (result.failure) {
    erase(channel);
    ctx_.node.unsubscribe(ctx_.worker, channel, client_id_);
    reply_failure(*result.failure, id);
    return;
  }
  sub->active = true;
  ctx_.counters->subscriptions.add();
  ctx_.node.local(ctx_.worker).add(channel, this);
  if (!id.empty() || notify) {
    std::string out;
    out.reserve(128 + result.events_json.size());
    append_subscribed(out, id, channel, result.epoch, result.offset, result.recovered,
                      result.events_json, data);
    if (sse())
      sse_subscribed(channel, result.epoch, result.offset, out);
    else
      send_text(out);
  }
  if (sub->unsubscribe_pending) {
    const std::string unsubscribe_id = sub->unsubscribe_id ? *sub->unsubscribe_id : std::string();
    finish_unsubscribe(channel, unsubscribe_id, sub->kicked ? "kicked" : "");
  }
}

void ClientSession::handle_unsubscribe(const Command& cmd) {
  Subscription* sub = find(cmd.channel);
  if (!sub || sub->unsubscribe_pending) {
    reply_error(ErrorCode::not_subscribed, "not subscribed to " + cmd.channel, cmd.id);
    return;
  }
  if (!sub->active) {
    // The subscribe reply is on its way; answer in order once it is here.
    sub->unsubscribe_pending = true;
    if (!cmd.id.empty()) sub->unsubscribe_id = std::make_unique<std::string>(cmd.id);
    return;
  }
  finish_unsubscribe(cmd.channel, cmd.id);
}

void ClientSession::finish_unsubscribe(const std::string& channel, const std::string& id,
                                       std::string_view reason) {
  ctx_.node.local(ctx_.worker).remove(channel, this);
  ctx_.counters->subscriptions.sub();
  ctx_.node.unsubscribe(ctx_.worker, channel, client_id_);
  erase(channel);
  if (!id.empty() || !reason.empty()) {
    std::string out;
    append_unsubscribed(out, id, channel, reason);
    send_text(out);
  }
  // An SSE stream cannot subscribe again by itself: it ends, and the client
  // reconnects with Last-Event-ID, which recovers (docs/protocol.md 14).
  if (reason == "resubscribe" && is_sse()) close(ws::close_code::going_away, "resubscribe");
}

void ClientSession::handle_publish(Command& cmd) {
  ctx_.counters->publishes.add();
  ctx_.counters->message_bytes.observe(static_cast<double>(cmd.data.size()));
  if (!allowed(auth::Op::publish, cmd.channel, cmd.id)) return;
  if (!within_publish_rate(cmd)) return;
  violations_ = 0;
  if (proxied(cmd.channel, true)) {
    publish_through_hook(cmd);
    return;
  }
  publish_checked(cmd);
}

void ClientSession::publish_checked(Command& cmd) {
  core::PublishRequest req{std::move(cmd.channel),
                           std::move(cmd.event),
                           std::move(cmd.data),
                           client_id_,
                           identity_ ? identity_->user : std::string(),
                           cmd.ephemeral,
                           identity_ ? identity_->info : std::string(),
                           std::move(cmd.idempotency_key)};
  request_sent();
  ctx_.node.publish(
      ctx_.worker, std::move(req),
      on_reply<core::PublishResult>(std::move(cmd.id), [](ClientSession& s, const std::string& id,
                                                          const core::PublishResult& r) {
        if (id.empty()) return;
        std::string out;
        append_ack(out, id, r.offset, r.replayed);
        s.send_text(out);
      }));
}

void ClientSession::handle_history(const Command& cmd) {
  if (!allowed(auth::Op::history, cmd.channel, cmd.id)) return;
  core::HistoryRequest req;
  req.channel = cmd.channel;
  req.query.limit = cmd.limit.value_or(core::kDefaultHistoryLimit);
  req.query.before = cmd.before;
  req.query.after = cmd.after;
  request_sent();
  ctx_.node.history(ctx_.worker, std::move(req),
                    on_reply<core::HistoryResult>(
                        cmd.id, [channel = cmd.channel](ClientSession& s, const std::string& id,
                                                        const core::HistoryResult& r) {
                          std::string out;
                          out.reserve(128 + r.events_json.size());
                          append_history(out, id, channel, r.epoch, r.offset, r.events_json);
                          s.send_text(out);
                        }));
}

void ClientSession::handle_presence(const Command& cmd) {
  if (!allowed(auth::Op::presence, cmd.channel, cmd.id)) return;
  const bool stats_only = cmd.type == CommandType::presence_stats;
  request_sent();
  ctx_.node.presence(
      ctx_.worker, cmd.channel, stats_only,
      on_reply<core::PresenceResult>(
          cmd.id, [channel = cmd.channel, stats_only](ClientSession& s, const std::string& id,
                                                      const core::PresenceResult& r) {
            if (id.empty()) return;
            std::string out;
            if (stats_only)
              append_presence_stats(out, id, channel, r.clients, r.users);
            else
              append_presence(out, id, channel, r.members_json, r.complete);
            s.send_text(out);
          }));
}

void ClientSession::handle_destroy(Command& cmd) {
  if (!allowed(auth::Op::destroy, cmd.channel, cmd.id)) return;
  request_sent();
  ctx_.node.destroy(ctx_.worker,
                    core::DestroyRequest{cmd.channel, std::move(cmd.event), std::move(cmd.data)},
                    on_reply<core::DestroyResult>(
                        cmd.id, [channel = cmd.channel](ClientSession& s, const std::string& id,
                                                        const core::DestroyResult& r) {
                          if (id.empty()) return;
                          std::string out;
                          append_destroyed(out, id, channel, r.epoch);
                          s.send_text(out);
                        }));
}

void ClientSession::end(const std::string& channel, std::string_view reason) {
  Subscription* sub = find(channel);
  if (!sub || !sub->active || sub->unsubscribe_pending) return;
  finish_unsubscribe(channel, {}, reason);
}

void ClientSession::on_ping_due() {
  if (is_sse()) {
    // A comment line: keeps proxies from timing the stream out; no pong.
    static const ws::SharedFrame heartbeat = [] {
      auto f = std::make_shared<ws::Frame>();
      f->storage = ":\n\n";
      return f;
    }();
    if (sse()->open) send(heartbeat);  // not before the response head
    return;
  }
  static const ws::SharedFrame ping = [] {
    std::string json;
    append_ping(json);
    return ws::make_frame(json);
  }();
  send(ping);
}

void ClientSession::on_closed() {
  if (counted_ip_) ctx_.abuse->connections_per_ip.release(peer_string());
  if (counted_user_ && identity_) ctx_.abuse->connections_per_user.release(identity_->user);
  counted_ip_ = counted_user_ = false;
  auto& local = ctx_.node.local(ctx_.worker);
  for (auto& sub : subscriptions_) {
    if (sub.active) {
      local.remove(sub.channel, this);
      ctx_.counters->subscriptions.sub();
    }
    ctx_.node.unsubscribe(ctx_.worker, sub.channel, client_id_);
  }
  std::vector<Subscription>().swap(subscriptions_);
}

void ClientSession::request_sent() {
  if (++pending_requests_ >= ctx_.max_pending_requests) pause_reading();
}

void ClientSession::reply_received() {
  --pending_requests_;
  // Resume with room for a whole batch again, not one request at a time.
  if (pending_requests_ <= ctx_.max_pending_requests / 2 && !verifying_) resume_reading();
}

void ClientSession::reply_error(ErrorCode code, std::string_view message, std::string_view id,
                                std::string_view details) {
  std::string out;
  append_error(out, code, message, id, details);
  send_text(out);
}

void ClientSession::reply_failure(const core::Failure& failure, std::string_view id) {
  reply_error(failure.code, failure.message, id, failure.details);
}

}  // namespace herald::protocol
