// Loads Herald's configuration: built-in defaults, then a TOML file, then
// HERALD_* environment variables, then command-line overrides, checking every
// value on the way so that a bad one stops start-up with a message naming the
// key and where the value came from. One table (keys()) describes every key:
// its TOML name, type, range, help text and how it maps onto the Config
// struct; loading, --help text and to_toml() are all driven by it, so they
// cannot drift apart. A second table (namespace_keys()) does the same for
// the options of [defaults] and [namespaces.<name>]. Reading values from
// TOML is toml_values.cpp; the lists of key tables ([[auth.keys]],
// [[api.keys]]) are key_lists.cpp.
#include "config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string_view>
#include <system_error>
#include <variant>

#include "config/key_lists.hpp"
#include "config/toml_values.hpp"
#include "engine/redis/redis_url.hpp"
#include "proxy/hooks.hpp"

extern char** environ;

namespace herald::config {
namespace {

using namespace detail;

struct KeyDef {
  std::string_view section;
  std::string_view name;
  Type type;
  int64_t min = 0;  // integer and duration_ms only
  int64_t max = 0;
  std::string_view help;
  // Stores a value of the key's type; throws ConfigError (naming the key) for
  // values that are of the right type but not acceptable.
  std::function<void(Config&, const std::string& key, const Value&)> set;
  std::function<Value(const Config&)> get;

