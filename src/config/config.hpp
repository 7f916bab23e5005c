// Herald's configuration: one struct, filled from (lowest to highest
// precedence) built-in defaults, a TOML file (`herald.toml`), `HERALD_*`
// environment variables and command-line flags. Every key is documented in
// docs/config.md; every value is checked at load time so a bad value stops
// start-up with a message naming the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace herald::config {

struct ServerConfig {
  std::string listen_host = "0.0.0.0";   // server.listen = "host:port"
  uint16_t listen_port = 8080;
  unsigned workers = 0;                  // 0: one per core
  std::string ws_path = "/ws";
  std::string static_dir = "web";        // "" disables static files
  std::vector<std::string> allowed_origins;  // empty: any origin
  std::chrono::milliseconds shutdown_timeout{5000};
  std::string log_level = "info";        // trace, debug, info, warn, error
};

struct LimitsConfig {
  size_t max_message_bytes = 64 * 1024;       // one inbound WebSocket message
  size_t max_outbound_bytes = 4 * 1024 * 1024;  // queued per connection -> 4008
  size_t max_channel_length = 255;
  size_t max_event_length = 128;
  size_t max_channels_per_connection = 256;
  size_t max_connections = 100000;            // per server
  size_t max_http_body_bytes = 1024 * 1024;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds ping_interval{25000};
  std::chrono::milliseconds pong_timeout{10000};
};

struct HistoryConfig {
  size_t size = 1000;                          // events kept per channel
  std::chrono::milliseconds ttl{24 * 3600 * 1000};  // 0: no age limit
  size_t max_request = 1000;                   // cap on `history`/`limit` per request
};

struct EngineConfig {
  std::string type = "memory";                 // memory (sqlite, redis to come)
};

struct Config {
  ServerConfig server;
  LimitsConfig limits;
  HistoryConfig history;
  EngineConfig engine;
};

// Thrown for any bad key or value; what() names the key, e.g.
// "server.workers: must be between 1 and 256 (got -3)".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Values given on the command line; unset fields leave the lower layers alone.
struct Overrides {
  std::optional<std::string> listen;   // "host:port" or ":port"
  std::optional<unsigned> workers;
  std::optional<std::string> static_dir;
  std::optional<std::string> log_level;
};

// Loads defaults <- TOML file at `path` (skipped when empty; when the path is
// the implicit default "herald.toml" and it does not exist, skipped too) <-
// environment (`env`, e.g. HERALD_SERVER_LISTEN, HERALD_LIMITS_PING_INTERVAL;
// the map form makes tests hermetic) <- overrides. Throws ConfigError.
Config load(const std::string& path, bool path_is_explicit,
            const std::map<std::string, std::string>& env, const Overrides& overrides);

// The process environment as a map, for load().
std::map<std::string, std::string> process_environment();

// Parses "host:port", ":port" or "port"; throws ConfigError naming `key`.
void parse_listen(const std::string& key, const std::string& value, std::string& host,
                  uint16_t& port);

// Text listing every key, its default and its environment variable, for --help.
std::string describe_keys();

}  // namespace herald::config
