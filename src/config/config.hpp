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
#include <string_view>
#include <vector>

namespace herald::config {

struct ServerConfig {
  std::string listen_host = "0.0.0.0";  // server.listen = "host:port"
  uint16_t listen_port = 8080;
  unsigned workers = 0;  // 0: one per core
  std::string ws_path = "/ws";
  std::string static_dir = "web";            // "" disables static files
  std::vector<std::string> allowed_origins;  // empty: any origin
  std::chrono::milliseconds shutdown_timeout{5000};
  std::string log_level = "info";   // trace, debug, info, warn, error, off
  bool allow_remote_admin = false;  // /api/admin/* from peers other than loopback

  bool operator==(const ServerConfig&) const = default;
};

struct LimitsConfig {
  size_t max_message_bytes = 64 * 1024;         // one inbound WebSocket message
  size_t max_outbound_bytes = 4 * 1024 * 1024;  // queued per connection -> 4008
  size_t max_channel_length = 255;
  size_t max_event_length = 128;
  size_t max_channels_per_connection = 256;
  size_t max_connections = 100000;  // per server
  size_t max_http_body_bytes = 1024 * 1024;
  size_t max_pending_requests = 256;  // per connection, awaiting a channel owner
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds ping_interval{25000};
  std::chrono::milliseconds pong_timeout{10000};

  bool operator==(const LimitsConfig&) const = default;
};

struct HistoryConfig {
  size_t size = 1000;                               // events kept per channel
  std::chrono::milliseconds ttl{24 * 3600 * 1000};  // 0: no age limit
  size_t max_request = 1000;                        // cap on `history`/`limit` per request

  bool operator==(const HistoryConfig&) const = default;
};

struct EngineConfig {
  std::string type = "sqlite";        // sqlite or memory (redis to come)
  std::string data_dir = "data";      // sqlite: directory of herald.db
  std::string durability = "normal";  // sqlite: normal (process crash) or full (power loss)
  size_t queue_limit = 100000;        // sqlite: operations waiting for the storage thread
  size_t hot_window = 256;            // sqlite: newest events per active channel kept in RAM
  size_t channel_cache = 100000;      // sqlite: channel rows the storage thread keeps in RAM

  bool operator==(const EngineConfig&) const = default;
};

// The options of one channel namespace: the part of a channel name before
// its first ':' (`chat` in `chat:lobby`) selects them. Read from the file
// only (`[defaults]` and `[namespaces.<name>]`, docs/config.md); a namespace
// table inherits every key it does not set from `[defaults]`, whose history
// keys are `history.size` and `history.ttl_ms`.
struct NamespaceOptions {
  size_t history_size = 1000;                               // events kept per channel
  std::chrono::milliseconds history_ttl{24 * 3600 * 1000};  // 0: no age limit
  bool recover = true;                   // subscribers may ask to recover missed events
  bool client_publish = true;            // WebSocket clients may publish (else only the HTTP API)
  bool presence = false;                 // reserved for the presence feature
  bool join_leave = false;               // reserved for the presence feature
  size_t max_message_bytes = 64 * 1024;  // bytes of one publish's `data`
  // JSON file mapping event names to JSON Schemas; "" for none. Made absolute
  // at load (a relative path is relative to the config file's directory).
  std::string schema;
  bool strict_events = false;  // reject events the schema does not declare

  bool operator==(const NamespaceOptions&) const = default;
};

struct DefaultsConfig {
  NamespaceOptions options;  // for channels of no configured namespace
  // Whether channels whose namespace is not configured (or that have no ':')
  // are allowed; when not, they get `unknown_channel`.
  bool allow_unknown = true;

  bool operator==(const DefaultsConfig&) const = default;
};

struct Config {
  ServerConfig server;
  LimitsConfig limits;
  HistoryConfig history;
  EngineConfig engine;
  DefaultsConfig defaults;  // defaults.options.history_* mirror history.size/ttl
  std::map<std::string, NamespaceOptions, std::less<>> namespaces;  // fully resolved

  bool operator==(const Config&) const = default;
};

// The file load() reads when no --config / HERALD_CONFIG is given (not an
// error when missing).
inline constexpr const char* kDefaultConfigPath = "herald.toml";

// Thrown for any bad key or value; what() names the key, e.g.
// "server.workers: must be between 0 and 256 (got -3)". When the value came
// from a file, an environment variable or a flag, the message ends with where
// it came from, e.g. "(in herald.toml, line 4)" or "(from HERALD_SERVER_WORKERS)".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Values given on the command line; unset fields leave the lower layers alone.
struct Overrides {
  std::optional<std::string> listen;  // "host:port" or ":port"
  std::optional<unsigned> workers;
  std::optional<std::string> static_dir;
  std::optional<std::string> log_level;
};

// Loads defaults <- TOML file at `path` (skipped when empty; when the path is
// the implicit default "herald.toml" and it does not exist, skipped too) <-
// environment (`env`, e.g. HERALD_SERVER_LISTEN, HERALD_LIMITS_PING_INTERVAL_MS;
// the map form makes tests hermetic) <- overrides. Throws ConfigError.
// Unknown keys in the file, and unknown HERALD_SERVER_*, HERALD_LIMITS_*,
// HERALD_HISTORY_*, HERALD_ENGINE_* variables, are errors (typos fail loudly);
// other HERALD_* variables (e.g. HERALD_CONFIG) are ignored here.
Config load(const std::string& path, bool path_is_explicit,
            const std::map<std::string, std::string>& env, const Overrides& overrides);

// The process environment as a map, for load().
std::map<std::string, std::string> process_environment();

// Parses "host:port", ":port", "port" or "[::1]:port" (":port" and "port"
// mean host 0.0.0.0; port 0 asks the OS for a free port). The host must be
// an IP address (IPv6 in brackets) or "localhost", which gives 127.0.0.1, so
// `host` always suits ip::make_address. Throws ConfigError naming `key`;
// `host` and `port` are only written on success.
void parse_listen(const std::string& key, const std::string& value, std::string& host,
                  uint16_t& port);

// The namespace part of a channel name: up to its first ':' ("" when none,
// which no [namespaces.<name>] table can name). core::NamespaceTable picks a
// channel's options with it.
std::string_view namespace_of(std::string_view channel);

// The keys whose values differ between `running` and `next` and that only
// take effect on a restart (every key but those of [defaults] and
// [namespaces.*]), e.g. {"server.workers"}.
std::vector<std::string> restart_required(const Config& running, const Config& next);

// Text listing every key, its default and its environment variable, for --help.
std::string describe_keys();

// `config` as a TOML document with every key (e.g. for printing the effective
// configuration); load() of that text gives `config` back.
std::string to_toml(const Config& config);

}  // namespace herald::config
