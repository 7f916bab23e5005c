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
  std::string sse_path = "/sse";              // SSE fallback endpoint; "" turns it off
  std::chrono::milliseconds sse_retry{2000};  // the `retry:` an SSE stream starts with
  std::string static_dir = "web";             // "" disables static files
  bool static_spa_fallback = false;           // extensionless path not found -> index.html
  std::vector<std::string> allowed_origins;   // empty: any origin
  std::chrono::milliseconds shutdown_timeout{5000};
  std::string log_level = "info";   // trace, debug, info, warn, error, off
  std::string log_format = "text";  // text or json (one object per line)
  bool access_log = false;          // a line per HTTP request and WebSocket connect/close
  bool allow_remote_admin = false;  // /api/admin/* from peers other than loopback
  // permessage-deflate (RFC 7692): off by default (see docs/config.md).
  bool compression = false;
  size_t compression_min_bytes = 256;  // smaller payloads go uncompressed
  int compression_level = 6;           // zlib, 1 (fast) .. 9 (small)
  // TLS for clients (wss://, https://): both PEM files or neither. When set,
  // `listen` speaks TLS only; `listen_plain` ("": none) adds a plaintext
  // listener beside it.
  std::string tls_cert_file;  // the certificate, then its chain
  std::string tls_key_file;   // its private key, not encrypted
  std::string listen_plain_host;
  uint16_t listen_plain_port = 0;
  bool has_listen_plain() const { return !listen_plain_host.empty(); }
  bool tls() const { return !tls_cert_file.empty(); }

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
  std::string type = "sqlite";        // sqlite, memory or redis
  std::string data_dir = "data";      // sqlite: directory of herald.db
  std::string durability = "normal";  // sqlite: normal (process crash) or full (power loss)
  size_t queue_limit = 100000;        // sqlite: operations waiting for the storage thread
  size_t hot_window = 256;            // sqlite: newest events per active channel kept in RAM
  size_t channel_cache = 100000;      // sqlite: channel rows the storage thread keeps in RAM
  size_t page_cache_mb = 32;          // sqlite: SQLite's page cache
  // redis: where, how patiently, and for how long idle channels are kept.
  std::string redis_url = "redis://127.0.0.1:6379";
  std::chrono::milliseconds redis_connect_timeout{2000};
  std::chrono::milliseconds redis_command_timeout{5000};
  std::chrono::milliseconds redis_reconnect_max{5000};
  std::chrono::milliseconds redis_idle_ttl{24LL * 3600 * 1000};
  std::string redis_prefix = "herald";
  bool redis_cluster = false;  // redis_url is a seed node of a Redis Cluster
  // How long a node's presence members stay in Redis without a refresh (a
  // node refreshes its own every third of it), so a crashed node's members
  // disappear within it.
  std::chrono::milliseconds redis_presence_ttl{30000};
  // rediss://: the CAs to trust ("": the system's), the client certificate
  // and its key (both or neither), and the name the server's certificate
  // must carry ("": the URL's host). Files are loaded at start.
  std::string redis_tls_ca_file;
  std::string redis_tls_cert_file;
  std::string redis_tls_key_file;
  std::string redis_tls_server_name;

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
  bool recover = true;  // subscribers may ask to recover missed events
  // Who may do what on the namespace's channels (src/auth/access.hpp):
  // "public" (any connection the namespace admits, anonymous ones too when
  // `anonymous`), "authenticated" (a connection with a verified user),
  // "capability" (a token's caps, a subscription token or a user channel
  // must grant it); publish_access also takes "none" (HTTP API only, what
  // `client_publish = false` means).
  std::string subscribe_access = "public";
  std::string publish_access = "public";
  std::string history_access = "public";
  std::string presence_access = "public";
  // Whether connections without a verified user may use the namespace;
  // unset: true when no auth key is configured, else false.
  std::optional<bool> anonymous;
  // Channels named `<ns>:...#user1,user2` may be used only by the users listed.
  bool user_channels = false;
  // Publishes per second of one connection on this namespace's channels
  // (0: only the global rate_limits apply); burst 0 means the rate.
  size_t publishes_per_second = 0;
  size_t publishes_burst = 0;
  // Presence and channel lifecycle (docs/protocol.md section 13).
  bool presence = false;               // presence / presence_stats answered
  bool join_leave = false;             // subscribers get join / leave messages
  size_t presence_max_members = 1000;  // beyond: counts only
  size_t max_users = 0;                // distinct users per channel (0: unlimited) -> channel_full
  std::chrono::milliseconds channel_ttl{0};  // destroyed that long after its first event (0: never)
  std::string expire_event;                  // final event on expiry ("": none)
  std::string expire_data = "null";          // its data (JSON text, checked at load)
  std::string destroy_access = "none";       // who may `destroy` over WebSocket
  // Exactly-once publish: how long, and how many per channel, idempotency
  // keys are remembered.
  std::chrono::milliseconds idempotency_window{120000};
  size_t idempotency_max_keys = 1000;
  size_t max_message_bytes = 64 * 1024;  // bytes of one publish's `data`
  // JSON file mapping event names to JSON Schemas; "" for none. Made absolute
  // at load (a relative path is relative to the config file's directory).
  std::string schema;
  bool strict_events = false;  // reject events the schema does not declare
  // Whether subscribe / publish on the namespace's channels ask the app's
  // backend first ([proxy] subscribe_url / publish_url, docs/backend-hooks.md).
  bool proxy_subscribe = false;
  bool proxy_publish = false;

  bool operator==(const NamespaceOptions&) const = default;
};

