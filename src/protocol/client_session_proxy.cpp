// ClientSession, app backend hooks ([proxy], docs/backend-hooks.md): the
// connect hook in place of (or besides) a token, the subscribe and publish
// hooks of namespaces that ask for them, and rpc. See client_session.hpp;
// the HTTP side is proxy::Hooks. While a hook request is in flight the
// session holds back later commands, as while verifying a token, so they
// are handled in order and with the identity the hook decided; other
// connections are not held.
#include <spdlog/spdlog.h>

#include "protocol/client_session.hpp"
#include "protocol/messages.hpp"
#include "ws/frame_codec.hpp"

namespace herald::protocol {

void ClientSession::set_forwarded_headers(proxy::Headers headers) {
  if (!headers.empty()) rare().forwarded = std::make_unique<proxy::Headers>(std::move(headers));
}

template <class Reply>
std::function<void(Reply)> ClientSession::after_hook(
    std::function<void(ClientSession&, Reply)> then) {
  // Reading goes on (on_text holds what arrives, up to a bound): a hook may
  // take up to proxy.timeout_ms, and the peer's close or a server shutdown
  // must not wait for it.
  verifying_ = true;
  request_sent();
  return [self = weak_self(), then = std::move(then)](Reply reply) {
    auto s = self.lock();
    if (!s) return;
    s->reply_received();
    s->verifying_ = false;
    if (s->is_open()) then(*s, std::move(reply));
    s->release_held();
  };
}

void ClientSession::disconnect(const proxy::Disconnect& d) {
  close(d.code, d.reason.empty() ? "disconnected by the application" : d.reason);
}

bool ClientSession::connect_hook_applies(const Command& cmd) const {
  if (!ctx_.hooks->enabled(proxy::Hook::connect)) return false;
  // A token the server can verify skips the hook unless configured otherwise.
  return cmd.token.empty() || !ctx_.auth->enabled() || ctx_.hooks->connect_with_token();
}

void ClientSession::connect_through_hook(Command& cmd) {
  connected_ = true;  // a second connect while waiting is "already connected"
  const std::string ip = peer_string();
  proxy::ConnectRequest req{client_id_, ip, cmd.data, rare_ ? rare_->forwarded.get() : nullptr};
  ctx_.hooks->connect(
      req, after_hook<proxy::ConnectReply>([id = std::move(cmd.id)](ClientSession& s,
                                                                    proxy::ConnectReply reply) {
        if (s.rare_) {
          s.rare_->forwarded.reset();  // needed no longer
          s.shed_rare();
        }
        if (auto* refusal = std::get_if<proxy::Refusal>(&reply)) {
          // The client learns why, then the connection ends: 4001 when the
          // backend does not know who it is, else 4003.
          s.reply_error(refusal->code, refusal->message, id);
          const bool unknown =
              refusal->code == ErrorCode::unauthorized || refusal->code == ErrorCode::token_expired;
          if (refusal->code == ErrorCode::unavailable || refusal->code == ErrorCode::internal)
            s.close(ws::close_code::internal_error, "connect hook failed");
          else
            s.close(unknown ? ws::close_code::unauthorized : ws::close_code::kicked,
                    unknown ? "unauthorized" : "forbidden");
          return;
        }
        if (auto* d = std::get_if<proxy::Disconnect>(&reply)) {
          s.disconnect(*d);
          return;
        }
        auto& grant = std::get<proxy::ConnectGrant>(reply);
        if (grant.claims.sub.empty()) {
          // No user: an anonymous connection (caps, channels, expire_at
          // belong to a user and are ignored).
          std::string out;
          append_connected(out, id, s.client_id_, {}, 0, s.ctx_.ping_seconds, grant.data);
          s.send_text(out);
          return;
        }
        s.accept_identity(id, grant.claims, grant.data);
        s.hook_identity_ = s.identity_ != nullptr;
      }));
}

bool ClientSession::maybe_refresh(int64_t now) {
  if (refreshing_ || !identity_ || !identity_->expires ||
      !ctx_.hooks->enabled(proxy::Hook::refresh))
    return false;
  // Asked early enough for the answer to arrive before the expiry: the hook's
  // timeout ahead (at least a second), so a slow backend still makes it.
  const int64_t ahead =
      std::max<int64_t>(1, (ctx_.hooks->timeout(proxy::Hook::refresh).count() + 999) / 1000);
  if (now < identity_->expires - ahead) return false;
  refreshing_ = true;
  proxy::RefreshRequest req{client_id_, identity_->user, identity_->expires};
  ctx_.hooks->refresh(req, [self = weak_self()](proxy::RefreshReply reply) {
    auto s = self.lock();
    if (!s || !s->is_open() || !s->identity_) return;
    if (auto* refusal = std::get_if<proxy::Refusal>(&reply)) {
      // unavailable / internal: the connection lives until its expire_at
      // (refreshing_ stays set: no second try); a refusal ends it now.
      if (refusal->code == ErrorCode::unavailable || refusal->code == ErrorCode::internal) return;
      s->reply_error(ErrorCode::token_expired, refusal->message, {});
      s->close(ws::close_code::unauthorized, "refresh refused");
      return;
    }
    if (auto* d = std::get_if<proxy::Disconnect>(&reply)) {
      s->disconnect(*d);
      return;
    }
    auto& grant = std::get<proxy::RefreshGrant>(reply);
    s->refreshing_ = false;
    s->identity_->expires = grant.expire_at;
    if (!grant.info.empty()) s->identity_->info = std::move(grant.info);
    s->update_next_expiry();
    std::string out;
    append_refreshed(out, {}, grant.expire_at);
    s->send_text(out);
  });
  return true;
}

bool ClientSession::proxied(const std::string& channel, bool publish) const {
  const auto hook = publish ? proxy::Hook::publish : proxy::Hook::subscribe;
  if (!ctx_.hooks->enabled(hook)) return false;
  const core::Namespace* ns = ctx_.node.namespace_of(ctx_.worker, channel);
  if (!ns) return false;
  return publish ? ns->options.proxy_publish : ns->options.proxy_subscribe;
}

template <class Reply>
bool ClientSession::refused_by_hook(const Reply& reply, std::string_view id) {
  if (auto* refusal = std::get_if<proxy::Refusal>(&reply)) {
    reply_error(refusal->code, refusal->message, id);
    return true;
  }
  if (auto* d = std::get_if<proxy::Disconnect>(&reply)) {
    disconnect(*d);
    return true;
  }
  return false;
}

void ClientSession::subscribe_through_hook(Command& cmd, auth::OpSet granted, int64_t expires) {
  // Shared, not moved into the callback: `req` views its strings.
  auto held = std::make_shared<Command>(std::move(cmd));
  proxy::ChannelRequest req{client_id_, user(), held->channel, {}, held->data};
  ctx_.hooks->subscribe(
      req, after_hook<proxy::SubscribeReply>([held, granted, expires](ClientSession& s,
                                                                      proxy::SubscribeReply reply) {
        Command& cmd = *held;
        if (s.refused_by_hook(reply, cmd.id)) return;
        if (s.find(cmd.channel)) {
          s.reply_error(ErrorCode::bad_request, "already subscribed to " + cmd.channel, cmd.id);
          return;
        }
        auto& grant = std::get<proxy::SubscribeGrant>(reply);
        std::string info = !grant.info.empty() ? std::move(grant.info)
                           : s.identity_       ? s.identity_->info
                                               : std::string();
        s.subscribe_granted(cmd, granted, expires, false, std::move(info), std::move(grant.data));
      }));
}

void ClientSession::publish_through_hook(Command& cmd) {
  auto held = std::make_shared<Command>(std::move(cmd));  // `req` views its strings
  proxy::ChannelRequest req{client_id_, user(), held->channel, held->event, held->data};
  ctx_.hooks->publish(
      req, after_hook<proxy::PublishReply>([held](ClientSession& s, proxy::PublishReply reply) {
        Command& cmd = *held;
        if (s.refused_by_hook(reply, cmd.id)) return;
        auto& grant = std::get<proxy::PublishGrant>(reply);
        // Replaced data is checked like any publish's (size, schema) by the
        // channel's owner.
        if (grant.data) cmd.data = std::move(*grant.data);
        s.publish_checked(cmd);
      }));
}

void ClientSession::handle_rpc(Command& cmd) {
  if (!ctx_.hooks->enabled(proxy::Hook::rpc)) {
    reply_error(ErrorCode::bad_request,
                "rpc: this server has no rpc hook ([proxy] rpc_url, rpc_routes)", cmd.id);
    return;
  }
  const schema::EventSchemas* schemas = ctx_.hooks->rpc_schemas();
  if (schemas) {
    auto verdict = schemas->check(cmd.method + "#request", cmd.data);
    if (!verdict.violations.empty()) {
      reply_error(ErrorCode::validation_failed,
                  "data does not match the request schema of rpc method '" + cmd.method + "'",
                  cmd.id, schema::violations_to_json(verdict.violations));
      return;
    }
  }
  proxy::RpcRequest req{client_id_, user(), cmd.method, cmd.data};
  auto then = [id = std::move(cmd.id), method = cmd.method, schemas](ClientSession& s,
                                                                     proxy::RpcReply reply) {
    if (s.refused_by_hook(reply, id)) return;
    const std::string& data = std::get<proxy::RpcGrant>(reply).data;
    if (schemas) {
      // The backend broke its own contract: the client gets `internal`, the
      // log says which method and where.
      auto verdict = schemas->check(method + "#response", data);
      if (!verdict.violations.empty()) {
        spdlog::warn(
            "proxy rpc hook: the result of method '{}' does not match its response schema ({})",
            method, schema::violations_to_json(verdict.violations));
        s.reply_error(ErrorCode::internal,
                      "the application's answer to rpc method '" + method +
                          "' does not match its response schema",
                      id);
        return;
      }
    }
    std::string out;
    append_rpc_result(out, id, data);
    s.send_text(out);
  };
  ctx_.hooks->rpc(req, after_hook<proxy::RpcReply>(std::move(then)));
}

}  // namespace herald::protocol