  std::string full_name() const { return std::string(section) + "." + std::string(name); }
};

constexpr std::string_view kSections[] = {"server", "limits",      "history", "engine",
                                          "auth",   "rate_limits", "api",     "proxy"};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view kLogFormats[] = {"text", "json"};
constexpr std::string_view kEngines[] = {"memory", "sqlite", "redis"};
constexpr std::string_view kDurabilities[] = {"normal", "full"};
constexpr std::string_view kAccessLevels[] = {"public", "authenticated", "capability"};
constexpr std::string_view kPublishAccessLevels[] = {"public", "authenticated", "capability",
                                                     "none"};

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kMiB = 1024 * 1024;

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool has_space_or_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

// --- value checks used by the key table -------------------------------------

void check_ws_path(const std::string& key, const std::string& value) {
  if (value.empty() || value.front() != '/')
    throw ConfigError(key + ": must start with '/' (got '" + value + "')");
  if (has_space_or_control(value) || value.find_first_of("?#") != std::string::npos)
    throw ConfigError(key + ": must be a plain URL path without spaces, '?' or '#' (got '" + value +
                      "')");
}

// Origins as browsers send them: scheme://host[:port], lower case, no path.
std::string normalize_origin(const std::string& key, const std::string& value) {
  const auto fail = [&](std::string_view why) {
    throw ConfigError(key + ": '" + value + "' is not an origin (" + std::string(why) +
                      "; expected scheme://host[:port], e.g. https://app.example.com)");
  };
  const auto sep = value.find("://");
  if (sep == std::string::npos || sep == 0) fail("no scheme");
  if (sep + 3 == value.size()) fail("no host");
  if (has_space_or_control(value)) fail("contains spaces");
  if (value.find('/', sep + 3) != std::string::npos) fail("has a path or trailing '/'");
  return to_lower(value);
}

// --- the key table ----------------------------------------------------------

// Keys backed by a size_t or a milliseconds field of one of Config's sections.
template <auto Section, auto Field>
KeyDef size_key(std::string_view section, std::string_view name, int64_t min, int64_t max,
                std::string_view help) {
  return {section,
          name,
          Type::integer,
          min,
          max,
          help,
          [](Config& c, const std::string&, const Value& v) {
            (c.*Section).*Field = static_cast<size_t>(std::get<int64_t>(v));
          },
          [](const Config& c) { return Value(static_cast<int64_t>((c.*Section).*Field)); }};
}

template <auto Section, auto Field>
KeyDef ms_key(std::string_view section, std::string_view name, int64_t min, int64_t max,
              std::string_view help) {
  return {
      section,
      name,
      Type::duration_ms,
      min,
      max,
      help,
      [](Config& c, const std::string&, const Value& v) {
        (c.*Section).*Field = std::chrono::milliseconds(std::get<int64_t>(v));
      },
      [](const Config& c) { return Value(static_cast<int64_t>(((c.*Section).*Field).count())); }};
}

// A string key of [engine] checked where it is used (a file is loaded at
// start); a host name (`is_host`) must not hold spaces or control
// characters, which only a typo puts there.
template <auto Field, bool is_host = false>
KeyDef engine_string_key(std::string_view name, std::string_view help) {
  return {"engine",
          name,
          Type::string,
          0,
          0,
          help,
          [](Config& c, const std::string& key, const Value& v) {
            const auto& value = std::get<std::string>(v);
            if (is_host && has_space_or_control(value))
              throw ConfigError(key + ": must not contain spaces or control characters");
            c.engine.*Field = value;
          },
          [](const Config& c) { return Value(c.engine.*Field); }};
}

// A [proxy] hook URL: "" or http://host[:port][/path].
template <auto Field>
KeyDef proxy_url(std::string_view name, std::string_view help) {
  return {"proxy",
          name,
          Type::string,
          0,
          0,
          help,
          [](Config& c, const std::string& key, const Value& v) {
            const auto& url = std::get<std::string>(v);
            std::string why;
            if (!url.empty() && !proxy::parse_url(url, &why))
              throw ConfigError(key + ": " + why + " (got '" + url + "')");
            c.proxy.*Field = url;
          },
          [](const Config& c) { return Value(c.proxy.*Field); }};
}

const std::vector<KeyDef>& keys() {
  static const std::vector<KeyDef> table = [] {
    std::vector<KeyDef> k;
    // [server]
    k.push_back(
        {"server", "listen", Type::string, 0, 0,
         "Address to listen on: \"ip:port\" (or localhost:port), \":port\", \"port\" or "
         "\"[::1]:port\" (port 0: any free port).",
         [](Config& c, const std::string& key, const Value& v) {
           parse_listen(key, std::get<std::string>(v), c.server.listen_host, c.server.listen_port);
         },
         [](const Config& c) {
           const auto& h = c.server.listen_host;
           const bool v6 = h.find(':') != std::string::npos;
           return Value((v6 ? "[" + h + "]" : h) + ":" + std::to_string(c.server.listen_port));
         }});
    k.push_back({"server", "workers", Type::integer, 0, 256,
                 "Worker threads, each with its own event loop and share of the channels; "
                 "0: one per CPU core.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.workers = static_cast<unsigned>(std::get<int64_t>(v));
                 },
                 [](const Config& c) { return Value(static_cast<int64_t>(c.server.workers)); }});
    k.push_back({"server", "ws_path", Type::string, 0, 0,
                 "URL path of the WebSocket endpoint; starts with '/'.",
                 [](Config& c, const std::string& key, const Value& v) {
                   check_ws_path(key, std::get<std::string>(v));
                   c.server.ws_path = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.server.ws_path); }});
    k.push_back({"server", "sse_path", Type::string, 0, 0,
                 "URL path of the SSE fallback (GET, text/event-stream); starts with '/'; \"\" "
                 "turns it off.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& path = std::get<std::string>(v);
                   if (!path.empty()) check_ws_path(key, path);
                   c.server.sse_path = path;
                 },
                 [](const Config& c) { return Value(c.server.sse_path); }});
    k.push_back(ms_key<&Config::server, &ServerConfig::sse_retry>(
        "server", "sse_retry_ms", 0, 10 * kMinute,
        "The reconnection delay an SSE stream asks the browser for (its first line, retry:)."));
    k.push_back({"server", "static_dir", Type::string, 0, 0,
                 "Directory served over HTTP as static files (e.g. the chat demo); \"\" turns "
                 "static files off.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.static_dir = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.server.static_dir); }});
    k.push_back({"server", "static_spa_fallback", Type::boolean, 0, 0,
                 "Whether a GET for a path without a file extension that matches no file "
                 "serves static_dir/index.html (client-side routing of a single-page app).",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.static_spa_fallback = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.server.static_spa_fallback); }});
    k.push_back({"server", "allowed_origins", Type::string_list, 0, 0,
                 "Origins (scheme://host[:port]) whose pages may open a WebSocket; [] allows "
                 "any origin. Environment: comma-separated.",
                 [](Config& c, const std::string& key, const Value& v) {
                   std::vector<std::string> origins;
                   for (const auto& o : std::get<std::vector<std::string>>(v))
                     origins.push_back(normalize_origin(key, o));
                   c.server.allowed_origins = std::move(origins);
                 },
                 [](const Config& c) { return Value(c.server.allowed_origins); }});
    k.push_back(ms_key<&Config::server, &ServerConfig::shutdown_timeout>(
        "server", "shutdown_timeout_ms", 0, 10 * kMinute,
        "On SIGINT/SIGTERM, how long to let connections close before exiting."));
    k.push_back({"server", "log_level", Type::string, 0, 0,
                 "Least severe messages logged: trace, debug, info, warn, error or off.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto level = to_lower(std::get<std::string>(v));
                   check_one_of(key, level, "log level", kLogLevels);
                   c.server.log_level = level;
                 },
                 [](const Config& c) { return Value(c.server.log_level); }});
    k.push_back({"server", "log_format", Type::string, 0, 0,
                 "Log line format: text (human-readable) or json (one JSON object per line with "
                 "time, level, message and fields, for log shippers).",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto format = to_lower(std::get<std::string>(v));
                   check_one_of(key, format, "log format", kLogFormats);
                   c.server.log_format = format;
                 },
                 [](const Config& c) { return Value(c.server.log_format); }});
    k.push_back({"server", "access_log", Type::boolean, 0, 0,
                 "Whether to log one line per HTTP request (method, path without query, status, "
                 "bytes, duration, peer) and per WebSocket connect and close (code, duration).",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.access_log = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.server.access_log); }});
    k.push_back({"server", "allow_remote_admin", Type::boolean, 0, 0,
                 "Whether the admin API (POST /api/admin/reload) answers peers other than "
                 "loopback; it has no authentication yet.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.allow_remote_admin = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.server.allow_remote_admin); }});
    k.push_back({"server", "compression", Type::boolean, 0, 0,
                 "Whether to accept permessage-deflate (RFC 7692) offers: outbound messages of "
                 "at least compression_min_bytes are compressed once per event and shared by "
                 "every connection that negotiated it. Takes effect on a restart.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.compression = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.server.compression); }});
    k.push_back(size_key<&Config::server, &ServerConfig::compression_min_bytes>(
        "server", "compression_min_bytes", 0, 64 * kMiB,
        "With compression: payloads shorter than this many bytes are sent uncompressed."));
    k.push_back(
        {"server", "compression_level", Type::integer, 1, 9,
         "With compression: the zlib level, 1 (fastest) to 9 (smallest).",
         [](Config& c, const std::string&, const Value& v) {
           c.server.compression_level = static_cast<int>(std::get<int64_t>(v));
         },
         [](const Config& c) { return Value(static_cast<int64_t>(c.server.compression_level)); }});

    k.push_back({"server", "tls_cert_file", Type::string, 0, 0,
                 "PEM file of the certificate clients see, followed by its chain; with "
                 "tls_key_file, `listen` speaks TLS only (wss://, https://). Re-read on SIGHUP.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.tls_cert_file = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.server.tls_cert_file); }});
    k.push_back({"server", "tls_key_file", Type::string, 0, 0,
                 "PEM file of the private key of tls_cert_file (not encrypted). Re-read on "
                 "SIGHUP.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.tls_key_file = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.server.tls_key_file); }});
    k.push_back({"server", "listen_plain", Type::string, 0, 0,
                 "With TLS on: a second address (same forms as listen) that speaks plain HTTP "
                 "and WebSocket, e.g. 127.0.0.1:8081 for a local proxy or /metrics scraping; "
                 "\"\": none.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& value = std::get<std::string>(v);
                   if (value.empty()) {
                     c.server.listen_plain_host.clear();
                     c.server.listen_plain_port = 0;
                     return;
                   }
                   parse_listen(key, value, c.server.listen_plain_host, c.server.listen_plain_port);
                 },
                 [](const Config& c) {
                   const auto& h = c.server.listen_plain_host;
                   if (h.empty()) return Value(std::string());
                   const bool v6 = h.find(':') != std::string::npos;
                   return Value((v6 ? "[" + h + "]" : h) + ":" +
                                std::to_string(c.server.listen_plain_port));
                 }});

    // [limits]
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_message_bytes>(
        "limits", "max_message_bytes", 125, 64 * kMiB,
        "Largest inbound WebSocket message; a larger one closes the connection."));
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_outbound_bytes>(
        "limits", "max_outbound_bytes", 1024, 1024 * kMiB,
        "Bytes that may wait to be sent to one connection; a client that falls further "
        "behind is closed (4008)."));
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_channel_length>(
        "limits", "max_channel_length", 1, 1024, "Longest channel name, in bytes."));
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_event_length>(
        "limits", "max_event_length", 1, 1024, "Longest event name, in bytes."));
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_channels_per_connection>(
        "limits", "max_channels_per_connection", 1, 1000000,
        "Channels one connection may be subscribed to at once."));
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_connections>(
        "limits", "max_connections", 1, 10000000,
        "Open WebSocket connections for the whole server; further ones are refused."));
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_http_body_bytes>(
        "limits", "max_http_body_bytes", 1024, 256 * kMiB,
        "Largest HTTP request body (e.g. a publish through the server API)."));
    k.push_back(size_key<&Config::limits, &LimitsConfig::max_pending_requests>(
        "limits", "max_pending_requests", 1, 1000000,
        "Requests of one connection waiting for a channel's owner; at the limit the server "
        "stops reading from that connection until replies catch up."));
    k.push_back(ms_key<&Config::limits, &LimitsConfig::handshake_timeout>(
        "limits", "handshake_timeout_ms", 10, 10 * kMinute,
        "Time a new TCP connection has to complete its WebSocket upgrade."));
    k.push_back(ms_key<&Config::limits, &LimitsConfig::ping_interval>(
        "limits", "ping_interval_ms", 10, kHour, "How often the server pings each connection."));
    k.push_back(ms_key<&Config::limits, &LimitsConfig::pong_timeout>(
        "limits", "pong_timeout_ms", 10, kHour,
        "How long a connection has to answer a ping before it is closed."));

    // [history]
    k.push_back(size_key<&Config::history, &HistoryConfig::size>(
        "history", "size", 0, 1000000,
        "Events kept per channel for history and recovery; 0 keeps none."));
    k.push_back(ms_key<&Config::history, &HistoryConfig::ttl>(
        "history", "ttl_ms", 0, 365 * kDay,
        "Events older than this are dropped from history; 0: no age limit."));
    k.push_back(size_key<&Config::history, &HistoryConfig::max_request>(
        "history", "max_request", 1, 100000,
        "Most events returned by one history or recovery request."));

    // [engine]
    k.push_back({"engine", "type", Type::string, 0, 0,
                 "Storage engine for offsets and history: sqlite (history in a database under "
                 "engine.data_dir, kept across restarts), memory (history in RAM, lost on "
                 "restart) or redis (in the Redis at engine.redis_url, shared by every node "
                 "that uses it).",
                 [](Config& c, const std::string& key, const Value& v) {
                   check_one_of(key, std::get<std::string>(v), "engine", kEngines);
                   c.engine.type = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.engine.type); }});
    k.push_back({"engine", "data_dir", Type::string, 0, 0,
                 "sqlite: directory holding the database file herald.db; created on start.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& dir = std::get<std::string>(v);
                   if (dir.empty()) throw ConfigError(key + ": must not be empty");
                   c.engine.data_dir = dir;
                 },
                 [](const Config& c) { return Value(c.engine.data_dir); }});
    k.push_back({"engine", "durability", Type::string, 0, 0,
                 "sqlite: normal (acknowledged events survive a crash of the process) or full "
                 "(they also survive a power loss; slower).",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto level = to_lower(std::get<std::string>(v));
                   check_one_of(key, level, "durability", kDurabilities);
                   c.engine.durability = level;
                 },
                 [](const Config& c) { return Value(c.engine.durability); }});
    k.push_back(size_key<&Config::engine, &EngineConfig::queue_limit>(
        "engine", "queue_limit", 1, 10000000,
        "sqlite: operations that may wait for the storage thread; beyond it they fail "
        "with `unavailable` (retry)."));
    k.push_back(size_key<&Config::engine, &EngineConfig::hot_window>(
        "engine", "hot_window", 0, 1000000,
        "sqlite: newest events of each active channel kept in RAM to answer history and "
        "recovery without the database (at most history.size are used)."));
    k.push_back(size_key<&Config::engine, &EngineConfig::channel_cache>(
        "engine", "channel_cache", 16, 100000000,
        "sqlite: channels (id, epoch, last offset) the storage thread keeps in RAM; the least "
        "recently used beyond it are read from the database again when needed."));
    k.push_back(size_key<&Config::engine, &EngineConfig::page_cache_mb>(
        "engine", "page_cache_mb", 1, 65536,
        "sqlite: MiB of database pages SQLite keeps in RAM (recent history, the rows retention "
        "is about to delete, idempotency keys)."));
    k.push_back({"engine", "redis_url", Type::string, 0, 0,
                 "redis: the Redis (7.0 or later) every node shares: "
                 "redis://[user:password@]host[:port][/db] or unix:///path[?db=N].",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& url = std::get<std::string>(v);
                   try {
                     (void)engine::redis::parse_redis_url(url);
                   } catch (const std::invalid_argument& e) {
                     // Never holds the password; names the key already.
                     const std::string why = e.what();
                     throw ConfigError(why.starts_with(key) ? why : key + ": " + why);
                   }
                   c.engine.redis_url = url;
                 },
                 [](const Config& c) { return Value(c.engine.redis_url); }});
    k.push_back({"engine", "redis_cluster", Type::boolean, 0, 0,
                 "redis: engine.redis_url is a seed node of a Redis Cluster (its db must be 0): "
                 "each channel's keys and sharded pub/sub (SPUBLISH/SSUBSCRIBE) go to the master "
                 "of its slot, found from the cluster's slot map and its MOVED/ASK redirections.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.engine.redis_cluster = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.engine.redis_cluster); }});
    k.push_back(ms_key<&Config::engine, &EngineConfig::redis_connect_timeout>(
        "engine", "redis_connect_timeout_ms", 1, 600000,
        "redis: how long a connection attempt may take."));
    k.push_back(ms_key<&Config::engine, &EngineConfig::redis_command_timeout>(
        "engine", "redis_command_timeout_ms", 1, 600000,
        "redis: a command unanswered this long breaks the connection (its calls fail with "
        "`unavailable`) and a new one is made."));
    k.push_back(ms_key<&Config::engine, &EngineConfig::redis_reconnect_max>(
        "engine", "redis_reconnect_max_ms", 100, 600000,
        "redis: longest wait between reconnection attempts (from 100 ms, doubling, jittered)."));
    k.push_back(ms_key<&Config::engine, &EngineConfig::redis_idle_ttl>(
        "engine", "redis_idle_ttl_ms", 0, 365 * kDay,
        "redis: a channel's keys expire after this long without a publish (then it starts a "
        "new epoch); 0: never."));
    k.push_back(ms_key<&Config::engine, &EngineConfig::redis_presence_ttl>(
        "engine", "redis_presence_ttl_ms", 300, 3600000,
        "redis: a node's presence members in Redis expire after this long unless the node "
        "refreshes them (every third of it), so a crashed node's members disappear."));
    k.push_back({"engine", "redis_prefix", Type::string, 0, 0,
                 "redis: first part of every key and pub/sub channel name, so that several "
                 "deployments can share one Redis.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& prefix = std::get<std::string>(v);
                   if (prefix.empty() || prefix.find_first_of("{}: \t\r\n") != std::string::npos)
                     throw ConfigError(key +
                                       ": must be non-empty, without '{', '}', ':' or spaces");
                   c.engine.redis_prefix = prefix;
                 },
                 [](const Config& c) { return Value(c.engine.redis_prefix); }});

    k.push_back(engine_string_key<&EngineConfig::redis_tls_ca_file>(
        "redis_tls_ca_file",
        "redis, rediss:// only: PEM file of the CA certificates that may sign Redis' "
        "certificate; \"\": the system's CA store."));
    k.push_back(engine_string_key<&EngineConfig::redis_tls_cert_file>(
        "redis_tls_cert_file",
        "redis, rediss:// only: PEM file of the client certificate (chain) Herald presents, "
        "for a Redis with tls-auth-clients; needs redis_tls_key_file."));
    k.push_back(engine_string_key<&EngineConfig::redis_tls_key_file>(
        "redis_tls_key_file",
        "redis, rediss:// only: PEM file of the client certificate's private key (not "
        "encrypted); needs redis_tls_cert_file."));
    k.push_back(engine_string_key<&EngineConfig::redis_tls_server_name, true>(
        "redis_tls_server_name",
        "redis, rediss:// only: the name Redis' certificate must carry, also sent as SNI; "
        "\"\": the host of engine.redis_url."));

    // [auth] (the keys themselves are [[auth.keys]] tables: parse_auth_keys)
    k.push_back({"auth", "jwks_url", Type::string, 0, 0,
                 "URL of a JWK Set (https://, or http:// for loopback) whose keys verify tokens; "
                 "fetched at start, refreshed every jwks_refresh_ms and on an unknown kid.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& url = std::get<std::string>(v);
                   if (!url.empty() && !url.starts_with("https://") && !url.starts_with("http://"))
                     throw ConfigError(key + ": must start with https:// or http:// (got '" + url +
                                       "')");
                   c.auth.jwks_url = url;
                 },
                 [](const Config& c) { return Value(c.auth.jwks_url); }});
    k.push_back({"auth", "jwks_file", Type::string, 0, 0,
                 "File holding a JWK Set whose keys verify tokens; read at start and on reload.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.auth.jwks_file = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.auth.jwks_file); }});
    k.push_back({"auth", "jwks_ca_file", Type::string, 0, 0,
                 "PEM file of the CA certificates that may sign the JWKS server's certificate; "
                 "\"\": the system's CA store.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.auth.jwks_ca_file = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.auth.jwks_ca_file); }});
    k.push_back({"auth", "jwks_algorithms", Type::string_list, 0, 0,
                 "Algorithms allowed for keys from the JWKS (a key's own alg must be one of "
                 "them); HMAC algorithms are not allowed here.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& list = std::get<std::vector<std::string>>(v);
                   if (list.empty()) throw ConfigError(key + ": must not be empty");
                   for (const auto& alg : list) {
                     check_one_of(key, alg, "algorithm", kJwtAlgorithms);
                     if (alg.starts_with("HS"))
                       throw ConfigError(key + ": " + alg +
                                         " needs a shared secret; a JWKS holds public keys");
                   }
                   c.auth.jwks_algorithms = list;
                 },
                 [](const Config& c) { return Value(c.auth.jwks_algorithms); }});
    k.push_back(ms_key<&Config::auth, &AuthConfig::jwks_refresh>(
        "auth", "jwks_refresh_ms", 1000, kDay, "How often the JWKS URL is fetched again."));
    k.push_back(ms_key<&Config::auth, &AuthConfig::jwks_min_refetch>(
        "auth", "jwks_min_refetch_ms", 0, kHour,
        "Least time between two fetches caused by tokens with an unknown kid."));
    k.push_back(ms_key<&Config::auth, &AuthConfig::jwks_timeout>(
        "auth", "jwks_timeout_ms", 100, kMinute, "Deadline of one JWKS fetch."));
    k.push_back({"auth", "issuer", Type::string, 0, 0, "When set, tokens must carry this `iss`.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.auth.issuer = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.auth.issuer); }});
    k.push_back({"auth", "audience", Type::string, 0, 0,
                 "When set, tokens' `aud` (a string or an array) must hold this value.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.auth.audience = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.auth.audience); }});
    k.push_back(ms_key<&Config::auth, &AuthConfig::leeway>(
        "auth", "leeway_ms", 0, 5 * kMinute,
        "Clock skew allowed when checking a token's exp and nbf (whole seconds are used)."));
    k.push_back(size_key<&Config::auth, &AuthConfig::max_token_bytes>(
        "auth", "max_token_bytes", 256, 64 * 1024,
        "Longest token accepted; longer ones are refused unread."));
    k.push_back({"auth", "query_token", Type::boolean, 0, 0,
                 "Whether a connection token may be given as ?token= on the WebSocket URL "
                 "(it can then end up in proxy logs).",
                 [](Config& c, const std::string&, const Value& v) {
                   c.auth.query_token = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.auth.query_token); }});
    k.push_back({"auth", "token_cookie", Type::string, 0, 0,
                 "Name of the cookie an SSE request (GET server.sse_path) may carry its "
                 "connection token in; \"\" for none.",
                 [](Config& c, const std::string& key, const Value& v) {
                   const auto& name = std::get<std::string>(v);
                   if (name.find_first_of(" \t;=,\"") != std::string::npos)
                     throw ConfigError(key + ": not a cookie name (got '" + name + "')");
                   c.auth.token_cookie = name;
                 },
                 [](const Config& c) { return Value(c.auth.token_cookie); }});
    k.push_back(size_key<&Config::auth, &AuthConfig::token_cache>(
        "auth", "token_cache", 0, 10000000,
        "Verified tokens each worker remembers (by SHA-256) until they expire, so a token "
        "used again is not verified again; 0 turns the cache off."));

    // [rate_limits]
    const auto rate = [](std::string_view name, size_t RateLimitsConfig::*field, int64_t max,
                         std::string_view help, int64_t min = 0) {
      return KeyDef{
          "rate_limits",
          name,
          Type::integer,
          min,
          max,
          help,
          [field](Config& c, const std::string&, const Value& v) {
            c.rate_limits.*field = static_cast<size_t>(std::get<int64_t>(v));
          },
          [field](const Config& c) { return Value(static_cast<int64_t>(c.rate_limits.*field)); }};
    };
    using R = RateLimitsConfig;
    k.push_back(rate("commands_per_second", &R::commands_per_second, 1000000,
                     "Commands one connection may send per second; 0: no limit."));
    k.push_back(rate("commands_burst", &R::commands_burst, 10000000,
                     "Commands one connection may send at once above that rate; 0: the rate."));
    k.push_back(rate("publishes_per_second", &R::publishes_per_second, 1000000,
                     "Publishes one connection may send per second; 0: no limit."));
    k.push_back(rate("publishes_burst", &R::publishes_burst, 10000000,
                     "Publishes one connection may send at once; 0: the rate."));
    k.push_back(rate("user_publishes_per_second", &R::user_publishes_per_second, 1000000,
                     "Publishes per second of one user over all their connections; 0: no "
                     "limit."));
    k.push_back(rate("user_publishes_burst", &R::user_publishes_burst, 10000000,
                     "Publishes one user may send at once; 0: the rate."));
    k.push_back(rate("violations_before_close", &R::violations_before_close, 1000000,
                     "Rate-limited commands in a row after which the connection is closed "
                     "(4029); 0: never closed."));
    k.push_back(rate("connections_per_ip", &R::connections_per_ip, 10000000,
                     "Open WebSocket connections from one IP address; 0: no limit."));
    k.push_back(rate("connections_per_user", &R::connections_per_user, 10000000,
                     "Open WebSocket connections of one user; 0: no limit."));
    k.push_back(rate("new_connections_per_ip_per_second", &R::new_connections_per_ip_per_second,
                     1000000, "New WebSocket connections per second from one IP; 0: no limit."));
    k.push_back(rate("auth_failures_per_ip_per_minute", &R::auth_failures_per_ip_per_minute,
                     1000000,
                     "Refused tokens per minute from one IP, after which its connections are "
                     "refused (rate_limited, 4029) until the minute passes; 0: no limit."));
    k.push_back(rate("max_tracked_keys", &R::max_tracked_keys, 100000000,
                     "IP addresses and users the limits above track at once (oldest forgotten "
                     "first).",
                     1));

    // [api] (the keys themselves are [[api.keys]] tables: parse_api_keys)
    k.push_back({"api", "protect_metrics", Type::boolean, 0, 0,
                 "Whether GET /metrics needs an API key (any scope) when keys are configured.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.api.protect_metrics = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.api.protect_metrics); }});

    // [proxy]: the app backend's hooks (docs/backend-hooks.md)
    k.push_back(proxy_url<&ProxyConfig::connect_url>(
        "connect_url",
        "connect hook: Herald POSTs each connect (the upgrade's allow-listed headers and "
        "cookies, connect.data) here; the reply says who the user is. \"\": no hook."));
    k.push_back(proxy_url<&ProxyConfig::subscribe_url>(
        "subscribe_url",
        "subscribe hook, for namespaces with proxy_subscribe = true: allow, deny, or add data. "
        "\"\": no hook."));
    k.push_back(proxy_url<&ProxyConfig::publish_url>(
        "publish_url",
        "publish hook, for namespaces with proxy_publish = true: allow, deny, or replace the "
        "data. \"\": no hook."));
    k.push_back(proxy_url<&ProxyConfig::rpc_url>(
        "rpc_url", "rpc hook: every client `rpc` command is POSTed here. \"\": rpc is refused."));
    k.push_back(proxy_url<&ProxyConfig::refresh_url>(
        "refresh_url",
        "refresh hook: asked shortly before the expire_at the connect hook gave, for a new "
        "one (or the end of the connection). \"\": no hook (the connection ends then)."));
    k.push_back({"proxy", "rpc_routes", Type::string_list, 0, 0,
                 "\"<method prefix>=<url>\" entries: rpc methods starting with the prefix go to "
                 "that URL (the longest prefix wins), the others to rpc_url.",
                 [](Config& c, const std::string& key, const Value& v) {
                   for (const auto& r : std::get<std::vector<std::string>>(v)) {
                     std::string why;
                     if (!proxy::parse_rpc_route(r, &why))
                       throw ConfigError(key + ": '" + r + "': " + why);
                   }
                   c.proxy.rpc_routes = std::get<std::vector<std::string>>(v);
                 },
                 [](const Config& c) { return Value(c.proxy.rpc_routes); }});
    k.push_back({"proxy", "rpc_schema", Type::string, 0, 0,
                 "JSON file {\"<method>\": {\"request\": <JSON Schema>, \"response\": <JSON "
                 "Schema>}} Herald checks rpc data against (relative to the working "
                 "directory); \"\": none.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.proxy.rpc_schema = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.proxy.rpc_schema); }});
    k.push_back({"proxy", "ca_file", Type::string, 0, 0,
                 "https hooks: PEM file of the CA certificates that may sign the backend's "
                 "certificate; \"\": the system's CA store.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.proxy.ca_file = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.proxy.ca_file); }});
    k.push_back(ms_key<&Config::proxy, &ProxyConfig::timeout>(
        "proxy", "timeout_ms", 10, 10 * kMinute,
        "Deadline of one hook request (connecting included); past it the client gets "
        "`unavailable`."));
    k.push_back(size_key<&Config::proxy, &ProxyConfig::max_concurrent>(
        "proxy", "max_concurrent", 1, 100000,
        "Requests in flight per hook per worker; one more gets `unavailable` at once (no "
        "queue)."));
    k.push_back(ms_key<&Config::proxy, &ProxyConfig::connect_timeout>(
        "proxy", "connect_timeout_ms", 0, 10 * kMinute,
        "The connect hook's own timeout_ms; 0: proxy.timeout_ms."));
    k.push_back(size_key<&Config::proxy, &ProxyConfig::connect_max_concurrent>(
        "proxy", "connect_max_concurrent", 0, 100000,
        "The connect hook's own max_concurrent (each rpc route's too, for rpc); 0: "
        "proxy.max_concurrent."));
    k.push_back(ms_key<&Config::proxy, &ProxyConfig::subscribe_timeout>(
        "proxy", "subscribe_timeout_ms", 0, 10 * kMinute,
        "The subscribe hook's own timeout_ms; 0: proxy.timeout_ms."));
    k.push_back(size_key<&Config::proxy, &ProxyConfig::subscribe_max_concurrent>(
        "proxy", "subscribe_max_concurrent", 0, 100000,
        "The subscribe hook's own max_concurrent (each rpc route's too, for rpc); 0: "
        "proxy.max_concurrent."));
    k.push_back(ms_key<&Config::proxy, &ProxyConfig::publish_timeout>(
        "proxy", "publish_timeout_ms", 0, 10 * kMinute,
        "The publish hook's own timeout_ms; 0: proxy.timeout_ms."));
    k.push_back(size_key<&Config::proxy, &ProxyConfig::publish_max_concurrent>(
        "proxy", "publish_max_concurrent", 0, 100000,
        "The publish hook's own max_concurrent (each rpc route's too, for rpc); 0: "
        "proxy.max_concurrent."));
    k.push_back(ms_key<&Config::proxy, &ProxyConfig::rpc_timeout>(
        "proxy", "rpc_timeout_ms", 0, 10 * kMinute,
        "The rpc hook's own timeout_ms; 0: proxy.timeout_ms."));
    k.push_back(size_key<&Config::proxy, &ProxyConfig::rpc_max_concurrent>(
        "proxy", "rpc_max_concurrent", 0, 100000,
        "The rpc hook's own max_concurrent (each rpc route's too, for rpc); 0: "
        "proxy.max_concurrent."));
    k.push_back(ms_key<&Config::proxy, &ProxyConfig::refresh_timeout>(
        "proxy", "refresh_timeout_ms", 0, 10 * kMinute,
        "The refresh hook's own timeout_ms; 0: proxy.timeout_ms."));
    k.push_back(size_key<&Config::proxy, &ProxyConfig::refresh_max_concurrent>(
        "proxy", "refresh_max_concurrent", 0, 100000,
        "The refresh hook's own max_concurrent (each rpc route's too, for rpc); 0: "
        "proxy.max_concurrent."));
    k.push_back({"proxy", "forward_headers", Type::string_list, 0, 0,
                 "Headers of the WebSocket upgrade request passed to the connect hook "
                 "(allow-list, any case), e.g. [\"authorization\", \"user-agent\"].",
                 [](Config& c, const std::string& key, const Value& v) {
                   std::vector<std::string> names;
                   for (const auto& n : std::get<std::vector<std::string>>(v)) {
                     if (n.empty() || has_space_or_control(n) || n.find(':') != std::string::npos)
                       throw ConfigError(key + ": '" + n + "' is not a header name");
                     names.push_back(to_lower(n));
                   }
                   c.proxy.forward_headers = std::move(names);
                 },
                 [](const Config& c) { return Value(c.proxy.forward_headers); }});
    k.push_back({"proxy", "forward_cookies", Type::string_list, 0, 0,
                 "Cookies of the upgrade request passed to the connect hook (allow-list, exact "
                 "names), e.g. [\"session\"]; the others never leave Herald.",
                 [](Config& c, const std::string& key, const Value& v) {
                   for (const auto& n : std::get<std::vector<std::string>>(v))
                     if (n.empty() || has_space_or_control(n) ||
                         n.find_first_of("=;,") != std::string::npos)
                       throw ConfigError(key + ": '" + n + "' is not a cookie name");
                   c.proxy.forward_cookies = std::get<std::vector<std::string>>(v);
                 },
                 [](const Config& c) { return Value(c.proxy.forward_cookies); }});
    k.push_back({"proxy", "static_headers", Type::string_list, 0, 0,
                 "\"Name: value\" headers sent with every hook request, e.g. a shared secret "
                 "the backend checks; never logged.",
                 [](Config& c, const std::string& key, const Value& v) {
                   for (const auto& h : std::get<std::vector<std::string>>(v))
                     if (!proxy::parse_static_header(h))
                       throw ConfigError(key + ": an entry is not a \"Name: value\" header");
                   c.proxy.static_headers = std::get<std::vector<std::string>>(v);
                 },
                 [](const Config& c) { return Value(c.proxy.static_headers); }});
    k.push_back({"proxy", "connect_with_token", Type::boolean, 0, 0,
                 "Whether a connect carrying a token also goes to the connect hook (which then "
                 "decides); false: a token skips the hook.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.proxy.connect_with_token = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.proxy.connect_with_token); }});
    return k;
  }();
  return table;
}

const KeyDef* find_key(std::string_view section, std::string_view name) {
  for (const auto& k : keys())
    if (k.section == section && k.name == name) return &k;
  return nullptr;
}

std::string env_name(const KeyDef& k) {
  return "HERALD_" + to_upper(k.section) + "_" + to_upper(k.name);
}

void check_range(const std::string& key, int64_t min, int64_t max, const Value& v) {
  if (const auto* i = std::get_if<int64_t>(&v); i && (*i < min || *i > max))
    throw ConfigError(key + ": must be between " + std::to_string(min) + " and " +
                      std::to_string(max) + " (got " + std::to_string(*i) + ")");
}

// Runs `store`, appending `where` to the message of a ConfigError it throws.
void located(const std::string& where, const std::function<void()>& store) {
  try {
    store();
  } catch (const ConfigError& e) {
    if (where.empty()) throw;
    throw ConfigError(std::string(e.what()) + " " + where);
  }
}

// Stores `v` into `cfg` after checking its range; errors get `where` appended.
void apply(Config& cfg, const KeyDef& k, const Value& v, const std::string& where) {
  const std::string key = k.full_name();
  located(where, [&] {
    check_range(key, k.min, k.max, v);
    k.set(cfg, key, v);
  });
}

// --- namespace options ---------------------------------------------------------

// Where a namespace option may be written. The default retention has one
// home, history.size and history.ttl_ms (the keys of Herald 0.1), so
// [defaults] does not take history_size and history_ttl_ms.
enum class Scope { anywhere, namespaces_only };

struct NamespaceKeyDef {
  std::string_view name;
  Type type;
  int64_t min = 0;
  int64_t max = 0;
  Scope scope = Scope::anywhere;
  std::string_view help;
  // `base_dir`: the config file's directory, which relative paths start from.
  std::function<void(NamespaceOptions&, const std::string& key, const Value&,
                     const std::filesystem::path& base_dir)>
      set;
  std::function<Value(const NamespaceOptions&)> get;
  // Whether the option holds a value to write out (to_toml); null: always.
  // An alias (client_publish) never does: its target key is written instead.
  std::function<bool(const NamespaceOptions&)> is_set = nullptr;
};

// An access option ("public", "authenticated", "capability", and for
// publish_access also "none").
template <auto Field>
NamespaceKeyDef ns_access(std::string_view name, std::string_view help) {
  return {name,
          Type::string,
          0,
          0,
          Scope::anywhere,
          help,
          [](NamespaceOptions& o, const std::string& key, const Value& v,
             const std::filesystem::path&) {
            const auto& level = std::get<std::string>(v);
            if (Field == &NamespaceOptions::publish_access ||
                Field == &NamespaceOptions::destroy_access)
              check_one_of(key, level, "access level", kPublishAccessLevels);
            else
              check_one_of(key, level, "access level", kAccessLevels);
            o.*Field = level;
          },
          [](const NamespaceOptions& o) { return Value(o.*Field); }};
}

template <auto Field>
NamespaceKeyDef ns_size(std::string_view name, int64_t max, std::string_view help) {
  return {
      name,
      Type::integer,
      0,
      max,
      Scope::anywhere,
      help,
      [](NamespaceOptions& o, const std::string&, const Value& v, const std::filesystem::path&) {
        o.*Field = static_cast<size_t>(std::get<int64_t>(v));
      },
      [](const NamespaceOptions& o) { return Value(static_cast<int64_t>(o.*Field)); }};
}

template <auto Field>
NamespaceKeyDef ns_bool(std::string_view name, std::string_view help) {
  return {name,
          Type::boolean,
          0,
          0,
          Scope::anywhere,
          help,
          [](NamespaceOptions& o, const std::string&, const Value& v,
             const std::filesystem::path&) { o.*Field = std::get<bool>(v); },
          [](const NamespaceOptions& o) { return Value(o.*Field); }};
}

// Why `name` is not a valid event name (docs/protocol.md, "Names"), or "".
std::string event_name_problem(std::string_view name) {
  if (name.size() > 128) return "an event name has at most 128 bytes";
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
        c != ':')
      return "an event name may hold only letters, digits and _-.:";
  }
  return {};
}

// A duration in milliseconds ("<name>_ms"), from `min` to `max`.
template <auto Field>
NamespaceKeyDef ns_duration(std::string_view name, int64_t min, int64_t max, Scope scope,
                            std::string_view help) {
  return {
      name,
      Type::duration_ms,
      min,
      max,
      scope,
      help,
      [](NamespaceOptions& o, const std::string&, const Value& v, const std::filesystem::path&) {
        o.*Field = std::chrono::milliseconds(std::get<int64_t>(v));
      },
      [](const NamespaceOptions& o) { return Value(static_cast<int64_t>((o.*Field).count())); }};
}

constexpr std::string_view kAllowUnknown = "allow_unknown";
constexpr std::string_view kAllowUnknownHelp =
    "[defaults] only: whether channels of a namespace that has no [namespaces.<name>] table "
    "(or with no ':' in their name) are allowed, with the [defaults] options; false: they get "
    "unknown_channel.";

const std::vector<NamespaceKeyDef>& namespace_keys() {
  static const std::vector<NamespaceKeyDef> table = [] {
    std::vector<NamespaceKeyDef> k;
    k.push_back(
        {"history_size", Type::integer, 0, 1000000, Scope::namespaces_only,
         "Events kept per channel of the namespace; default: history.size.",
         [](NamespaceOptions& o, const std::string&, const Value& v, const std::filesystem::path&) {
           o.history_size = static_cast<size_t>(std::get<int64_t>(v));
         },
         [](const NamespaceOptions& o) { return Value(static_cast<int64_t>(o.history_size)); }});
    k.push_back(ns_duration<&NamespaceOptions::history_ttl>(
        "history_ttl_ms", 0, 365 * kDay, Scope::namespaces_only,
        "Age after which the namespace's events leave history (0: no limit); default: "
        "history.ttl_ms."));
    k.push_back(ns_bool<&NamespaceOptions::recover>(
        "recover",
        "Whether subscribers may recover missed events; false answers recovery with "
        "recovered:false."));
    k.push_back(ns_access<&NamespaceOptions::subscribe_access>(
        "subscribe_access",
        "Who may subscribe: public (any connection the namespace admits), authenticated (a "
        "verified user) or capability (a token's caps, a subscription token or a user channel "
        "must grant it)."));
    k.push_back(ns_access<&NamespaceOptions::publish_access>(
        "publish_access",
        "Who may publish over WebSocket: public, authenticated, capability, or none (only the "
        "HTTP API; clients get forbidden)."));
    k.push_back(ns_access<&NamespaceOptions::history_access>(
        "history_access", "Who may read history: public, authenticated or capability."));
    k.push_back(ns_access<&NamespaceOptions::presence_access>(
        "presence_access", "Who may ask for presence: public, authenticated or capability."));
    k.push_back(
        {"client_publish", Type::boolean, 0, 0, Scope::anywhere,
         "Alias of publish_access (Herald 0.1): true is \"public\", false is \"none\".",
         [](NamespaceOptions& o, const std::string&, const Value& v, const std::filesystem::path&) {
           o.publish_access = std::get<bool>(v) ? "public" : "none";
         },
         [](const NamespaceOptions& o) { return Value(o.publish_access != "none"); },
         [](const NamespaceOptions&) { return false; }});
    k.push_back({"anonymous", Type::boolean, 0, 0, Scope::anywhere,
                 "Whether connections without a verified user may use the namespace; default: "
                 "true when no [[auth.keys]] or JWKS is configured, else false.",
                 [](NamespaceOptions& o, const std::string&, const Value& v,
                    const std::filesystem::path&) { o.anonymous = std::get<bool>(v); },
                 [](const NamespaceOptions& o) { return Value(o.anonymous.value_or(false)); },
                 [](const NamespaceOptions& o) { return o.anonymous.has_value(); }});
    k.push_back(ns_bool<&NamespaceOptions::user_channels>(
        "user_channels",
        "Whether a channel named <ns>:<name>#user1,user2 may be used only by the users it "
        "lists (no token needed)."));
    k.push_back(ns_size<&NamespaceOptions::publishes_per_second>(
        "publishes_per_second", 1000000,
        "Publishes per second one connection may make on the namespace's channels; 0: only "
        "[rate_limits] applies."));
    k.push_back(ns_size<&NamespaceOptions::publishes_burst>(
        "publishes_burst", 10000000, "Publishes one connection may make at once; 0: the rate."));
    k.push_back(ns_bool<&NamespaceOptions::presence>(
        "presence",
        "Whether presence and presence_stats (WebSocket and HTTP) list who is subscribed."));
    k.push_back(ns_bool<&NamespaceOptions::join_leave>(
        "join_leave", "Whether subscribers get join and leave messages."));
    k.push_back(ns_size<&NamespaceOptions::presence_max_members>(
        "presence_max_members", 1000000,
        "Members a channel's presence lists; a channel with more keeps counts only (no "
        "member list, no users count, no join/leave) until it is empty again."));
    k.push_back(ns_size<&NamespaceOptions::max_users>(
        "max_users", 1000000,
        "Distinct users a channel admits (another tab of a present user always is); 0: "
        "unlimited. Others get channel_full."));
    k.push_back(ns_duration<&NamespaceOptions::channel_ttl>(
        "channel_ttl_ms", 0, 365 * kDay, Scope::anywhere,
        "A channel is destroyed (reason expired) this long after its first stored event; 0: "
        "never."));
    k.push_back({"expire_event", Type::string, 0, 0, Scope::anywhere,
                 "Name of the final event subscribers get when a channel expires; \"\": none.",
                 [](NamespaceOptions& o, const std::string& key, const Value& v,
                    const std::filesystem::path&) {
                   const auto& name = std::get<std::string>(v);
                   if (!name.empty()) {
                     if (auto why = event_name_problem(name); !why.empty())
                       throw ConfigError(key + ": " + why);
                   }
                   o.expire_event = name;
                 },
                 [](const NamespaceOptions& o) { return Value(o.expire_event); }});
    k.push_back({"expire_data", Type::string, 0, 0, Scope::anywhere,
                 "The expire_event's data, as JSON text (e.g. '{\"reason\":\"expired\"}').",
                 [](NamespaceOptions& o, const std::string& key, const Value& v,
                    const std::filesystem::path&) {
                   const auto& text = std::get<std::string>(v);
                   boost::system::error_code ec;
                   boost::json::parse(text, ec);
                   if (ec) throw ConfigError(key + ": not valid JSON (" + ec.message() + ")");
                   o.expire_data = text;
                 },
                 [](const NamespaceOptions& o) { return Value(o.expire_data); }});
    k.push_back(ns_duration<&NamespaceOptions::idempotency_window>(
        "idempotency_window_ms", 1000, kDay, Scope::anywhere,
        "How long a publish's idempotency_key is remembered: a retry within it gets the "
        "original ack instead of a second event."));
    k.push_back(ns_size<&NamespaceOptions::idempotency_max_keys>(
        "idempotency_max_keys", 1000000,
        "Idempotency keys are remembered for the channel's last this many events at most "
        "(older ones are forgotten first)."));
    k.push_back(ns_access<&NamespaceOptions::destroy_access>(
        "destroy_access",
        "Who may destroy a channel over WebSocket (destroy): none (only the HTTP API), "
        "public, authenticated or capability (caps must grant destroy)."));
    k.push_back(
        {"max_message_bytes", Type::integer, 2, 64 * kMiB, Scope::anywhere,
         "Largest `data` of one publish, in bytes; larger publishes get too_large.",
         [](NamespaceOptions& o, const std::string&, const Value& v, const std::filesystem::path&) {
           o.max_message_bytes = static_cast<size_t>(std::get<int64_t>(v));
         },
         [](const NamespaceOptions& o) {
           return Value(static_cast<int64_t>(o.max_message_bytes));
         }});
    k.push_back({"schema", Type::string, 0, 0, Scope::anywhere,
                 "JSON file mapping event names to JSON Schemas (draft 7) that published data "
                 "must match; relative to the config file's directory; \"\": none.",
                 [](NamespaceOptions& o, const std::string&, const Value& v,
                    const std::filesystem::path& base_dir) {
                   const auto& file = std::get<std::string>(v);
                   o.schema =
                       file.empty()
                           ? std::string()
                           : std::filesystem::absolute(base_dir / file).lexically_normal().string();
                 },
                 [](const NamespaceOptions& o) { return Value(o.schema); }});
    k.push_back(ns_bool<&NamespaceOptions::strict_events>(
        "strict_events",
        "Whether events the schema does not declare are rejected (validation_failed) "
        "instead of passed unvalidated."));
    k.push_back(ns_bool<&NamespaceOptions::proxy_subscribe>(
        "proxy_subscribe",
        "Whether subscribes to the namespace's channels ask the subscribe hook "
        "(proxy.subscribe_url) first."));
    k.push_back(ns_bool<&NamespaceOptions::proxy_publish>(
        "proxy_publish",
        "Whether publishes over WebSocket to the namespace's channels ask the publish hook "
        "(proxy.publish_url) first; the ack waits for it."));
    return k;
  }();
  return table;
}

const NamespaceKeyDef* find_namespace_key(std::string_view name) {
  for (const auto& k : namespace_keys())
    if (k.name == name) return &k;
  return nullptr;
}

// Why a namespace name cannot be used, or "" when it can.
std::string bad_namespace_name(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.find(':') != std::string_view::npos) return "must not contain ':'";
  if (has_space_or_control(name)) return "must not contain spaces or control characters";
  return {};
}

// TOML key syntax for `name`: bare when it may be, else quoted.
std::string toml_key(std::string_view name) {
  const bool bare = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  return bare ? std::string(name) : quote(name);
}

// --- "did you mean" ----------------------------------------------------------

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The candidate closest to `name`, if it is close enough to be a typo.
std::string closest(std::string_view name, const std::vector<std::string>& candidates) {
  const std::string lower = to_lower(name);
  std::string best;
  size_t best_distance = std::max<size_t>(2, lower.size() / 3) + 1;
  for (const auto& c : candidates) {
    if (c == lower + "_ms") return c;  // a duration written without its unit
    const size_t d = edit_distance(lower, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

// The key of `section` that `name` most likely meant to spell, or "".
std::string closest_key(std::string_view section, std::string_view name) {
  std::vector<std::string> names;
  for (const auto& k : keys())
    if (k.section == section) names.emplace_back(k.name);
  return closest(name, names);
}

std::string did_you_mean(std::string_view section, std::string_view name) {
  const std::string guess = closest_key(section, name);
  if (guess.empty()) return {};
  std::string hint = " (did you mean " + std::string(section) + "." + guess + "?";
  if (guess == to_lower(name) + "_ms") hint += " durations are given in milliseconds";
  return hint + ")";
}

// --- TOML file ----------------------------------------------------------------

// [namespaces.<name>] tables of the file, resolved once the other layers
// have set the [defaults] they inherit from.
struct FileNamespaces {
  std::string file;
  std::filesystem::path base_dir;
  // The parsed file, kept for the source lines of the tables' keys (copies
  // of toml++ nodes lose them).
  std::unique_ptr<toml::table> doc;
  std::vector<std::pair<std::string, const toml::table*>> tables;
};

const toml::table& expect_table(const std::string& name, const toml::node& node,
                                const std::string& file) {
  const auto* table = node.as_table();
  if (!table)
    throw ConfigError(name + ": expected a table, i.e. [" + name + "] (got " +
                      toml_type_name(node.type()) + ") " + location(file, node.source()));
  return *table;
}

std::string did_you_mean_option(const std::string& section, std::string_view name) {
  std::vector<std::string> names{std::string(kAllowUnknown)};
  for (const auto& k : namespace_keys()) names.emplace_back(k.name);
  const std::string guess = closest(name, names);
  return guess.empty() ? std::string() : " (did you mean " + section + "." + guess + "?)";
}

// Stores the keys of [defaults] (when `defaults` is set) or of one
// [namespaces.<name>] table (`section` is its dotted name) into `options`.
void apply_namespace_table(const std::string& section, const toml::table& table,
                           const std::string& file, const std::filesystem::path& base_dir,
                           NamespaceOptions& options, DefaultsConfig* defaults) {
  for (const auto& [name_key, node] : table) {
    const std::string name(name_key.str());
    const std::string key = section + "." + name;
    const std::string where = location(file, node.source());
    if (name == kAllowUnknown) {
      if (!defaults)
        throw ConfigError(key + ": allow_unknown belongs in [defaults] " +
                          location(file, name_key.source()));
      const Value v = from_toml(key, Type::boolean, node, file);
      defaults->allow_unknown = std::get<bool>(v);
      continue;
    }
    const NamespaceKeyDef* k = find_namespace_key(name);
    if (!k)
      throw ConfigError(key + ": unknown key" + did_you_mean_option(section, name) + " " +
                        location(file, name_key.source()));
    if (defaults && k->scope == Scope::namespaces_only)
      throw ConfigError(key + ": the default is set by history." +
                        (name == "history_size" ? std::string("size") : std::string("ttl_ms")) +
                        " under [history] " + location(file, name_key.source()));
    const Value v = from_toml(key, k->type, node, file);
    located(where, [&] {
      check_range(key, k->min, k->max, v);
      k->set(options, key, v, base_dir);
    });
  }
}

FileNamespaces apply_file(Config& cfg, const std::string& path) {
  const std::string prefix = "config file " + path + ": ";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(prefix + "cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(prefix + "cannot read (" + std::strerror(errno) + ")");

  FileNamespaces pending{
      path, std::filesystem::path(path).parent_path(), std::make_unique<toml::table>(), {}};
  toml::table& doc = *pending.doc;
  try {
    doc = toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(prefix + "parse error at line " + std::to_string(e.source().begin.line) +
                      ", column " + std::to_string(e.source().begin.column) + ": " +
                      std::string(e.description()));
  }

  std::vector<std::string> sections(std::begin(kSections), std::end(kSections));
  sections.emplace_back("defaults");
  sections.emplace_back("namespaces");
  for (const auto& [section_key, section_node] : doc) {
    const std::string section(section_key.str());
    if (section == "defaults") {
      apply_namespace_table(section, expect_table(section, section_node, path), path,
                            pending.base_dir, cfg.defaults.options, &cfg.defaults);
      continue;
    }
    if (section == "namespaces") {
      for (const auto& [ns_key, ns_node] : expect_table(section, section_node, path)) {
        const std::string name(ns_key.str());
        const std::string dotted = "namespaces." + toml_key(name);
        if (const auto why = bad_namespace_name(name); !why.empty())
          throw ConfigError(dotted + ": namespace name " + why + " " +
                            location(path, ns_key.source()));
        pending.tables.emplace_back(name, &expect_table(dotted, ns_node, path));
      }
      continue;
    }
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      // A key written above the first [section] header is a common slip.
      for (const auto& k : keys())
        if (k.name == section)
          throw ConfigError(section + ": unknown key; keys belong in a section (did you mean " +
                            k.full_name() + " under [" + std::string(k.section) + "]?) " +
                            location(path, section_key.source()));
      const std::string guess = closest(section, sections);
      throw ConfigError(section + ": unknown section" +
                        (guess.empty() ? "" : " (did you mean [" + guess + "]?)") +
                        " (expected one of " + join(sections, ", ") + ") " +
                        location(path, section_key.source()));
    }
    for (const auto& [name_key, node] : expect_table(section, section_node, path)) {
      const std::string name(name_key.str());
      if (name == "keys" && (section == "auth" || section == "api")) {
        if (section == "auth")
          cfg.auth.keys = parse_auth_keys(node, path, pending.base_dir);
        else
          cfg.api.keys = parse_api_keys(node, path, pending.base_dir);
        continue;
      }
      const KeyDef* k = find_key(section, name);
      if (!k)
        throw ConfigError(section + "." + name + ": unknown key" + did_you_mean(section, name) +
                          " " + location(path, name_key.source()));
      apply(cfg, *k, from_toml(k->full_name(), k->type, node, path), location(path, node.source()));
    }
  }
  return pending;
}

// Fills in what [defaults] and the namespaces inherit, once every layer is
// applied: the default retention from [history], and every key a namespace
// table leaves out from [defaults].
void resolve_namespaces(Config& cfg, const FileNamespaces& file) {
  cfg.defaults.options.history_size = cfg.history.size;
  cfg.defaults.options.history_ttl = cfg.history.ttl;
  cfg.namespaces.clear();
  for (const auto& [name, table] : file.tables) {
    NamespaceOptions options = cfg.defaults.options;
    apply_namespace_table("namespaces." + toml_key(name), *table, file.file, file.base_dir, options,
                          nullptr);
    cfg.namespaces.emplace(name, std::move(options));
  }
  // Capacity counts distinct users, which a channel over its member limit
  // no longer knows.
  auto check_capacity = [](const std::string& where, const NamespaceOptions& o) {
    if (o.max_users > o.presence_max_members)
      throw ConfigError(where + ".max_users: must not exceed presence_max_members (" +
                        std::to_string(o.max_users) + " > " +
                        std::to_string(o.presence_max_members) + ")");
  };
  check_capacity("defaults", cfg.defaults.options);
  for (const auto& [name, options] : cfg.namespaces)
    check_capacity("namespaces." + toml_key(name), options);
  // A namespace that asks for a hook needs its URL.
  auto check_hooks = [&](const std::string& where, const NamespaceOptions& o) {
    if (o.proxy_subscribe && cfg.proxy.subscribe_url.empty())
      throw ConfigError(where + ".proxy_subscribe: needs proxy.subscribe_url");
    if (o.proxy_publish && cfg.proxy.publish_url.empty())
      throw ConfigError(where + ".proxy_publish: needs proxy.publish_url");
  };
  check_hooks("defaults", cfg.defaults.options);
  for (const auto& [name, options] : cfg.namespaces)
    check_hooks("namespaces." + toml_key(name), options);
}

// --- environment --------------------------------------------------------------

Value from_env(const KeyDef& k, const std::string& var, const std::string& text) {
  switch (k.type) {
    case Type::integer:
    case Type::duration_ms: {
      const std::string_view t = trim(text);
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size())
        throw ConfigError(var + ": expected " + type_name(k.type) + " for " + k.full_name() +
                          " (got '" + text + "')");
      return n;
    }
    case Type::string:
      return text;
    case Type::boolean: {
      const std::string t = to_lower(trim(text));
      if (t != "true" && t != "false")
        throw ConfigError(var + ": expected true or false for " + k.full_name() + " (got '" + text +
                          "')");
      return t == "true";
    }
    case Type::string_list: {
      std::vector<std::string> list;
      std::string_view rest = text;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const auto item = trim(rest.substr(0, comma));
        if (!item.empty()) list.emplace_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      return list;
    }
  }
  return {};
}

void apply_env(Config& cfg, const std::map<std::string, std::string>& env) {
  // Variables the file names as holding a secret (key_env, secret_env) are
  // not settings, whatever their name (HERALD_API_KEY is the usual one).
  // HERALD_API_KEY is also the clients' variable (`herald pub`,
  // @herald/server), often exported in the same shell: never a setting.
  std::vector<std::string_view> secrets{"HERALD_API_KEY"};
  for (const auto& k : cfg.api.keys) secrets.push_back(k.key_env);
  for (const auto& k : cfg.auth.keys) secrets.push_back(k.secret_env);
  // Catch misspelt variables in the namespaces that map onto keys.
  for (const auto& [var, value] : env) {
    if (std::find(secrets.begin(), secrets.end(), var) != secrets.end()) continue;
    if (var.starts_with("HERALD_DEFAULTS_") || var.starts_with("HERALD_NAMESPACES_"))
      throw ConfigError(var + ": [defaults] and [namespaces.*] are set in the config file only");
    for (const auto section : kSections) {
      const std::string prefix = "HERALD_" + to_upper(section) + "_";
      if (!var.starts_with(prefix)) continue;
      const std::string name = to_lower(std::string_view(var).substr(prefix.size()));
      if (find_key(section, name)) continue;
      const std::string guess = closest_key(section, name);
      throw ConfigError(var + ": unknown setting " + std::string(section) + "." + name +
                        (guess.empty() ? "" : " (did you mean " + prefix + to_upper(guess) + "?)"));
    }
  }
  for (const auto& k : keys()) {
    const std::string var = env_name(k);
    const auto it = env.find(var);
    if (it == env.end()) continue;
    apply(cfg, k, from_env(k, var, it->second), "(from " + var + ")");
  }
}

}  // namespace

// --- public API -----------------------------------------------------------------

void parse_listen(const std::string& key, const std::string& value, std::string& host,
                  uint16_t& port) {
  const auto fail = [&](std::string_view why = {}) {
    throw ConfigError(key + ": expected host:port" +
                      (why.empty() ? std::string() : ", " + std::string(why)) + " (got '" + value +
                      "')");
  };
  std::string_view v = value;
  if (v.find("://") != std::string_view::npos) fail("without a scheme");
  std::string h = "0.0.0.0";
  std::string_view p;
  if (v.starts_with('[')) {
    const auto close = v.find(']');
    if (close == std::string_view::npos || close == 1) fail("unterminated [IPv6] address");
    if (close + 1 >= v.size() || v[close + 1] != ':') fail("missing :port after [IPv6]");
    h = std::string(v.substr(1, close - 1));
    boost::system::error_code ec;
    if (!boost::asio::ip::make_address(h, ec).is_v6() || ec) fail("bad IPv6 address");
    p = v.substr(close + 2);
  } else if (const auto colon = v.rfind(':'); colon != std::string_view::npos) {
    const auto host_part = v.substr(0, colon);
    if (host_part.find(':') != std::string_view::npos)
      fail("IPv6 addresses go in brackets, e.g. [::1]:8080");
    if (host_part == "localhost") {
      h = "127.0.0.1";  // the server binds addresses; it does not resolve names
    } else if (!host_part.empty()) {
      h = std::string(host_part);
      boost::system::error_code ec;
      if (!boost::asio::ip::make_address(h, ec).is_v4() || ec)
        fail("the host must be an IP address or localhost");
    }
    p = v.substr(colon + 1);
  } else {
    p = v;
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string_view::npos)
    fail();
  unsigned n = 0;
  std::from_chars(p.data(), p.data() + p.size(), n);
  if (n > 65535) fail("port must be between 0 and 65535");
  host = std::move(h);
  port = static_cast<uint16_t>(n);
}

namespace {

// The redis TLS keys together: a client certificate is a certificate and
// its key; and TLS settings with a redis:// URL would be ignored, leaving a
// connection the operator believes encrypted in plain text.
void check_redis_tls(const Config& cfg) {
  const EngineConfig& e = cfg.engine;
  if (e.redis_tls_cert_file.empty() != e.redis_tls_key_file.empty())
    throw ConfigError(
        "engine.redis_tls_cert_file and engine.redis_tls_key_file: set both (a client "
        "certificate and its key) or neither");
  if (e.type != "redis" || engine::redis::parse_redis_url(e.redis_url).tls) return;
  for (const auto& [name, value] : {std::pair{"redis_tls_ca_file", &e.redis_tls_ca_file},
                                    {"redis_tls_cert_file", &e.redis_tls_cert_file},
                                    {"redis_tls_server_name", &e.redis_tls_server_name}})
    if (!value->empty())
      throw ConfigError(std::string("engine.") + name +
                        ": is set, but engine.redis_url is not a rediss:// URL, so the "
                        "connection to Redis would not use TLS");
}

// The client TLS keys together: a certificate needs its key; a plaintext
// listener beside no TLS one would be a second plain port, surely a mistake.
void check_server_tls(const Config& cfg) {
  const ServerConfig& s = cfg.server;
  if (s.tls_cert_file.empty() != s.tls_key_file.empty())
    throw ConfigError(
        "server.tls_cert_file and server.tls_key_file: set both (a certificate and its key) or "
        "neither");
  if (s.has_listen_plain() && !s.tls())
    throw ConfigError(
        "server.listen_plain: is set, but TLS is off (server.tls_cert_file): server.listen "
        "already speaks plain HTTP");
  if (s.has_listen_plain() && s.listen_plain_port != 0 && s.listen_plain_port == s.listen_port &&
      s.listen_plain_host == s.listen_host)
    throw ConfigError("server.listen_plain: the same address as server.listen");
}

}  // namespace

Config load(const std::string& path, bool path_is_explicit,
            const std::map<std::string, std::string>& env, const Overrides& overrides) {
  Config cfg;
  FileNamespaces namespaces;
  if (!path.empty()) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found) {
      if (path_is_explicit) throw ConfigError("config file " + path + ": not found");
    } else if (status.type() == std::filesystem::file_type::directory) {
      throw ConfigError("config file " + path + ": is a directory");
    } else {
      namespaces = apply_file(cfg, path);
    }
  }
  apply_env(cfg, env);

  const auto flag = [&](std::string_view name, std::string_view flag_name, const Value& v) {
    apply(cfg, *find_key("server", name), v, "(from " + std::string(flag_name) + ")");
  };
  if (overrides.listen) flag("listen", "--listen", *overrides.listen);
  if (overrides.workers) flag("workers", "--workers", static_cast<int64_t>(*overrides.workers));
  if (overrides.static_dir) flag("static_dir", "--static-dir", *overrides.static_dir);
  if (overrides.log_level) flag("log_level", "--log-level", *overrides.log_level);
  check_redis_tls(cfg);
  check_server_tls(cfg);
  resolve_namespaces(cfg, namespaces);
  return cfg;
}

std::string_view namespace_of(std::string_view channel) {
  const auto colon = channel.find(':');
  return colon == std::string_view::npos ? std::string_view() : channel.substr(0, colon);
}

std::vector<std::string> restart_required(const Config& running, const Config& next) {
  std::vector<std::string> keys_changed;
  for (const auto& k : keys())
    if (k.get(running) != k.get(next)) keys_changed.push_back(k.full_name());
  if (running.auth.keys != next.auth.keys) keys_changed.emplace_back("auth.keys");
  if (running.api.keys != next.api.keys) keys_changed.emplace_back("api.keys");
  return keys_changed;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

namespace {

// "86400000" -> "24h", "65536" -> "64 KiB": a reading aid for --help.
std::string humanize(const KeyDef& k, int64_t v) {
  if (v <= 0) return {};
  if (k.type == Type::duration_ms) {
    for (const auto& [unit, ms] : {std::pair{"h", kHour}, {"min", kMinute}, {"s", kSecond}})
      if (v % ms == 0) return std::to_string(v / ms) + unit;
    return {};
  }
  if (k.name.ends_with("_bytes")) {
    for (const auto& [unit, n] : {std::pair{"GiB", kMiB * 1024}, {"MiB", kMiB}, {"KiB", 1024}})
      if (v % n == 0) return std::to_string(v / n) + " " + unit;
  }
  return {};
}

// `text` wrapped to lines of at most `width` characters, each starting with
// `indent`.
std::string wrap(std::string_view text, std::string_view indent, size_t width) {
  std::string out;
  std::string line(indent);
  while (!text.empty()) {
    const auto space = text.find(' ');
    const auto word = text.substr(0, space);
    if (line.size() > indent.size() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = indent;
    }
    if (line.size() > indent.size()) line += ' ';
    line += word;
    text.remove_prefix(space == std::string_view::npos ? text.size() : space + 1);
  }
  return out + line + "\n";
}

}  // namespace

std::string describe_keys() {
  const Config defaults;
  std::string out =
      "Configuration keys (precedence, lowest first: built-in defaults, the TOML file given by\n"
      "--config or HERALD_CONFIG (else ./herald.toml if present), HERALD_* environment\n"
      "variables, then the flags --listen, --workers, --static-dir and --log-level):\n";
  std::string_view section;
  for (const auto& k : keys()) {
    if (k.section != section) {
      section = k.section;
      out += "\n[" + std::string(section) + "]\n";
    }
    const Value value = k.get(defaults);
    std::string line = "  " + std::string(k.name) + " = " + render(value);
    if (const auto* i = std::get_if<int64_t>(&value); i && !humanize(k, *i).empty())
      line += " (" + humanize(k, *i) + ")";
    line.resize(std::max<size_t>(line.size() + 2, 44), ' ');
    out += line + env_name(k) + "\n";
    std::string help(k.help);
    if (k.type == Type::integer || k.type == Type::duration_ms)
      help += " Range " + std::to_string(k.min) + ".." + std::to_string(k.max) +
              (k.type == Type::duration_ms ? " ms." : ".");
    out += wrap(help, "      ", 80);
  }
  out +=
      "\n[[auth.keys]] (config file only; one table per key): name, algorithms (allow-list:\n"
      "  HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512), one of secret,\n"
      "  secret_env, secret_file (HS*) or public_key_file (PEM), optional kid and use\n"
      "  (connection, subscription or both). See docs/security.md.\n"
      "[[api.keys]] (config file only): name, scopes (publish, history, admin, presence, "
      "destroy),\n"
      "  one of key, key_env, key_file or sha256.\n";
  out +=
      "\n[defaults] and [namespaces.<name>] (config file only; a channel's namespace is its\n"
      "name up to the first ':'; a [namespaces.<name>] table takes every key below but\n"
      "allow_unknown and inherits the keys it leaves out from [defaults]):\n";
  const DefaultsConfig defaults_config;
  out += "  " + std::string(kAllowUnknown) + " = " + render(defaults_config.allow_unknown) + "\n";
  out += wrap(kAllowUnknownHelp, "      ", 80);
  for (const auto& k : namespace_keys()) {
    out += "  " + std::string(k.name) + " = " + render(k.get(defaults_config.options)) + "\n";
    std::string help(k.help);
    if (k.type == Type::integer || k.type == Type::duration_ms)
      help += " Range " + std::to_string(k.min) + ".." + std::to_string(k.max) +
              (k.type == Type::duration_ms ? " ms." : ".");
    if (k.scope == Scope::namespaces_only) help += " Not in [defaults].";
    out += wrap(help, "      ", 80);
  }
  return out;
}

std::string to_toml(const Config& config) {
  std::string out;
  std::string_view section;
  for (const auto& k : keys()) {
    if (k.section != section) {
      section = k.section;
      out += (out.empty() ? "[" : "\n[") + std::string(section) + "]\n";
    }
    out += std::string(k.name) + " = " + render(k.get(config)) + "\n";
  }
  out += "\n[defaults]\n" + std::string(kAllowUnknown) + " = " +
         render(config.defaults.allow_unknown) + "\n";
  const auto written = [](const NamespaceKeyDef& k, const NamespaceOptions& o) {
    return !k.is_set || k.is_set(o);
  };
  for (const auto& k : namespace_keys())
    if (k.scope == Scope::anywhere && written(k, config.defaults.options))
      out += std::string(k.name) + " = " + render(k.get(config.defaults.options)) + "\n";
  for (const auto& [name, options] : config.namespaces) {
    out += "\n[namespaces." + toml_key(name) + "]\n";
    for (const auto& k : namespace_keys())
      if (written(k, options)) out += std::string(k.name) + " = " + render(k.get(options)) + "\n";
  }
  out += key_lists_to_toml(config);
  return out;
}

}  // namespace herald::config
