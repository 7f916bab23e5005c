// Loads Herald's configuration: built-in defaults, then a TOML file, then
// HERALD_* environment variables, then command-line overrides, checking every
// value on the way so that a bad one stops start-up with a message naming the
// key and where the value came from. One table (keys()) describes every key:
// its TOML name, type, range, help text and how it maps onto the Config
// struct; loading, --help text and to_toml() are all driven by it, so they
// cannot drift apart. A second table (namespace_keys()) does the same for
// the options of [defaults] and [namespaces.<name>].
#include "config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
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

extern char** environ;

namespace herald::config {
namespace {

using Value = std::variant<int64_t, std::string, std::vector<std::string>, bool>;

enum class Type { integer, duration_ms, string, string_list, boolean };

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

constexpr std::string_view kSections[] = {"server", "limits", "history", "engine"};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view kEngines[] = {"memory", "sqlite"};
constexpr std::string_view kDurabilities[] = {"normal", "full"};

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kMiB = 1024 * 1024;

std::string join(const auto& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

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

// A TOML basic string literal for `s`.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string render(const Value& v) {
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return quote(*s);
  std::string out = "[";
  const auto& list = std::get<std::vector<std::string>>(v);
  for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + quote(list[i]);
  return out + "]";
}

std::string type_name(Type t) {
  switch (t) {
    case Type::integer:
      return "an integer";
    case Type::duration_ms:
      return "an integer number of milliseconds";
    case Type::string:
      return "a string";
    case Type::string_list:
      return "an array of strings";
    case Type::boolean:
      return "a boolean (true or false)";
  }
  return "?";
}

std::string toml_type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// --- value checks used by the key table -------------------------------------

void check_one_of(const std::string& key, const std::string& value, std::string_view what,
                  const auto& allowed) {
  if (std::find(std::begin(allowed), std::end(allowed), value) != std::end(allowed)) return;
  throw ConfigError(key + ": unknown " + std::string(what) + " '" + value + "' (expected " +
                    join(allowed, ", ") + ")");
}

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
    k.push_back({"server", "static_dir", Type::string, 0, 0,
                 "Directory served over HTTP as static files (e.g. the chat demo); \"\" turns "
                 "static files off.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.static_dir = std::get<std::string>(v);
                 },
                 [](const Config& c) { return Value(c.server.static_dir); }});
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
    k.push_back({"server", "allow_remote_admin", Type::boolean, 0, 0,
                 "Whether the admin API (POST /api/admin/reload) answers peers other than "
                 "loopback; it has no authentication yet.",
                 [](Config& c, const std::string&, const Value& v) {
                   c.server.allow_remote_admin = std::get<bool>(v);
                 },
                 [](const Config& c) { return Value(c.server.allow_remote_admin); }});

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
                 "engine.data_dir, kept across restarts) or memory (history in RAM, lost on "
                 "restart).",
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
        "sqlite: operations that may wait for the storage thread; beyond it publishes "
        "fail with `internal`."));
    k.push_back(size_key<&Config::engine, &EngineConfig::hot_window>(
        "engine", "hot_window", 0, 1000000,
        "sqlite: newest events of each active channel kept in RAM to answer history and "
        "recovery without the database (at most history.size are used)."));
    k.push_back(size_key<&Config::engine, &EngineConfig::channel_cache>(
        "engine", "channel_cache", 16, 100000000,
        "sqlite: channels (id, epoch, last offset) the storage thread keeps in RAM; the least "
        "recently used beyond it are read from the database again when needed."));
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
};

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
    k.push_back(
        {"history_ttl_ms", Type::duration_ms, 0, 365 * kDay, Scope::namespaces_only,
         "Age after which the namespace's events leave history (0: no limit); default: "
         "history.ttl_ms.",
         [](NamespaceOptions& o, const std::string&, const Value& v, const std::filesystem::path&) {
           o.history_ttl = std::chrono::milliseconds(std::get<int64_t>(v));
         },
         [](const NamespaceOptions& o) {
           return Value(static_cast<int64_t>(o.history_ttl.count()));
         }});
    k.push_back(ns_bool<&NamespaceOptions::recover>(
        "recover",
        "Whether subscribers may recover missed events; false answers recovery with "
        "recovered:false."));
    k.push_back(ns_bool<&NamespaceOptions::client_publish>(
        "client_publish",
        "Whether WebSocket clients may publish; false: only the HTTP API may (clients get "
        "forbidden)."));
    k.push_back(ns_bool<&NamespaceOptions::presence>(
        "presence", "Reserved for presence: whether members may be listed."));
    k.push_back(ns_bool<&NamespaceOptions::join_leave>(
        "join_leave", "Reserved for presence: whether join and leave messages are sent."));
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

std::string location(const std::string& file, const toml::source_region& where) {
  if (where.begin.line == 0) return "(in " + file + ")";
  return "(in " + file + ", line " + std::to_string(where.begin.line) + ")";
}

Value from_toml(const std::string& key, Type type, const toml::node& node,
                const std::string& file) {
  const auto wrong_type = [&](const std::string& name, const toml::node& n,
                              const std::string& expected) {
    return ConfigError(name + ": expected " + expected + " (got " + toml_type_name(n.type()) +
                       ") " + location(file, n.source()));
  };
  switch (type) {
    case Type::integer:
    case Type::duration_ms:
      if (const auto* i = node.as_integer()) return i->get();
      break;
    case Type::boolean:
      if (const auto* b = node.as_boolean()) return b->get();
      break;
    case Type::string:
      if (const auto* s = node.as_string()) return s->get();
      break;
    case Type::string_list:
      if (const auto* arr = node.as_array()) {
        std::vector<std::string> list;
        for (size_t i = 0; i < arr->size(); ++i) {
          const auto* s = (*arr)[i].as_string();
          if (!s) throw wrong_type(key + "[" + std::to_string(i) + "]", (*arr)[i], "a string");
          list.push_back(s->get());
        }
        return list;
      }
      break;
  }
  throw wrong_type(key, node, type_name(type));
}

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
  // Catch misspelt variables in the namespaces that map onto keys.
  for (const auto& [var, value] : env) {
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
  for (const auto& k : namespace_keys())
    if (k.scope == Scope::anywhere)
      out += std::string(k.name) + " = " + render(k.get(config.defaults.options)) + "\n";
  for (const auto& [name, options] : config.namespaces) {
    out += "\n[namespaces." + toml_key(name) + "]\n";
    for (const auto& k : namespace_keys())
      out += std::string(k.name) + " = " + render(k.get(options)) + "\n";
  }
  return out;
}

}  // namespace herald::config
