// The JSON the app backend answers a hook with (docs/backend-hooks.md),
// read into what the session acts on. Pure functions, no I/O, so every
// shape of reply is unit tested (tests/unit/proxy_replies_test.cpp).
//
// Every hook's reply is an object with exactly one of
//   {"result": {...}}                       allow (the hook's own fields)
//   {"error": {"code": "...", "message": "..."}}   refuse with a Herald error
//   {"disconnect": {"code": 4000-4999, "reason": "..."}}   close the connection
// Anything else is Malformed (the session answers `internal`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "auth/jwt.hpp"
#include "protocol/errors.hpp"

namespace herald::proxy {

struct Refusal {
  protocol::ErrorCode code = protocol::ErrorCode::forbidden;
  std::string message;
};

struct Disconnect {
  uint16_t code = 4003;
  std::string reason;
};

struct Malformed {
  std::string why;  // names the field; never quotes the reply
};

// connect: result {user, info, caps, channels, expire_at, data}; the same
// meanings as the JWT claims sub, info, caps, channels, exp. `data`: raw
// JSON for `connected.data`, "" when absent.
struct ConnectGrant {
  auth::Claims claims;
  std::string data;
};
using ConnectReply = std::variant<ConnectGrant, Refusal, Disconnect, Malformed>;

// subscribe: result {info, data}; `info` replaces the connection's info in
// the channel's presence, `data` goes to the client in `subscribed.data`.
struct SubscribeGrant {
  std::string info;  // raw JSON, "" when absent
  std::string data;  // raw JSON, "" when absent
};
using SubscribeReply = std::variant<SubscribeGrant, Refusal, Disconnect, Malformed>;

// publish: result {data}: data, when present, replaces the published data.
struct PublishGrant {
  std::optional<std::string> data;  // raw JSON
};
using PublishReply = std::variant<PublishGrant, Refusal, Disconnect, Malformed>;

// rpc: result {data}: the reply's data (null when absent).
struct RpcGrant {
  std::string data;  // raw JSON
};
using RpcReply = std::variant<RpcGrant, Refusal, Disconnect, Malformed>;

// refresh: result {expire_at, info}: the connection's new expiry (seconds
// since the Unix epoch, required) and, when present, its new info.
struct RefreshGrant {
  int64_t expire_at = 0;
  std::string info;  // raw JSON, "" when absent (info unchanged)
};
using RefreshReply = std::variant<RefreshGrant, Refusal, Disconnect, Malformed>;

ConnectReply parse_connect_reply(std::string_view body);
RefreshReply parse_refresh_reply(std::string_view body);
SubscribeReply parse_subscribe_reply(std::string_view body);
PublishReply parse_publish_reply(std::string_view body);
RpcReply parse_rpc_reply(std::string_view body);

// The Herald error a backend's error code stands for: the name of any
// Herald error code (docs/protocol.md section 8) is kept; an absent,
// unknown or non-string code is `forbidden`.
protocol::ErrorCode backend_error_code(std::string_view code);

}  // namespace herald::proxy
