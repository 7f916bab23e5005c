// ClientSession: protocol v1 command handling for one client; see
// client_session.hpp. Runs on the worker thread that owns the connection.
#include "protocol/client_session.hpp"

#include <boost/asio/ip/address_v6.hpp>

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

}  // namespace

struct ClientSession::Buckets {
  auth::TokenBucket commands;
  auth::TokenBucket publishes;
  // Per namespace with its own publishes_per_second (few per connection).
  std::vector<std::pair<std::string, auth::TokenBucket>> namespaces;
};

ClientSession::ClientSession(int fd, ws::ConnectionHost& host, SessionContext& ctx,
                             std::string client_id)
    : ws::Connection(fd, host, ctx.limits), ctx_(ctx), client_id_(std::move(client_id)) {}

ClientSession::~ClientSession() = default;

// --- abuse limits -------------------------------------------------------------------

std::string ClientSession::peer_string() const {
  const auto v6 = boost::asio::ip::address_v6(peer_);
  if (v6.is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  return v6.to_string();
}

void ClientSession::admit_from(const std::array<unsigned char, 16>& peer) {
  peer_ = peer;
  auto* abuse = ctx_.abuse;
  if (!abuse) return;
  const auto& c = abuse->config;
  if (!c.new_connections_per_ip_per_second && !c.connections_per_ip) return;
  const std::string ip = peer_string();
  if (const uint64_t wait = abuse->new_connections_per_ip.take(ip, ws::Clock::now())) {
    reply_rate_limited("too many new connections from " + ip, wait, {}, true);
    return;
  }
  if (c.connections_per_ip) {
    if (!abuse->connections_per_ip.acquire(ip)) {
      reply_rate_limited("too many connections from " + ip + " (rate_limits.connections_per_ip)",
                         1000, {}, true);
      return;
    }
    counted_ip_ = true;
  }
}

void ClientSession::reply_rate_limited(std::string_view message, uint64_t retry_after_ms,
                                       std::string_view id, bool close_now) {
  std::string out;
  append_error(out, ErrorCode::rate_limited, message, id, {}, retry_after_ms);
  send_text(out);
  ++violations_;
  const size_t limit = ctx_.abuse ? ctx_.abuse->config.violations_before_close : 0;
  if (close_now || (limit && violations_ >= limit))
    close(ws::close_code::rate_limited, "rate limited");
}

bool ClientSession::within_command_rate(const Command& cmd) {
  const auto& c = ctx_.abuse->config;
  if (!c.commands_per_second && !c.publishes_per_second && !buckets_) return true;
  if (!buckets_)
    buckets_ = std::make_unique<Buckets>(
        Buckets{auth::TokenBucket(static_cast<double>(c.commands_per_second),
                                  auth::burst_or_rate(c.commands_burst, c.commands_per_second)),
                auth::TokenBucket(static_cast<double>(c.publishes_per_second),
                                  auth::burst_or_rate(c.publishes_burst, c.publishes_per_second)),
                {}});
  if (const uint64_t wait = buckets_->commands.take(ws::Clock::now())) {
    reply_rate_limited("too many commands (rate_limits.commands_per_second)", wait, cmd.id);
    return false;
  }
  return true;
}

bool ClientSession::within_publish_rate(const Command& cmd) {
  const auto now = ws::Clock::now();
  if (buckets_) {
    if (const uint64_t wait = buckets_->publishes.take(now)) {
      reply_rate_limited("too many publishes (rate_limits.publishes_per_second)", wait, cmd.id);
      return false;
    }
  }
  const core::Namespace* ns = ctx_.node.namespace_of(ctx_.worker, cmd.channel);
  if (ns && ns->options.publishes_per_second) {
    if (!buckets_)
      buckets_ =
          std::make_unique<Buckets>(Buckets{auth::TokenBucket(0, 0), auth::TokenBucket(0, 0), {}});
    auto& list = buckets_->namespaces;
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const auto& entry) { return entry.first == ns->name; });
    if (it == list.end()) {
      const auto& o = ns->options;
      list.emplace_back(ns->name, auth::TokenBucket(static_cast<double>(o.publishes_per_second),
                                                    auth::burst_or_rate(o.publishes_burst,
                                                                        o.publishes_per_second)));
      it = std::prev(list.end());
    }
    if (const uint64_t wait = it->second.take(now)) {
      reply_rate_limited(
          "too many publishes on namespace '" + ns->name + "' (publishes_per_second)", wait,
          cmd.id);
      return false;
    }
  }
  if (identity_ && ctx_.abuse->config.user_publishes_per_second) {
    if (const uint64_t wait = ctx_.abuse->user_publishes.take(identity_->user, now)) {
      reply_rate_limited("too many publishes by user " + identity_->user +
                             " (rate_limits.user_publishes_per_second)",
                         wait, cmd.id);
      return false;
    }
  }
  return true;
}

