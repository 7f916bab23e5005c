// Who may do what on a channel: the one place where a connection's identity
// meets a namespace's access options (docs/security.md, "Access rules").
//
// A request passes when, in this order: the connection is authenticated or
// the namespace admits anonymous connections; the channel is not a user
// channel of other users; and the operation's access level is met ("public":
// anyone admitted, "authenticated": a verified user, "capability": the
// token's caps, a subscription token or a user channel grants it; "none":
// never over WebSocket). Refusals name the operation and the channel; an
// anonymous connection is told to authenticate (unauthorized), an
// authenticated one that it lacks the right (forbidden).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/capabilities.hpp"
#include "config/config.hpp"
#include "protocol/errors.hpp"

namespace herald::auth {

// The verified identity of a connection (absent for anonymous ones).
struct Identity {
  std::string user;  // the token's sub
  std::string info;  // raw JSON of the token's info, "" when none
  Capabilities caps;
  int64_t expires = 0;  // the token's exp (seconds since the Unix epoch), 0: none
};

struct Refusal {
  protocol::ErrorCode code = protocol::ErrorCode::forbidden;
  std::string message;
};

// Whether the namespace admits connections without a user.
bool admits_anonymous(const config::NamespaceOptions& options, bool auth_configured);

// The users a user channel (`dm:#alice,bob`) names, or an empty view when
// `channel` is not one.
std::string_view user_list(std::string_view channel);
bool is_listed_user(std::string_view channel, std::string_view user);

// Checks `op` on `channel` of a namespace with `options`. `identity` is null
// for anonymous connections; `granted` are the operations a subscription
// token grants on this channel.
std::optional<Refusal> check(const config::NamespaceOptions& options, bool auth_configured,
                             const Identity* identity, Op op, std::string_view channel,
                             OpSet granted = 0);

}  // namespace herald::auth
