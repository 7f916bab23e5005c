// ClientSession, identity: connection and subscription tokens (connect,
// refresh, sub_refresh, subscribe with a token), token expiry on the tick,
// and the server actions that end a user's connection or subscription. See
// client_session.hpp; the access rules themselves are auth::check.
#include "protocol/client_session.hpp"
#include "protocol/messages.hpp"
#include "ws/frame_codec.hpp"

namespace herald::protocol {

namespace {

// Operations a subscription token grants when its `caps` says nothing.
constexpr auth::OpSet kSubscriptionTokenDefault = static_cast<auth::OpSet>(
    static_cast<auth::OpSet>(auth::Op::subscribe) | static_cast<auth::OpSet>(auth::Op::history) |
    static_cast<auth::OpSet>(auth::Op::presence));

// Operations the `channels` claim grants on each channel it names.
constexpr auth::OpSet kPersonalChannel = kSubscriptionTokenDefault;

// Why a verified subscription token does not fit this connection and
// channel, or "" when it does.
std::string subscription_token_mismatch(const auth::Claims& claims, const auth::Identity* identity,
                                        const std::string& channel) {
  if (!identity) return "subscription tokens need a connection that connected with a token";
  if (claims.sub != identity->user) return "subscription token is for another user";
  if (claims.channel != channel) return "subscription token is for another channel";
  return {};
}

auth::OpSet granted_by(const auth::Claims& claims, const std::string& channel) {
  return claims.caps.empty() ? kSubscriptionTokenDefault : claims.caps.ops_for(channel);
}

}  // namespace

// --- tokens ---------------------------------------------------------------------

void ClientSession::verify_token(auth::TokenKind kind, std::string token,
                                 std::function<void(ClientSession&, auth::VerifyResult)> then) {
  verifying_ = true;
  pause_reading();
  ctx_.auth->verify(kind, std::move(token), auth::Authenticator::now_seconds(), ctx_.token_cache,
                    ctx_.executor,
                    [self = weak_self(), then = std::move(then)](auth::VerifyResult result) {
                      auto s = self.lock();
                      if (!s) return;
                      s->verifying_ = false;
                      if (s->is_open()) then(*s, std::move(result));
                      s->release_held();
                    });
}

void ClientSession::release_held() {
  // Handle what arrived meanwhile, in order, unless a command among them
  // starts another verification: the rest then waits for that one.
  while (rare_ && !rare_->held.empty() && !verifying_ && is_open()) {
    std::string text = std::move(rare_->held.front());
    rare_->held.erase(rare_->held.begin());
    auto parsed = ctx_.parser.parse(text);
    if (auto* err = std::get_if<CommandError>(&parsed))
      reply_error(err->code, err->message, err->id);
    else
      handle(std::get<Command>(parsed));
  }
  if (rare_ && rare_->held.empty()) {
    std::vector<std::string>().swap(rare_->held);  // its buffer too
    shed_rare();
  }
  if (!verifying_ && pending_requests_ < ctx_.max_pending_requests) resume_reading();
}

void ClientSession::connect_with_token(std::string token) {
  Command cmd;
  cmd.type = CommandType::connect;
  cmd.token = std::move(token);
  handle_connect(cmd);
}

void ClientSession::handle_connect(Command& cmd) {
  if (connected_) {
    reply_error(ErrorCode::bad_request, "already connected", cmd.id);
    return;
  }
  if (connect_hook_applies(cmd)) {
    connect_through_hook(cmd);
    return;
  }
  if (cmd.token.empty() || !ctx_.auth->enabled()) {
    // Anonymous (an open server ignores tokens: it has no key to check them).
    connected_ = true;
    std::string out;
    append_connected(out, cmd.id, client_id_, {}, 0, ctx_.ping_seconds);
    send_text(out);
    return;
  }
  if (ctx_.abuse->config.auth_failures_per_ip_per_minute) {
    if (const uint64_t wait =
            ctx_.abuse->auth_failures_per_ip.peek(peer_string(), ws::Clock::now())) {
      reply_rate_limited("too many refused tokens from this address; try again later", wait, cmd.id,
                         true);
      return;
    }
  }
  connected_ = true;  // a second connect while verifying is "already connected"
  verify_token(auth::TokenKind::connection, std::move(cmd.token),
               [id = std::move(cmd.id)](ClientSession& s, auth::VerifyResult result) {
                 s.on_connect_verified(id, std::move(result));
               });
}

void ClientSession::on_connect_verified(const std::string& id, auth::VerifyResult result) {
  std::string refusal;
  if (const auto* error = std::get_if<auth::VerifyError>(&result))
    refusal = error->reason;
  else if (std::get<auth::Claims>(result).sub.empty())
    refusal = "token has no sub (the user id)";
  if (!refusal.empty()) {
    if (ctx_.abuse->config.auth_failures_per_ip_per_minute)
      ctx_.abuse->auth_failures_per_ip.take(peer_string(), ws::Clock::now());
    reply_error(ErrorCode::unauthorized, refusal, id);
    close(ws::close_code::unauthorized, "unauthorized");
    return;
  }
  accept_identity(id, std::get<auth::Claims>(result), {});
}

void ClientSession::accept_identity(const std::string& id, auth::Claims& claims,
                                    std::string_view data) {
  if (ctx_.abuse->config.connections_per_user) {
    if (!ctx_.abuse->connections_per_user.acquire(claims.sub)) {
      reply_rate_limited(
          "too many connections for user " + claims.sub + " (rate_limits.connections_per_user)",
          1000, id, true);
      return;
    }
    counted_user_ = true;
  }
  identity_ = std::make_unique<auth::Identity>();
  identity_->user = std::move(claims.sub);
  identity_->info = std::move(claims.info);
  identity_->caps = std::move(claims.caps);
  identity_->expires = claims.exp.value_or(0);
  for (const auto& channel : claims.channels) identity_->caps.add(channel, kPersonalChannel);
  update_next_expiry();
  std::string out;
  append_connected(out, id, client_id_, identity_->user, identity_->expires, ctx_.ping_seconds,
                   data);
  send_text(out);
  // Server-side subscriptions: each gets a `subscribed` without id.
  for (auto& channel : claims.channels) {
    Command sub;
    sub.type = CommandType::subscribe;
    sub.channel = std::move(channel);
    if (std::string why = check_channel_name(sub.channel, 1024); !why.empty()) {
      reply_error(ErrorCode::bad_request, "token channels: " + why, {});
      continue;
    }
    if (find(sub.channel)) continue;
    if (subscriptions_.size() >= ctx_.max_channels_per_connection) {
      reply_error(ErrorCode::forbidden, "token channels: channel limit reached", {});
      break;
    }
    subscribe_checked(sub, 0, 0, true);
  }
}

void ClientSession::handle_refresh(Command& cmd) {
  if (!identity_) {
    reply_error(ErrorCode::unauthorized, "refresh needs a connection that connected with a token",
                cmd.id);
    return;
  }
  verify_token(auth::TokenKind::connection, std::move(cmd.token),
               [id = std::move(cmd.id)](ClientSession& s, auth::VerifyResult result) {
                 if (const auto* error = std::get_if<auth::VerifyError>(&result)) {
                   s.reply_error(ErrorCode::unauthorized, error->reason, id);
                   return;
                 }
                 auto& claims = std::get<auth::Claims>(result);
                 if (claims.sub != s.identity_->user) {
                   s.reply_error(ErrorCode::unauthorized,
                                 "refresh token is for another user than the connection's", id);
                   return;
                 }
                 s.identity_->info = std::move(claims.info);
                 s.identity_->caps = std::move(claims.caps);
                 for (const auto& channel : claims.channels)
                   s.identity_->caps.add(channel, kPersonalChannel);
                 s.identity_->expires = claims.exp.value_or(0);
                 s.update_next_expiry();
                 std::string out;
                 append_refreshed(out, id, s.identity_->expires);
                 s.send_text(out);
               });
}

void ClientSession::handle_sub_refresh(Command& cmd) {
  Subscription* sub = find(cmd.channel);
  if (!sub || sub->unsubscribe_pending) {
    reply_error(ErrorCode::not_subscribed, "not subscribed to " + cmd.channel, cmd.id);
    return;
  }
  verify_token(auth::TokenKind::subscription, std::move(cmd.token),
               [id = std::move(cmd.id), channel = std::move(cmd.channel)](
                   ClientSession& s, auth::VerifyResult result) {
                 if (const auto* error = std::get_if<auth::VerifyError>(&result)) {
                   s.reply_error(ErrorCode::unauthorized, error->reason, id);
                   return;
                 }
                 const auto& claims = std::get<auth::Claims>(result);
                 if (auto why = subscription_token_mismatch(claims, s.identity_.get(), channel);
                     !why.empty()) {
                   s.reply_error(ErrorCode::forbidden, why, id);
                   return;
                 }
                 Subscription* sub = s.find(channel);
                 if (!sub) {
                   s.reply_error(ErrorCode::not_subscribed, "not subscribed to " + channel, id);
                   return;
                 }
                 sub->granted = granted_by(claims, channel);
                 sub->expires = claims.exp.value_or(0);
                 s.update_next_expiry();
                 std::string out;
                 append_sub_refreshed(out, id, channel, sub->expires);
                 s.send_text(out);
               });
}

void ClientSession::update_next_expiry() {
  int64_t next = identity_ ? identity_->expires : 0;
  for (const auto& sub : subscriptions_)
    if (sub.expires && (!next || sub.expires < next)) next = sub.expires;
  next_expiry_ = next;
}

void ClientSession::on_tick(ws::Clock::time_point) {
  if (!next_expiry_) return;
  const int64_t now = auth::Authenticator::now_seconds();
  if (hook_identity_ && maybe_refresh(now)) return;
  if (now < next_expiry_) return;
  if (identity_ && identity_->expires && identity_->expires <= now) {
    reply_error(ErrorCode::token_expired,
                "the connection's token expired; reconnect with a new token (or refresh before "
                "it expires)",
                {});
    close(ws::close_code::unauthorized, "token expired");
    next_expiry_ = 0;
    return;
  }
  std::vector<std::string> lapsed;
  for (const auto& sub : subscriptions_)
    if (sub.expires && sub.expires <= now && sub.active && !sub.unsubscribe_pending)
      lapsed.push_back(sub.channel);
  for (const auto& channel : lapsed) finish_unsubscribe(channel, {}, "token_expired");
  update_next_expiry();
}

// --- server actions ----------------------------------------------------------------

void ClientSession::kick(std::string_view reason) {
  close(ws::close_code::kicked, reason.empty() ? "disconnected by the server" : reason);
}

bool ClientSession::kick_from(const std::string& channel) {
  Subscription* sub = find(channel);
  if (!sub || sub->unsubscribe_pending) return false;
  if (!sub->active) {
    // Its subscribe reply is on the way: end it as soon as it arrives.
    sub->unsubscribe_pending = true;
    sub->kicked = true;
    sub->unsubscribe_id.reset();
    return true;
  }
  finish_unsubscribe(channel, {}, "kicked");
  return true;
}

void ClientSession::subscribe_with_token(Command& cmd) {
  std::string token = std::move(cmd.token);
  verify_token(
      auth::TokenKind::subscription, std::move(token),
      [cmd = std::move(cmd)](ClientSession& s, auth::VerifyResult result) mutable {
        if (const auto* error = std::get_if<auth::VerifyError>(&result)) {
          s.reply_error(ErrorCode::unauthorized, "subscription token: " + error->reason, cmd.id);
          return;
        }
        const auto& claims = std::get<auth::Claims>(result);
        if (auto why = subscription_token_mismatch(claims, s.identity_.get(), cmd.channel);
            !why.empty()) {
          s.reply_error(ErrorCode::forbidden, why, cmd.id);
          return;
        }
        if (s.find(cmd.channel)) {
          s.reply_error(ErrorCode::bad_request, "already subscribed to " + cmd.channel, cmd.id);
          return;
        }
        const auth::OpSet granted = granted_by(claims, cmd.channel);
        if (!s.allowed(auth::Op::subscribe, cmd.channel, cmd.id, granted)) return;
        s.subscribe_checked(cmd, granted, claims.exp.value_or(0), false);
      });
}

}  // namespace herald::protocol