std::weak_ptr<ClientSession> ClientSession::weak_self() {
  return std::static_pointer_cast<ClientSession>(shared_from_this());
}

void ClientSession::on_text(std::string_view text) {
  ctx_.counters->messages_received.add();
  if (verifying_) {
    if (!held_) held_ = std::make_unique<std::vector<std::string>>();
    held_->emplace_back(text);
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
    if (ctx_.auth->enabled()) {
      if (cmd.type != CommandType::pong)
        reply_error(ErrorCode::unauthorized,
                    "connect first: this server expects a connect message (with a token, or "
                    "without one for anonymous access) before any other",
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
      reply_error(ErrorCode::forbidden, "presence is not enabled", cmd.id);
      break;
    case CommandType::refresh:
      handle_refresh(cmd);
      break;
    case CommandType::sub_refresh:
      handle_sub_refresh(cmd);
      break;
    case CommandType::pong:
    case CommandType::connect:
      break;
  }
}

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
  while (held_ && !held_->empty() && !verifying_ && is_open()) {
    std::string text = std::move(held_->front());
    held_->erase(held_->begin());
    auto parsed = ctx_.parser.parse(text);
    if (auto* err = std::get_if<CommandError>(&parsed))
      reply_error(err->code, err->message, err->id);
    else
      handle(std::get<Command>(parsed));
  }
  if (held_ && held_->empty()) held_.reset();
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
  auto& claims = std::get<auth::Claims>(result);
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
  append_connected(out, id, client_id_, identity_->user, identity_->expires, ctx_.ping_seconds);
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

// Why a verified subscription token does not fit this connection and
// channel, or "" when it does.
static std::string subscription_token_mismatch(const auth::Claims& claims,
                                               const auth::Identity* identity,
                                               const std::string& channel) {
  if (!identity) return "subscription tokens need a connection that connected with a token";
  if (claims.sub != identity->user) return "subscription token is for another user";
  if (claims.channel != channel) return "subscription token is for another channel";
  return {};
}

static auth::OpSet granted_by(const auth::Claims& claims, const std::string& channel) {
  return claims.caps.empty() ? kSubscriptionTokenDefault : claims.caps.ops_for(channel);
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
    sub->unsubscribe_id.clear();
    return true;
  }
  finish_unsubscribe(channel, {}, "kicked");
  return true;
}

// --- channels ---------------------------------------------------------------------

bool ClientSession::allowed(auth::Op op, const std::string& channel, std::string_view id) {
  const core::Namespace* ns = ctx_.node.namespace_of(ctx_.worker, channel);
  if (!ns) return true;
  const Subscription* sub = find(channel);
  auto refusal = auth::check(ns->options, ctx_.auth->enabled(), identity_.get(), op, channel,
                             sub ? sub->granted : 0);
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
        const core::Namespace* ns = s.ctx_.node.namespace_of(s.ctx_.worker, cmd.channel);
        if (ns) {
          auto refusal = auth::check(ns->options, true, s.identity_.get(), auth::Op::subscribe,
                                     cmd.channel, granted);
          if (refusal) {
            s.reply_error(refusal->code, refusal->message, cmd.id);
            return;
          }
        }
        s.subscribe_checked(cmd, granted, claims.exp.value_or(0), false);
      });
}

