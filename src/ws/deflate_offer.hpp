// permessage-deflate negotiation (RFC 7692 section 5 and 7.1), server side.
//
// Reads the client's Sec-WebSocket-Extensions offers and picks the first
// permessage-deflate offer Herald can honour. Herald keeps no compression
// state between messages (no z_stream per connection: one compressed frame
// serves every subscriber), so an accepted response always carries
// server_no_context_takeover and client_no_context_takeover. It compresses
// with a 32 KiB window, so an offer limiting server_max_window_bits below 15
// is declined. Pure string work: no sockets, no zlib.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace herald::ws {

// The Sec-WebSocket-Extensions value to answer with when one of the offers
// in `header_values` (every Sec-WebSocket-Extensions header of the request,
// in order) is an acceptable permessage-deflate offer; "" to decline them
// all (unacceptable parameters, duplicates, a malformed header or no offer:
// the connection then works uncompressed).
std::string negotiate_deflate(std::span<const std::string_view> header_values);

}  // namespace herald::ws