// One key that verifies JWTs ([[auth.keys]]). Exactly one of secret,
// secret_env, secret_file (HMAC) or public_key_file (PEM) is set; secrets
// are read at start-up (server::make_authenticator), never logged.
struct AuthKeyConfig {
  std::string name;
  std::string kid;                      // "": tried for tokens with any kid
  std::vector<std::string> algorithms;  // allow-list, e.g. {"HS256"}
  std::string secret;
  std::string secret_env;
  std::string secret_file;      // absolute once loaded
  std::string public_key_file;  // absolute once loaded
  std::string use = "both";     // connection, subscription or both

  bool operator==(const AuthKeyConfig&) const = default;
};

struct AuthConfig {
  std::vector<AuthKeyConfig> keys;
  std::string jwks_url;   // https:// (or http:// for loopback)
  std::string jwks_file;  // absolute once loaded
  std::string jwks_ca_file;
  std::vector<std::string> jwks_algorithms = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                              "PS512", "ES256", "ES384", "ES512"};
  std::chrono::milliseconds jwks_refresh{300000};
  std::chrono::milliseconds jwks_min_refetch{10000};
  std::chrono::milliseconds jwks_timeout{5000};
  std::string issuer;
  std::string audience;
  std::chrono::milliseconds leeway{5000};
  size_t max_token_bytes = 8192;
  bool query_token = true;                    // accept ?token= on the upgrade URL
  std::string token_cookie = "herald_token";  // SSE: cookie holding the token; "" for none
  size_t token_cache = 10000;                 // verified tokens remembered per worker

  bool configured() const { return !keys.empty() || !jwks_url.empty() || !jwks_file.empty(); }
  bool operator==(const AuthConfig&) const = default;
};

// One HTTP API key ([[api.keys]]): exactly one of key, key_env, key_file,
// sha256 (hex digest of the key).
struct ApiKeyConfig {
  std::string name;
  std::string key;
  std::string key_env;
  std::string key_file;  // absolute once loaded
  std::string sha256;
  std::vector<std::string> scopes;  // publish, history, admin, presence

  bool operator==(const ApiKeyConfig&) const = default;
};

struct ApiConfig {
  std::vector<ApiKeyConfig> keys;  // empty: the HTTP API is open (a warning at start)
  bool protect_metrics = false;    // GET /metrics needs a key (any scope)

  bool operator==(const ApiConfig&) const = default;
};

// Abuse limits ([rate_limits]); 0 turns a limit off.
struct RateLimitsConfig {
  size_t commands_per_second = 0;   // per connection, every command
  size_t commands_burst = 0;        // 0: the rate
  size_t publishes_per_second = 0;  // per connection
  size_t publishes_burst = 0;
  size_t user_publishes_per_second = 0;  // per user, over all their connections
  size_t user_publishes_burst = 0;
  size_t violations_before_close = 20;  // refusals in a row before close 4029
  size_t connections_per_ip = 0;
  size_t connections_per_user = 0;
  size_t new_connections_per_ip_per_second = 0;
  size_t auth_failures_per_ip_per_minute = 30;
  size_t max_tracked_keys = 100000;  // IPs and users tracked by the limits above

  bool operator==(const RateLimitsConfig&) const = default;
};

// The app backend's hooks ([proxy], docs/backend-hooks.md): HTTP endpoints
// Herald POSTs to before a connect, subscribe, publish or rpc; "" turns a
// hook off. The bounds apply to each hook of each worker on its own.
struct ProxyConfig {
  std::string connect_url;
  std::string subscribe_url;
  std::string publish_url;
  std::string rpc_url;
  std::string refresh_url;
  // "prefix=url": rpc methods starting with prefix go to url (the longest
  // matching prefix wins; the others to rpc_url).
  std::vector<std::string> rpc_routes;
  // JSON file {"<method>": {"request": <JSON Schema>, "response": <JSON
  // Schema>}}: rpc data Herald checks both ways; "" for none.
  std::string rpc_schema;
  std::string ca_file;  // https: PEM CAs to trust instead of the system's ("": the system's)
  std::chrono::milliseconds timeout{5000};  // one request, connecting included
  size_t max_concurrent = 64;               // in flight per hook per worker
  // Per hook overrides of timeout and max_concurrent; 0 takes those.
  std::chrono::milliseconds connect_timeout{0};
  size_t connect_max_concurrent = 0;
  std::chrono::milliseconds subscribe_timeout{0};
  size_t subscribe_max_concurrent = 0;
  std::chrono::milliseconds publish_timeout{0};
  size_t publish_max_concurrent = 0;
  std::chrono::milliseconds rpc_timeout{0};
  size_t rpc_max_concurrent = 0;
  std::chrono::milliseconds refresh_timeout{0};
  size_t refresh_max_concurrent = 0;

  // Headers of the WebSocket upgrade request passed to the connect hook
  // (lower case once loaded), and the cookies of its Cookie header.
  std::vector<std::string> forward_headers;
  std::vector<std::string> forward_cookies;
  // "Name: value" headers sent with every hook request (e.g. a shared
  // secret); their values are never logged.
  std::vector<std::string> static_headers;
  // Whether a connect with a token asks the connect hook too (else a token
  // skips it).
  bool connect_with_token = false;

  bool operator==(const ProxyConfig&) const = default;
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
  AuthConfig auth;
  ApiConfig api;
  RateLimitsConfig rate_limits;
  ProxyConfig proxy;
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
