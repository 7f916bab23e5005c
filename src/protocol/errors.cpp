// Protocol error codes: their wire names (the `code` field of an `error`
// message) and the HTTP status the server API answers each one with. The
// table is documented in docs/protocol.md, section 8 "Error codes".
#include "protocol/errors.hpp"

namespace herald::protocol {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request:
      return "bad_request";
    case ErrorCode::invalid_json:
      return "invalid_json";
    case ErrorCode::unknown_type:
      return "unknown_type";
    case ErrorCode::unauthorized:
      return "unauthorized";
    case ErrorCode::token_expired:
      return "token_expired";
    case ErrorCode::forbidden:
      return "forbidden";
    case ErrorCode::unknown_channel:
      return "unknown_channel";
    case ErrorCode::not_subscribed:
      return "not_subscribed";
    case ErrorCode::channel_full:
      return "channel_full";
    case ErrorCode::idempotency_conflict:
      return "idempotency_conflict";
    case ErrorCode::validation_failed:
      return "validation_failed";
    case ErrorCode::too_large:
      return "too_large";
    case ErrorCode::rate_limited:
      return "rate_limited";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::internal:
      return "internal";
  }
  // Only reachable with a value cast from an out-of-range integer.
  return "internal";
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request:
    case ErrorCode::invalid_json:
    case ErrorCode::unknown_type:
    case ErrorCode::validation_failed:
      return 400;
    case ErrorCode::unauthorized:
    case ErrorCode::token_expired:
      return 401;
    case ErrorCode::forbidden:
      return 403;
    case ErrorCode::unknown_channel:
      return 404;
    case ErrorCode::not_subscribed:
    case ErrorCode::channel_full:
    case ErrorCode::idempotency_conflict:
      return 409;
    case ErrorCode::too_large:
      return 413;
    case ErrorCode::rate_limited:
      return 429;
    case ErrorCode::unavailable:
      return 503;
    case ErrorCode::internal:
      return 500;
  }
  return 500;
}

}  // namespace herald::protocol
