// Where the command-line client finds the server: --url (http://host:port,
// optionally with a base path when a reverse proxy serves Herald under a
// prefix) and the WebSocket path derived from it (--ws-path, the server's
// server.ws_path), and how channel names are written into API paths. Pure
// functions (tests/unit/cli_test.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/http_client.hpp"

namespace herald::cli {

struct ServerUrl {
  proxy::Endpoint endpoint;  // host, port, tls; target = the base path without a trailing '/'
  std::string ws_target;     // base path + ws path, e.g. "/ws"
  std::string ca_file;       // https: CAs to trust instead of the system's ("" for those)
};

// "http://host[:port][/base]" (ws:// and wss:// are read as http:// and
// https://); `ws_path` must start with '/'. nullopt and `why` otherwise.
std::optional<ServerUrl> parse_server_url(std::string_view url, std::string_view ws_path,
                                          std::string* why);

// "host:port" as messages write it ("[::1]:8080" for an IPv6 address).
std::string host_port(const proxy::Endpoint& endpoint);

// The Host header: host_port() without the scheme's default port.
std::string host_header(const proxy::Endpoint& endpoint);

// The request target of an API path ("/api/publish") under the base path.
std::string api_target(const ServerUrl& server, std::string_view path);

// `s` with every byte but A-Z a-z 0-9 - . _ ~ percent-encoded: a channel
// name as one path segment (`chat:a/b#c` -> `chat%3Aa%2Fb%23c`).
std::string percent_encode(std::string_view s);

}  // namespace herald::cli
