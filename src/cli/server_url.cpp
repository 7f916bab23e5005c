// Reading --url and building request targets; see server_url.hpp.
#include "cli/server_url.hpp"

namespace herald::cli {

std::optional<ServerUrl> parse_server_url(std::string_view url, std::string_view ws_path,
                                          std::string* why) {
  std::string http_url(url);
  if (url.starts_with("ws://")) http_url = "http://" + std::string(url.substr(5));
  if (url.starts_with("wss://")) http_url = "https://" + std::string(url.substr(6));
  std::string reason;
  auto endpoint = proxy::parse_url(http_url, &reason);
  if (!endpoint) {
    if (why) *why = "--url " + std::string(url) + ": " + reason;
    return std::nullopt;
  }
  if (endpoint->target.find_first_of("?#") != std::string::npos) {
    if (why) *why = "--url " + std::string(url) + ": no query or fragment allowed";
    return std::nullopt;
  }
  if (!ws_path.starts_with('/')) {
    if (why) *why = "--ws-path must start with '/'";
    return std::nullopt;
  }
  while (!endpoint->target.empty() && endpoint->target.back() == '/') endpoint->target.pop_back();
  ServerUrl server;
  server.ws_target = endpoint->target + std::string(ws_path);
  server.endpoint = std::move(*endpoint);
  return server;
}

std::string host_port(const proxy::Endpoint& endpoint) {
  if (endpoint.host.find(':') != std::string::npos)
    return "[" + endpoint.host + "]:" + endpoint.port;
  return endpoint.host + ":" + endpoint.port;
}

std::string host_header(const proxy::Endpoint& endpoint) {
  const std::string hp = host_port(endpoint);
  if (endpoint.port != (endpoint.tls ? "443" : "80")) return hp;
  return hp.substr(0, hp.size() - endpoint.port.size() - 1);
}

std::string api_target(const ServerUrl& server, std::string_view path) {
  return server.endpoint.target + std::string(path);
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-' ||
        b == '.' || b == '_' || b == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

}  // namespace herald::cli
