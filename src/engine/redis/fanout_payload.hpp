// The messages Herald nodes exchange on a channel's pub/sub channel
// (<prefix>:{<tag>}:events), LAYOUT.md "PUBLISH payload": H2 (an event
// stored by publish.lua, which builds it in Lua), E2 (an ephemeral event) and
// R2 (a reset), the last two built here for ShardStore::broadcast. Each is a
// 2-byte kind and netstrings, the first of which is the origin (the sending
// node's id) so that a node can drop its own echo.
//
// Owns nothing; pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/engine.hpp"

namespace herald::engine::redis {

struct FanoutMessage {
  std::string origin;
  RemoteMessage message;  // channel left empty: the pub/sub channel names it
};

// E2 for Kind::ephemeral (ts, event, data, from_client, from_user,
// from_info of message.event), R2 for Kind::reset (reason); nullopt for
// Kind::event (stored events are published by publish.lua only).
std::optional<std::string> encode_fanout(std::string_view origin, const RemoteMessage& message);

// nullopt for anything malformed: an unknown kind, a bad length (not
// decimal, a leading zero), a missing ',', trailing bytes, a non-decimal
// offset or ts.
std::optional<FanoutMessage> decode_fanout(std::string_view payload);

}  // namespace herald::engine::redis
