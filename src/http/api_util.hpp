// Small pieces every HTTP API route uses: JSON responses, the protocol's
// error shape, 405s, percent-decoding and the protocol's integer syntax.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/http_session.hpp"
#include "protocol/errors.hpp"

namespace herald::http {

Response json_response(int status, std::string body);
// The protocol's JSON error with the HTTP status of `code`.
Response error(protocol::ErrorCode code, std::string_view message, std::string_view details = {});
// 405 with the methods the route takes ("POST", "GET, HEAD").
Response method_not_allowed(std::string_view allow);
// Percent-decodes a URL path segment or query component ('+' stays '+').
// Empty optional when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view in);
// A non-negative integer from 0 to 2^64-1 in decimal digits only, as the
// protocol's integer fields.
std::optional<uint64_t> parse_u64(std::string_view s);

}  // namespace herald::http
