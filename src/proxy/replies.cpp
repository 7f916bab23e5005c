// Reading the backend's hook replies; see replies.hpp.
#include "proxy/replies.hpp"

#include <boost/json.hpp>

#include "auth/capabilities.hpp"

namespace herald::proxy {

namespace json = boost::json;

namespace {

// Messages from the backend are shown to clients: keep them short.
constexpr size_t kMaxMessageBytes = 1024;

constexpr protocol::ErrorCode kCodes[] = {
    protocol::ErrorCode::bad_request,       protocol::ErrorCode::invalid_json,
    protocol::ErrorCode::unknown_type,      protocol::ErrorCode::unauthorized,
    protocol::ErrorCode::token_expired,     protocol::ErrorCode::forbidden,
    protocol::ErrorCode::unknown_channel,   protocol::ErrorCode::not_subscribed,
    protocol::ErrorCode::channel_full,      protocol::ErrorCode::idempotency_conflict,
    protocol::ErrorCode::validation_failed, protocol::ErrorCode::too_large,
    protocol::ErrorCode::rate_limited,      protocol::ErrorCode::unavailable,
    protocol::ErrorCode::internal,
};

// The envelope: the reply's one member among result, error, disconnect.
struct Envelope {
  const json::object* result = nullptr;
  std::optional<Refusal> refusal;
  std::optional<Disconnect> disconnect;
  std::optional<Malformed> malformed;
};

// `doc` holds the parsed reply `result` points into.
Envelope open_envelope(std::string_view body, json::value& doc) {
  Envelope e;
  json::error_code ec;
  json::parse_options options;
  options.max_depth = 128;  // as deep as a client's data may be (limits' default)
  doc = json::parse(body, ec, {}, options);
  if (ec) {
    e.malformed = Malformed{"not JSON"};
    return e;
  }
  const auto* obj = doc.if_object();
  if (!obj) {
    e.malformed = Malformed{"not a JSON object"};
    return e;
  }
  const auto* result = obj->if_contains("result");
  const auto* error = obj->if_contains("error");
  const auto* disconnect = obj->if_contains("disconnect");
  const int members = (result ? 1 : 0) + (error ? 1 : 0) + (disconnect ? 1 : 0);
  if (members != 1) {
    e.malformed = Malformed{members == 0 ? "none of result, error, disconnect"
                                         : "more than one of result, error, disconnect"};
    return e;
  }
  if (result) {
    e.result = result->if_object();
    if (!e.result) e.malformed = Malformed{"result: not an object"};
    return e;
  }
  if (error) {
    const auto* eo = error->if_object();
    if (!eo) {
      e.malformed = Malformed{"error: not an object"};
      return e;
    }
    Refusal r;
    if (const auto* code = eo->if_contains("code"); code && code->is_string())
      r.code = backend_error_code(code->get_string());
    if (const auto* message = eo->if_contains("message"); message && message->is_string()) {
      const auto& m = message->get_string();
      r.message.assign(m.data(), std::min(m.size(), kMaxMessageBytes));
    }
    if (r.message.empty()) r.message = "refused by the application";
    e.refusal = std::move(r);
    return e;
  }
  const auto* d = disconnect->if_object();
  if (!d) {
    e.malformed = Malformed{"disconnect: not an object"};
    return e;
  }
  Disconnect out;
  if (const auto* code = d->if_contains("code")) {
    if (!code->is_int64() || code->get_int64() < 4000 || code->get_int64() > 4999) {
      e.malformed = Malformed{"disconnect.code: must be an integer from 4000 to 4999"};
      return e;
    }
    out.code = static_cast<uint16_t>(code->get_int64());
  }
  if (const auto* reason = d->if_contains("reason"); reason && reason->is_string()) {
    const auto& s = reason->get_string();
    out.reason.assign(s.data(), std::min(s.size(), size_t{100}));  // fits a close frame
  }
  e.disconnect = std::move(out);
  return e;
}

// Raw JSON of result.<name>, "" when absent.
std::string raw(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v ? json::serialize(*v) : std::string();
}

template <class Reply, class Read>
Reply read(std::string_view body, Read read_result) {
  json::value doc;
  Envelope e = open_envelope(body, doc);
  if (e.malformed) return std::move(*e.malformed);
  if (e.refusal) return std::move(*e.refusal);
  if (e.disconnect) return std::move(*e.disconnect);
  return read_result(*e.result);
}

std::optional<std::string> read_caps(const json::value& caps, auth::Capabilities& out) {
  const auto* obj = caps.if_object();
  if (!obj) return "result.caps: must be an object {pattern: [operations]}";
  for (const auto& [pattern, ops_value] : *obj) {
    const auto* ops = ops_value.if_array();
    if (!ops) return "result.caps: each value must be a list of operations";
    auth::OpSet set = 0;
    for (const auto& op : *ops) {
      auth::Op parsed;
      if (!op.is_string() || !auth::parse_op(op.get_string(), parsed))
        return "result.caps: unknown operation";
      set = static_cast<auth::OpSet>(set | static_cast<auth::OpSet>(parsed));
    }
    if (auto why = out.add(pattern, set); !why.empty()) return "result.caps: " + why;
  }
  return std::nullopt;
}

}  // namespace

protocol::ErrorCode backend_error_code(std::string_view code) {
  for (auto c : kCodes)
    if (protocol::to_string(c) == code) return c;
  return protocol::ErrorCode::forbidden;
}

ConnectReply parse_connect_reply(std::string_view body) {
  return read<ConnectReply>(body, [](const json::object& r) -> ConnectReply {
    ConnectGrant g;
    if (const auto* user = r.if_contains("user")) {
      if (!user->is_string()) return Malformed{"result.user: must be a string"};
      g.claims.sub = std::string(user->get_string());
    }
    g.claims.info = raw(r, "info");
    if (const auto* caps = r.if_contains("caps"))
      if (auto why = read_caps(*caps, g.claims.caps)) return Malformed{*why};
    if (const auto* channels = r.if_contains("channels")) {
      const auto* list = channels->if_array();
      if (!list) return Malformed{"result.channels: must be a list of channel names"};
      for (const auto& c : *list) {
        if (!c.is_string()) return Malformed{"result.channels: must be a list of channel names"};
        g.claims.channels.emplace_back(c.get_string());
      }
    }
    if (const auto* exp = r.if_contains("expire_at"); exp && !exp->is_null()) {
      if (!exp->is_int64() || exp->get_int64() < 0)
        return Malformed{"result.expire_at: must be seconds since the Unix epoch"};
      if (exp->get_int64() > 0) g.claims.exp = exp->get_int64();
    }
    g.data = raw(r, "data");
    return g;
  });
}

RefreshReply parse_refresh_reply(std::string_view body) {
  return read<RefreshReply>(body, [](const json::object& r) -> RefreshReply {
    const auto* exp = r.if_contains("expire_at");
    if (!exp || !exp->is_int64() || exp->get_int64() <= 0)
      return Malformed{"result.expire_at: required, seconds since the Unix epoch"};
    return RefreshGrant{exp->get_int64(), raw(r, "info")};
  });
}

SubscribeReply parse_subscribe_reply(std::string_view body) {
  return read<SubscribeReply>(body, [](const json::object& r) -> SubscribeReply {
    return SubscribeGrant{raw(r, "info"), raw(r, "data")};
  });
}

PublishReply parse_publish_reply(std::string_view body) {
  return read<PublishReply>(body, [](const json::object& r) -> PublishReply {
    PublishGrant g;
    if (r.contains("data")) g.data = raw(r, "data");
    return g;
  });
}

RpcReply parse_rpc_reply(std::string_view body) {
  return read<RpcReply>(body, [](const json::object& r) -> RpcReply {
    std::string data = raw(r, "data");
    return RpcGrant{data.empty() ? "null" : std::move(data)};
  });
}

}  // namespace herald::proxy
