// Protocol error codes (docs/protocol.md, "Errors"), shared by the WebSocket
// and HTTP front ends so both answer bad input in the same JSON shape.
#pragma once

#include <string_view>

namespace herald::protocol {

enum class ErrorCode {
  bad_request,
  invalid_json,
  unknown_type,
  unauthorized,
  token_expired,
  forbidden,
  unknown_channel,
  not_subscribed,
  channel_full,
  idempotency_conflict,
  validation_failed,
  too_large,
  rate_limited,
  unavailable,
  internal,
};

std::string_view to_string(ErrorCode code);

// The HTTP status the server API answers with for an error code.
int http_status(ErrorCode code);

}  // namespace herald::protocol
