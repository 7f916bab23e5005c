// The protocol's first steps on a WebSocket link, shared by the client's
// commands: `connect` (with the token, if any) until `connected`, and one
// request answered by its reply, with the server's pings answered meanwhile
// (docs/protocol.md sections 4 to 6). Owns no link: callers pass theirs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "cli/outcome.hpp"
#include "cli/server_message.hpp"
#include "cli/ws_link.hpp"

namespace herald::cli {

// What a failed link step means for the client: a close after a refusal
// is `refused`; a drop, a timeout or no server at all is `unreachable`.
Failure link_failure(std::string_view doing, const LinkStatus& status);

// Opens `link` and connects; the `connected` message (its `ping` is the
// server's ping interval) or the failure ("connect refused: unauthorized:
// …" is Exit::refused).
std::variant<ServerMessage, Failure> open_and_connect(WsLink& link, const ServerUrl& server,
                                                      const std::string& token,
                                                      Clock::time_point deadline);

// Sends `{"type":"<type>","id":<id>,<fields>}` and returns the reply with
// that id (an `error` reply too: the caller reads its code), answering
// pings and skipping other messages meanwhile. `fields` is raw JSON members
// without braces ("" for none).
std::variant<ServerMessage, Failure> ws_request(WsLink& link, std::string_view type, uint64_t id,
                                                std::string_view fields,
                                                Clock::time_point deadline);

// `{"type":"<type>","id":<id>,<fields>}`
std::string request_text(std::string_view type, uint64_t id, std::string_view fields);

}  // namespace herald::cli
