// WebSocket opening handshake (RFC 6455 section 4.2), server side.
//
// Given a parsed HTTP request, decides whether it is a valid upgrade and
// builds the exact bytes to answer with: a 101 Switching Protocols response,
// or an HTTP error (400 bad request, 403 origin not allowed, 426 wrong
// version with `Sec-WebSocket-Version: 13`). permessage-deflate is accepted
// when enabled (see ws/deflate_offer.hpp); subprotocols and other extensions
// are declined by not echoing them.
#pragma once

#include <boost/beast/http/message.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace herald::ws {

struct UpgradeDecision {
  bool accepted = false;
  int status = 0;        // 101 when accepted, else the HTTP error status
  std::string response;  // complete HTTP/1.1 response to write
  std::string reason;    // why it was refused (for logs and the body)
  bool deflate = false;  // permessage-deflate negotiated (accepted only)
};

// True when the request asks for a WebSocket upgrade at all (has an
// `Upgrade: websocket` token); such a request is answered by check_upgrade
// whether or not it is valid.
bool is_upgrade_request(const boost::beast::http::request_header<>& req);

// Validates method GET, HTTP/1.1, `Upgrade: websocket`, a `Connection`
// header with the `upgrade` token, `Sec-WebSocket-Version: 13` and a
// `Sec-WebSocket-Key` that is base64 of 16 bytes. When `allowed_origins` is
// not empty, the `Origin` header must equal one of them ("*" allows any).
// With `deflate` (server.compression), a permessage-deflate offer Herald can
// honour is accepted and answered in Sec-WebSocket-Extensions.
UpgradeDecision check_upgrade(const boost::beast::http::request_header<>& req,
                              const std::vector<std::string>& allowed_origins,
                              bool deflate = false);

// base64(SHA-1(key + GUID)), the Sec-WebSocket-Accept value.
std::string accept_key(std::string_view client_key);

}  // namespace herald::ws
