// The options every client command shares (--url, --ws-path, --token,
// --api-key, --ca-file, --timeout-ms), and which transport a request command uses.
// A plain struct filled by commands.cpp; secrets stay in it and are only
// ever written into a request, never to stdout or stderr.
#pragma once

#include <cstdint>
#include <string>

#include "cli/server_url.hpp"

namespace herald::cli {

struct ClientOptions {
  std::string url = "http://localhost:8080";
  std::string ws_path = "/ws";
  std::string token;    // connection token (JWT) for the WebSocket
  std::string api_key;  // HTTP API key
  std::string ca_file;  // https: the CAs to trust ("" for the system's)
  uint64_t timeout_ms = 10000;
  ServerUrl server;  // from url and ws_path, once parsed
};

// pub, history and presence go over the HTTP API with the API key, or with
// none; over the WebSocket (as the token's user) when only a token is given.
inline bool use_websocket(const ClientOptions& o) {
  return !o.token.empty() && o.api_key.empty();
}

}  // namespace herald::cli