void ClientSession::subscribe_checked(Command& cmd, auth::OpSet granted, int64_t expires,
                                      bool notify) {
  const uint32_t seq = ++next_seq_;
  subscriptions_.push_back(
      Subscription{cmd.channel, seq, false, false, false, granted, expires, {}});
  if (expires) update_next_expiry();
  core::SubscribeRequest req{cmd.channel, cmd.history, cmd.recover};
  request_sent();
  ctx_.node.subscribe(ctx_.worker, std::move(req),
                      [self = weak_self(), channel = cmd.channel, seq, notify,
                       id = std::move(cmd.id)](const core::SubscribeResult& result) {
                        if (auto s = self.lock())
                          s->on_subscribed(channel, seq, id, notify, result);
                      });
}

void ClientSession::on_subscribed(const std::string& channel, uint32_t seq, const std::string& id,
                                  bool notify, const core::SubscribeResult& result) {
  reply_received();
  Subscription* sub = find(channel);
  if (!sub || sub->seq != seq || !is_open()) return;
  if (result.failure) {
    erase(channel);
    ctx_.node.unsubscribe(ctx_.worker, channel);
    reply_failure(*result.failure, id);
    return;
  }
  sub->active = true;
  ctx_.node.local(ctx_.worker).add(channel, this);
  if (!id.empty() || notify) {
    std::string out;
    out.reserve(128 + result.events_json.size());
    append_subscribed(out, id, channel, result.epoch, result.offset, result.recovered,
                      result.events_json);
    send_text(out);
  }
  if (sub->unsubscribe_pending) {
    const std::string unsubscribe_id = std::move(sub->unsubscribe_id);
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
    sub->unsubscribe_id = cmd.id;
    return;
  }
  finish_unsubscribe(cmd.channel, cmd.id);
}

void ClientSession::finish_unsubscribe(const std::string& channel, const std::string& id,
                                       std::string_view reason) {
  ctx_.node.local(ctx_.worker).remove(channel, this);
  ctx_.node.unsubscribe(ctx_.worker, channel);
  erase(channel);
  if (!id.empty() || !reason.empty()) {
    std::string out;
    append_unsubscribed(out, id, channel, reason);
    send_text(out);
  }
}

void ClientSession::handle_publish(Command& cmd) {
  ctx_.counters->publishes.add();
  if (!allowed(auth::Op::publish, cmd.channel, cmd.id)) return;
  if (!within_publish_rate(cmd)) return;
  violations_ = 0;
  core::PublishRequest req{std::move(cmd.channel),
                           std::move(cmd.event),
                           std::move(cmd.data),
                           client_id_,
                           identity_ ? identity_->user : std::string(),
                           cmd.ephemeral,
                           identity_ ? identity_->info : std::string()};
  request_sent();
  ctx_.node.publish(ctx_.worker, std::move(req),
                    [self = weak_self(), id = std::move(cmd.id)](const core::PublishResult& r) {
                      auto s = self.lock();
                      if (!s) return;
                      s->reply_received();
                      if (!s->is_open()) return;
                      if (r.failure) {
                        s->reply_failure(*r.failure, id);
                      } else if (!id.empty()) {
                        std::string out;
                        append_ack(out, id, r.offset);
                        s->send_text(out);
                      }
                    });
}

void ClientSession::handle_history(const Command& cmd) {
  if (!allowed(auth::Op::history, cmd.channel, cmd.id)) return;
  core::HistoryRequest req;
  req.channel = cmd.channel;
  req.query.limit = cmd.limit.value_or(core::kDefaultHistoryLimit);
  req.query.before = cmd.before;
  req.query.after = cmd.after;
  request_sent();
  ctx_.node.history(
      ctx_.worker, std::move(req),
      [self = weak_self(), channel = cmd.channel, id = cmd.id](const core::HistoryResult& r) {
        auto s = self.lock();
        if (!s) return;
        s->reply_received();
        if (!s->is_open()) return;
        if (r.failure) {
          s->reply_failure(*r.failure, id);
          return;
        }
        std::string out;
        out.reserve(128 + r.events_json.size());
        append_history(out, id, channel, r.epoch, r.offset, r.events_json);
        s->send_text(out);
      });
}

void ClientSession::on_ping_due() {
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
    if (sub.active) local.remove(sub.channel, this);
    ctx_.node.unsubscribe(ctx_.worker, sub.channel);
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
