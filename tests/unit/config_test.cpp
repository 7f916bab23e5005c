// Unit tests for config loading: defaults, file, environment and flag layers,
// their precedence, and that every kind of bad input is reported with the key
// (and source) it concerns. Also checks that herald.example.toml, docs/config.md
// and describe_keys() cover every key.
#include "config/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace herald::config {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Env = std::map<std::string, std::string>;
using namespace std::chrono_literals;

// Every key as section.name with its environment variable.
const std::vector<std::pair<std::string, std::string>> kAllKeys = {
    {"server.listen", "HERALD_SERVER_LISTEN"},
    {"server.workers", "HERALD_SERVER_WORKERS"},
    {"server.ws_path", "HERALD_SERVER_WS_PATH"},
    {"server.sse_path", "HERALD_SERVER_SSE_PATH"},
    {"server.sse_retry_ms", "HERALD_SERVER_SSE_RETRY_MS"},
    {"server.static_dir", "HERALD_SERVER_STATIC_DIR"},
    {"server.static_spa_fallback", "HERALD_SERVER_STATIC_SPA_FALLBACK"},
    {"server.allowed_origins", "HERALD_SERVER_ALLOWED_ORIGINS"},
    {"server.shutdown_timeout_ms", "HERALD_SERVER_SHUTDOWN_TIMEOUT_MS"},
    {"server.log_level", "HERALD_SERVER_LOG_LEVEL"},
    {"server.log_format", "HERALD_SERVER_LOG_FORMAT"},
    {"server.access_log", "HERALD_SERVER_ACCESS_LOG"},
    {"server.compression", "HERALD_SERVER_COMPRESSION"},
    {"server.compression_min_bytes", "HERALD_SERVER_COMPRESSION_MIN_BYTES"},
    {"server.compression_level", "HERALD_SERVER_COMPRESSION_LEVEL"},
    {"server.allow_remote_admin", "HERALD_SERVER_ALLOW_REMOTE_ADMIN"},
    {"server.tls_cert_file", "HERALD_SERVER_TLS_CERT_FILE"},
    {"server.tls_key_file", "HERALD_SERVER_TLS_KEY_FILE"},
    {"server.listen_plain", "HERALD_SERVER_LISTEN_PLAIN"},
    {"limits.max_message_bytes", "HERALD_LIMITS_MAX_MESSAGE_BYTES"},
    {"limits.max_outbound_bytes", "HERALD_LIMITS_MAX_OUTBOUND_BYTES"},
    {"limits.max_channel_length", "HERALD_LIMITS_MAX_CHANNEL_LENGTH"},
    {"limits.max_event_length", "HERALD_LIMITS_MAX_EVENT_LENGTH"},
    {"limits.max_channels_per_connection", "HERALD_LIMITS_MAX_CHANNELS_PER_CONNECTION"},
    {"limits.max_connections", "HERALD_LIMITS_MAX_CONNECTIONS"},
    {"limits.max_http_body_bytes", "HERALD_LIMITS_MAX_HTTP_BODY_BYTES"},
    {"limits.handshake_timeout_ms", "HERALD_LIMITS_HANDSHAKE_TIMEOUT_MS"},
    {"limits.ping_interval_ms", "HERALD_LIMITS_PING_INTERVAL_MS"},
    {"limits.pong_timeout_ms", "HERALD_LIMITS_PONG_TIMEOUT_MS"},
    {"history.size", "HERALD_HISTORY_SIZE"},
    {"history.ttl_ms", "HERALD_HISTORY_TTL_MS"},
    {"history.max_request", "HERALD_HISTORY_MAX_REQUEST"},
    {"engine.type", "HERALD_ENGINE_TYPE"},
    {"engine.data_dir", "HERALD_ENGINE_DATA_DIR"},
    {"engine.durability", "HERALD_ENGINE_DURABILITY"},
    {"engine.queue_limit", "HERALD_ENGINE_QUEUE_LIMIT"},
    {"engine.hot_window", "HERALD_ENGINE_HOT_WINDOW"},
    {"engine.channel_cache", "HERALD_ENGINE_CHANNEL_CACHE"},
    {"engine.page_cache_mb", "HERALD_ENGINE_PAGE_CACHE_MB"},
    {"engine.redis_url", "HERALD_ENGINE_REDIS_URL"},
    {"engine.redis_connect_timeout_ms", "HERALD_ENGINE_REDIS_CONNECT_TIMEOUT_MS"},
    {"engine.redis_command_timeout_ms", "HERALD_ENGINE_REDIS_COMMAND_TIMEOUT_MS"},
    {"engine.redis_reconnect_max_ms", "HERALD_ENGINE_REDIS_RECONNECT_MAX_MS"},
    {"engine.redis_idle_ttl_ms", "HERALD_ENGINE_REDIS_IDLE_TTL_MS"},
    {"engine.redis_prefix", "HERALD_ENGINE_REDIS_PREFIX"},
    {"engine.redis_cluster", "HERALD_ENGINE_REDIS_CLUSTER"},
    {"engine.redis_presence_ttl_ms", "HERALD_ENGINE_REDIS_PRESENCE_TTL_MS"},
    {"engine.redis_tls_ca_file", "HERALD_ENGINE_REDIS_TLS_CA_FILE"},
    {"engine.redis_tls_cert_file", "HERALD_ENGINE_REDIS_TLS_CERT_FILE"},
    {"engine.redis_tls_key_file", "HERALD_ENGINE_REDIS_TLS_KEY_FILE"},
    {"engine.redis_tls_server_name", "HERALD_ENGINE_REDIS_TLS_SERVER_NAME"},
    {"auth.jwks_url", "HERALD_AUTH_JWKS_URL"},
    {"auth.jwks_file", "HERALD_AUTH_JWKS_FILE"},
    {"auth.jwks_ca_file", "HERALD_AUTH_JWKS_CA_FILE"},
    {"auth.jwks_algorithms", "HERALD_AUTH_JWKS_ALGORITHMS"},
    {"auth.jwks_refresh_ms", "HERALD_AUTH_JWKS_REFRESH_MS"},
    {"auth.jwks_min_refetch_ms", "HERALD_AUTH_JWKS_MIN_REFETCH_MS"},
    {"auth.jwks_timeout_ms", "HERALD_AUTH_JWKS_TIMEOUT_MS"},
    {"auth.issuer", "HERALD_AUTH_ISSUER"},
    {"auth.audience", "HERALD_AUTH_AUDIENCE"},
    {"auth.leeway_ms", "HERALD_AUTH_LEEWAY_MS"},
    {"auth.max_token_bytes", "HERALD_AUTH_MAX_TOKEN_BYTES"},
    {"auth.query_token", "HERALD_AUTH_QUERY_TOKEN"},
    {"auth.token_cookie", "HERALD_AUTH_TOKEN_COOKIE"},
    {"auth.token_cache", "HERALD_AUTH_TOKEN_CACHE"},
    {"rate_limits.commands_per_second", "HERALD_RATE_LIMITS_COMMANDS_PER_SECOND"},
    {"rate_limits.commands_burst", "HERALD_RATE_LIMITS_COMMANDS_BURST"},
    {"rate_limits.publishes_per_second", "HERALD_RATE_LIMITS_PUBLISHES_PER_SECOND"},
    {"rate_limits.publishes_burst", "HERALD_RATE_LIMITS_PUBLISHES_BURST"},
    {"rate_limits.user_publishes_per_second", "HERALD_RATE_LIMITS_USER_PUBLISHES_PER_SECOND"},
    {"rate_limits.user_publishes_burst", "HERALD_RATE_LIMITS_USER_PUBLISHES_BURST"},
    {"rate_limits.violations_before_close", "HERALD_RATE_LIMITS_VIOLATIONS_BEFORE_CLOSE"},
    {"rate_limits.connections_per_ip", "HERALD_RATE_LIMITS_CONNECTIONS_PER_IP"},
    {"rate_limits.connections_per_user", "HERALD_RATE_LIMITS_CONNECTIONS_PER_USER"},
    {"rate_limits.new_connections_per_ip_per_second",
     "HERALD_RATE_LIMITS_NEW_CONNECTIONS_PER_IP_PER_SECOND"},
    {"rate_limits.auth_failures_per_ip_per_minute",
     "HERALD_RATE_LIMITS_AUTH_FAILURES_PER_IP_PER_MINUTE"},
    {"rate_limits.max_tracked_keys", "HERALD_RATE_LIMITS_MAX_TRACKED_KEYS"},
    {"api.protect_metrics", "HERALD_API_PROTECT_METRICS"},
    {"proxy.connect_url", "HERALD_PROXY_CONNECT_URL"},
    {"proxy.subscribe_url", "HERALD_PROXY_SUBSCRIBE_URL"},
    {"proxy.publish_url", "HERALD_PROXY_PUBLISH_URL"},
    {"proxy.rpc_url", "HERALD_PROXY_RPC_URL"},
    {"proxy.refresh_url", "HERALD_PROXY_REFRESH_URL"},
    {"proxy.rpc_routes", "HERALD_PROXY_RPC_ROUTES"},
    {"proxy.rpc_schema", "HERALD_PROXY_RPC_SCHEMA"},
    {"proxy.ca_file", "HERALD_PROXY_CA_FILE"},
    {"proxy.connect_timeout_ms", "HERALD_PROXY_CONNECT_TIMEOUT_MS"},
    {"proxy.connect_max_concurrent", "HERALD_PROXY_CONNECT_MAX_CONCURRENT"},
    {"proxy.subscribe_timeout_ms", "HERALD_PROXY_SUBSCRIBE_TIMEOUT_MS"},
    {"proxy.subscribe_max_concurrent", "HERALD_PROXY_SUBSCRIBE_MAX_CONCURRENT"},
    {"proxy.publish_timeout_ms", "HERALD_PROXY_PUBLISH_TIMEOUT_MS"},
    {"proxy.publish_max_concurrent", "HERALD_PROXY_PUBLISH_MAX_CONCURRENT"},
    {"proxy.rpc_timeout_ms", "HERALD_PROXY_RPC_TIMEOUT_MS"},
    {"proxy.rpc_max_concurrent", "HERALD_PROXY_RPC_MAX_CONCURRENT"},
    {"proxy.refresh_timeout_ms", "HERALD_PROXY_REFRESH_TIMEOUT_MS"},
    {"proxy.refresh_max_concurrent", "HERALD_PROXY_REFRESH_MAX_CONCURRENT"},
    {"proxy.timeout_ms", "HERALD_PROXY_TIMEOUT_MS"},
    {"proxy.max_concurrent", "HERALD_PROXY_MAX_CONCURRENT"},
    {"proxy.forward_headers", "HERALD_PROXY_FORWARD_HEADERS"},
    {"proxy.forward_cookies", "HERALD_PROXY_FORWARD_COOKIES"},
    {"proxy.static_headers", "HERALD_PROXY_STATIC_HEADERS"},
    {"proxy.connect_with_token", "HERALD_PROXY_CONNECT_WITH_TOKEN"},
};

// The options of [defaults] and [namespaces.<name>] (file only).
const std::vector<std::string> kNamespaceKeys = {
    "history_size",    "history_ttl_ms",   "recover",           "client_publish",
    "presence",        "join_leave",       "max_message_bytes", "schema",
    "strict_events",   "subscribe_access", "publish_access",    "history_access",
    "presence_access", "anonymous",        "user_channels",     "publishes_per_second",
    "publishes_burst", "proxy_subscribe",  "proxy_publish",
};

const char* kFullFile = R"(# every key, none at its default
[server]
listen = "127.0.0.1:9001"
workers = 3
ws_path = "/realtime"
static_dir = "/srv/www"
allowed_origins = ["https://app.example.com", "HTTP://LOCALHOST:5173"]
shutdown_timeout_ms = 1500
log_level = "debug"
allow_remote_admin = true

[limits]
max_message_bytes = 4096
max_outbound_bytes = 65536
max_channel_length = 100
max_event_length = 50
max_channels_per_connection = 10
max_connections = 500
max_http_body_bytes = 2048
handshake_timeout_ms = 3000
ping_interval_ms = 20000
pong_timeout_ms = 5000

[history]
size = 50
ttl_ms = 60000
max_request = 25

[engine]
type = "memory"
data_dir = "/var/lib/herald"
durability = "full"
queue_limit = 5000
hot_window = 64
channel_cache = 300
page_cache_mb = 7
)";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "herald-config-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text, const std::string& name = "herald.toml") {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  // load() of a file with `text`, expected to fail; returns the message.
  std::string file_error(const std::string& text) { return error(write(text), Env{}, {}); }

  static std::string error(const std::string& path, const Env& env, const Overrides& o) {
    try {
      load(path, true, env, o);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no ConfigError";
    return {};
  }
  static std::string env_error(const Env& env) { return error("", env, {}); }
  static std::string flag_error(const Overrides& o) { return error("", Env{}, o); }

  fs::path dir_;
};

TEST_F(ConfigTest, Defaults) {
  const Config c = load("", false, {}, {});
  EXPECT_EQ(c, Config{});
  EXPECT_EQ(c.server.listen_host, "0.0.0.0");
  EXPECT_EQ(c.server.listen_port, 8080);
  EXPECT_EQ(c.server.workers, 0u);
  EXPECT_EQ(c.server.ws_path, "/ws");
  EXPECT_EQ(c.server.static_dir, "web");
  EXPECT_TRUE(c.server.allowed_origins.empty());
  EXPECT_EQ(c.server.shutdown_timeout, 5000ms);
  EXPECT_EQ(c.server.log_level, "info");
  EXPECT_EQ(c.limits.max_message_bytes, 65536u);
  EXPECT_EQ(c.limits.ping_interval, 25000ms);
  EXPECT_EQ(c.history.size, 1000u);
  EXPECT_EQ(c.history.ttl, 24h);
  EXPECT_EQ(c.engine.type, "sqlite");
  EXPECT_EQ(c.engine.data_dir, "data");
}

TEST_F(ConfigTest, MissingImplicitFileIsFine) {
  EXPECT_EQ(load((dir_ / "herald.toml").string(), false, {}, {}), Config{});
}

TEST_F(ConfigTest, MissingExplicitFileIsAnError) {
  const std::string path = (dir_ / "nope.toml").string();
  EXPECT_THAT(error(path, {}, {}), AllOf(HasSubstr(path), HasSubstr("not found")));
}

TEST_F(ConfigTest, DirectoryIsAnError) {
  EXPECT_THAT(error(dir_.string(), {}, {}), HasSubstr("is a directory"));
  try {
    load(dir_.string(), false, {}, {});
    ADD_FAILURE() << "an existing directory must not be skipped";
  } catch (const ConfigError&) {
  }
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
  EXPECT_EQ(load(write(""), true, {}, {}), Config{});
}

TEST_F(ConfigTest, FileValues) {
  const Config c = load(write(kFullFile), true, {}, {});
  EXPECT_EQ(c.server.listen_host, "127.0.0.1");
  EXPECT_EQ(c.server.listen_port, 9001);
  EXPECT_EQ(c.server.workers, 3u);
  EXPECT_EQ(c.server.ws_path, "/realtime");
  EXPECT_EQ(c.server.static_dir, "/srv/www");
  EXPECT_EQ(c.server.allowed_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:5173"}));
  EXPECT_EQ(c.server.shutdown_timeout, 1500ms);
  EXPECT_EQ(c.server.log_level, "debug");
  EXPECT_EQ(c.limits.max_message_bytes, 4096u);
  EXPECT_EQ(c.limits.max_outbound_bytes, 65536u);
  EXPECT_EQ(c.limits.max_channel_length, 100u);
  EXPECT_EQ(c.limits.max_event_length, 50u);
  EXPECT_EQ(c.limits.max_channels_per_connection, 10u);
  EXPECT_EQ(c.limits.max_connections, 500u);
  EXPECT_EQ(c.limits.max_http_body_bytes, 2048u);
  EXPECT_EQ(c.limits.handshake_timeout, 3000ms);
  EXPECT_EQ(c.limits.ping_interval, 20000ms);
  EXPECT_EQ(c.limits.pong_timeout, 5000ms);
  EXPECT_EQ(c.history.size, 50u);
  EXPECT_EQ(c.history.ttl, 60000ms);
  EXPECT_EQ(c.history.max_request, 25u);
  EXPECT_EQ(c.engine.type, "memory");
  EXPECT_EQ(c.engine.data_dir, "/var/lib/herald");
  EXPECT_EQ(c.engine.durability, "full");
  EXPECT_EQ(c.engine.queue_limit, 5000u);
  EXPECT_EQ(c.engine.hot_window, 64u);
  EXPECT_EQ(c.engine.channel_cache, 300u);
  EXPECT_EQ(c.engine.page_cache_mb, 7u);
}

TEST_F(ConfigTest, PartialFileKeepsOtherDefaults) {
  const Config c = load(write("[limits]\nping_interval_ms = 1000\n"), true, {}, {});
  Config expected;
  expected.limits.ping_interval = 1000ms;
  EXPECT_EQ(c, expected);
}

TEST_F(ConfigTest, DottedKeysAndInlineTablesWork) {
  const Config c = load(write("server.workers = 2\nhistory = { size = 7 }\n"), true, {}, {});
  EXPECT_EQ(c.server.workers, 2u);
  EXPECT_EQ(c.history.size, 7u);
}

TEST_F(ConfigTest, EveryKeyFromEnvironment) {
  const Env env = {
      {"HERALD_SERVER_LISTEN", "[::1]:7000"},
      {"HERALD_SERVER_WORKERS", "4"},
      {"HERALD_SERVER_WS_PATH", "/socket"},
      {"HERALD_SERVER_STATIC_DIR", ""},
      {"HERALD_SERVER_ALLOWED_ORIGINS", " https://a.example , ,https://b.example:8443 "},
      {"HERALD_SERVER_SHUTDOWN_TIMEOUT_MS", "0"},
      {"HERALD_SERVER_LOG_LEVEL", "WARN"},
      {"HERALD_LIMITS_MAX_MESSAGE_BYTES", "125"},
      {"HERALD_LIMITS_MAX_OUTBOUND_BYTES", "2048"},
      {"HERALD_LIMITS_MAX_CHANNEL_LENGTH", "64"},
      {"HERALD_LIMITS_MAX_EVENT_LENGTH", "32"},
      {"HERALD_LIMITS_MAX_CHANNELS_PER_CONNECTION", "5"},
      {"HERALD_LIMITS_MAX_CONNECTIONS", "10"},
      {"HERALD_LIMITS_MAX_HTTP_BODY_BYTES", "4096"},
      {"HERALD_LIMITS_HANDSHAKE_TIMEOUT_MS", "100"},
      {"HERALD_LIMITS_PING_INTERVAL_MS", " 200 "},
      {"HERALD_LIMITS_PONG_TIMEOUT_MS", "300"},
      {"HERALD_HISTORY_SIZE", "0"},
      {"HERALD_HISTORY_TTL_MS", "0"},
      {"HERALD_HISTORY_MAX_REQUEST", "9"},
      {"HERALD_ENGINE_TYPE", "memory"},
      {"HERALD_CONFIG", "ignored-here.toml"},  // main's business
      {"PATH", "/usr/bin"},
  };
  const Config c = load("", false, env, {});
  EXPECT_EQ(c.server.listen_host, "::1");
  EXPECT_EQ(c.server.listen_port, 7000);
  EXPECT_EQ(c.server.workers, 4u);
  EXPECT_EQ(c.server.ws_path, "/socket");
  EXPECT_EQ(c.server.static_dir, "");
  EXPECT_EQ(c.server.allowed_origins,
            (std::vector<std::string>{"https://a.example", "https://b.example:8443"}));
  EXPECT_EQ(c.server.shutdown_timeout, 0ms);
  EXPECT_EQ(c.server.log_level, "warn");
  EXPECT_EQ(c.limits.max_message_bytes, 125u);
  EXPECT_EQ(c.limits.max_outbound_bytes, 2048u);
  EXPECT_EQ(c.limits.max_channel_length, 64u);
  EXPECT_EQ(c.limits.max_event_length, 32u);
  EXPECT_EQ(c.limits.max_channels_per_connection, 5u);
  EXPECT_EQ(c.limits.max_connections, 10u);
  EXPECT_EQ(c.limits.max_http_body_bytes, 4096u);
  EXPECT_EQ(c.limits.handshake_timeout, 100ms);
  EXPECT_EQ(c.limits.ping_interval, 200ms);
  EXPECT_EQ(c.limits.pong_timeout, 300ms);
  EXPECT_EQ(c.history.size, 0u);
  EXPECT_EQ(c.history.ttl, 0ms);
  EXPECT_EQ(c.history.max_request, 9u);
}

TEST_F(ConfigTest, EmptyOriginsFromEnvironmentClearsTheFileList) {
  const std::string path = write("[server]\nallowed_origins = [\"https://x.example\"]\n");
  EXPECT_TRUE(
      load(path, true, {{"HERALD_SERVER_ALLOWED_ORIGINS", ""}}, {}).server.allowed_origins.empty());
}

TEST_F(ConfigTest, EnvironmentOverridesFile) {
  const std::string path = write(kFullFile);
  const Config c = load(path, true,
                        {{"HERALD_SERVER_WORKERS", "7"},
                         {"HERALD_LIMITS_PING_INTERVAL_MS", "1234"},
                         {"HERALD_SERVER_LISTEN", ":9100"}},
                        {});
  EXPECT_EQ(c.server.workers, 7u);
  EXPECT_EQ(c.limits.ping_interval, 1234ms);
  EXPECT_EQ(c.server.listen_host, "0.0.0.0");
  EXPECT_EQ(c.server.listen_port, 9100);
  EXPECT_EQ(c.server.ws_path, "/realtime");  // untouched keys keep the file's value
  EXPECT_EQ(c.history.size, 50u);
}

TEST_F(ConfigTest, OverridesBeatEnvironmentAndFile) {
  const std::string path = write(kFullFile);
  const Env env = {{"HERALD_SERVER_WORKERS", "7"},
                   {"HERALD_SERVER_LISTEN", ":9100"},
                   {"HERALD_SERVER_STATIC_DIR", "/env"},
                   {"HERALD_SERVER_LOG_LEVEL", "error"}};
  Overrides o;
  o.listen = "localhost:9200";
  o.workers = 1;
  o.static_dir = "";
  o.log_level = "trace";
  const Config c = load(path, true, env, o);
  EXPECT_EQ(c.server.listen_host, "127.0.0.1");
  EXPECT_EQ(c.server.listen_port, 9200);
  EXPECT_EQ(c.server.workers, 1u);
  EXPECT_EQ(c.server.static_dir, "");
  EXPECT_EQ(c.server.log_level, "trace");
  EXPECT_EQ(c.server.ws_path, "/realtime");

  // Unset overrides leave the lower layers alone.
  const Config d = load(path, true, env, Overrides{});
  EXPECT_EQ(d.server.workers, 7u);
  EXPECT_EQ(d.server.static_dir, "/env");
}

TEST_F(ConfigTest, ParseErrorNamesFileLineAndColumn) {
  const std::string path = write("[server]\nworkers = 2\nlisten = \n");
  EXPECT_THAT(error(path, {}, {}),
              AllOf(StartsWith("config file " + path + ": parse error at line 3, column"),
                    HasSubstr(": ")));
}

TEST_F(ConfigTest, DuplicateKeyIsAParseError) {
  EXPECT_THAT(file_error("[server]\nworkers = 1\nworkers = 2\n"), HasSubstr("line 3"));
}

TEST_F(ConfigTest, RangeErrorsNameKeyRangeValueAndSource) {
  EXPECT_THAT(file_error("[limits]\nmax_message_bytes = 12\n"),
              AllOf(StartsWith("limits.max_message_bytes: must be between 125 and 67108864 "
                               "(got 12)"),
                    HasSubstr("herald.toml, line 2")));
  EXPECT_THAT(file_error("[server]\nworkers = -3\n"),
              StartsWith("server.workers: must be between 0 and 256 (got -3)"));
  EXPECT_THAT(file_error("[server]\nworkers = 257\n"), StartsWith("server.workers:"));
  EXPECT_THAT(file_error("[limits]\nping_interval_ms = 0\n"),
              StartsWith("limits.ping_interval_ms: must be between"));
  EXPECT_THAT(file_error("[limits]\npong_timeout_ms = 0\n"),
              StartsWith("limits.pong_timeout_ms: must be between"));
  EXPECT_THAT(file_error("[history]\nmax_request = 0\n"), StartsWith("history.max_request:"));
  EXPECT_THAT(file_error("[history]\nttl_ms = -1\n"), StartsWith("history.ttl_ms:"));
  EXPECT_THAT(env_error({{"HERALD_LIMITS_MAX_CONNECTIONS", "0"}}),
              AllOf(StartsWith("limits.max_connections: must be between 1 and"),
                    HasSubstr("(from HERALD_LIMITS_MAX_CONNECTIONS)")));
  Overrides o;
  o.workers = 1000;
  EXPECT_THAT(flag_error(o), AllOf(StartsWith("server.workers: must be between 0 and 256 (got "
                                              "1000)"),
                                   HasSubstr("(from --workers)")));
}

TEST_F(ConfigTest, EveryNumericKeyHasARange) {
  for (const auto& [key, var] : kAllKeys) {
    if (key == "server.listen" || key == "server.ws_path" || key == "server.static_dir" ||
        key == "server.sse_path" || key == "auth.token_cookie" || key == "server.allowed_origins" ||
        key == "server.log_level" || key == "engine.type" || key == "engine.data_dir" ||
        key == "engine.durability" || key == "engine.redis_url" || key == "engine.redis_prefix" ||
        key.starts_with("engine.redis_tls_") || key == "engine.redis_cluster" ||
        key == "server.allow_remote_admin" ||
        (key.starts_with("auth.jwks_") && !key.ends_with("_ms")) || key == "auth.issuer" ||
        key == "auth.audience" || key == "auth.query_token" || key == "api.protect_metrics" ||
        (key.starts_with("proxy.") && !key.ends_with("_ms") && !key.ends_with("max_concurrent")) ||
        key == "server.static_spa_fallback" || key == "server.log_format" ||
        key == "server.access_log" || key == "server.compression" ||
        key.starts_with("server.tls_") || key == "server.listen_plain")
      continue;
    EXPECT_THAT(env_error({{var, "99999999999999"}}),
                AllOf(StartsWith(key + ": must be between"), HasSubstr(var)));
  }
}

TEST_F(ConfigTest, WrongTomlTypesNameKeyAndExpectedType) {
  EXPECT_THAT(
      file_error("[server]\nworkers = \"4\"\n"),
      AllOf(StartsWith("server.workers: expected an integer (got string)"), HasSubstr("line 2")));
  EXPECT_THAT(file_error("[server]\nworkers = 2.5\n"),
              StartsWith("server.workers: expected an integer (got float)"));
  EXPECT_THAT(file_error("[limits]\nping_interval_ms = \"25s\"\n"),
              StartsWith("limits.ping_interval_ms: expected an integer number of milliseconds "
                         "(got string)"));
  EXPECT_THAT(file_error("[server]\nlisten = 8080\n"),
              StartsWith("server.listen: expected a string (got integer)"));
  EXPECT_THAT(file_error("[server]\nlog_level = true\n"),
              StartsWith("server.log_level: expected a string (got boolean)"));
  EXPECT_THAT(file_error("[server]\nlog_format = \"xml\"\n"), StartsWith("server.log_format: "));
  EXPECT_THAT(file_error("[server]\naccess_log = \"yes\"\n"),
              StartsWith("server.access_log: expected a boolean (true or false) (got string)"));
  EXPECT_THAT(file_error("[server]\nallowed_origins = \"https://a.example\"\n"),
              StartsWith("server.allowed_origins: expected an array of strings (got string)"));
  EXPECT_THAT(file_error("[server]\nallowed_origins = [\"https://a.example\", 3]\n"),
              StartsWith("server.allowed_origins[1]: expected a string (got integer)"));
  EXPECT_THAT(file_error("server = 1\n"), StartsWith("server: expected a table"));
  EXPECT_THAT(file_error("[[limits]]\n"), StartsWith("limits: expected a table"));
}

TEST_F(ConfigTest, UnknownKeysAndSectionsAreErrors) {
  EXPECT_THAT(file_error("[server]\nworkrs = 2\n"),
              AllOf(StartsWith("server.workrs: unknown key (did you mean server.workers?)"),
                    HasSubstr("line 2")));
  EXPECT_THAT(file_error("[limits]\nping_interval = 2000\n"),
              AllOf(StartsWith("limits.ping_interval: unknown key (did you mean "
                               "limits.ping_interval_ms?"),
                    HasSubstr("milliseconds")));
  EXPECT_THAT(file_error("[server]\ncompletely_different = 1\n"),
              StartsWith("server.completely_different: unknown key ("));
  EXPECT_THAT(
      file_error("[servr]\nworkers = 2\n"),
      AllOf(StartsWith("servr: unknown section (did you mean [server]?)"), HasSubstr("line 1")));
  EXPECT_THAT(file_error("[auth]\nsecret = \"x\"\n"), StartsWith("auth.secret: unknown key"));
  EXPECT_THAT(file_error("listen = \":80\"\n"),
              AllOf(StartsWith("listen: unknown key"), HasSubstr("server.listen")));
  EXPECT_THAT(file_error("[server.tls]\ncert = \"x\"\n"), StartsWith("server.tls: unknown key"));
}

TEST_F(ConfigTest, UnknownEnvironmentVariablesInKeyNamespacesAreErrors) {
  EXPECT_THAT(env_error({{"HERALD_LIMITS_PING_INTERVAL", "2000"}}),
              StartsWith("HERALD_LIMITS_PING_INTERVAL: unknown setting limits.ping_interval (did "
                         "you mean HERALD_LIMITS_PING_INTERVAL_MS?)"));
  EXPECT_THAT(env_error({{"HERALD_SERVER_WROKERS", "2"}}),
              StartsWith("HERALD_SERVER_WROKERS: unknown setting"));
  // Other HERALD_* names are not config keys and are left alone.
  EXPECT_EQ(load("", false, {{"HERALD_CONFIG", "x"}, {"HERALD_TOKEN", "y"}}, {}), Config{});
}

TEST_F(ConfigTest, SecretVariablesTheFileNamesAreNotSettings) {
  // The docs' own example: key_env = "HERALD_API_KEY" looks like a setting
  // of [api] but holds a key.
  const std::string path = write(
      "[[api.keys]]\nname = \"backend\"\nkey_env = \"HERALD_API_KEY\"\nscopes = [\"publish\"]\n"
      "[[auth.keys]]\nname = \"app\"\nalgorithms = [\"HS256\"]\nsecret_env = "
      "\"HERALD_AUTH_SECRET\"\n");
  const Config c = load(path, true, {{"HERALD_API_KEY", "k"}, {"HERALD_AUTH_SECRET", "s"}}, {});
  ASSERT_EQ(c.api.keys.size(), 1u);
  EXPECT_EQ(c.api.keys[0].key_env, "HERALD_API_KEY");
  // Without the file naming it, HERALD_API_KEY is the clients' variable
  // (herald pub, @herald/server), exported beside the server: ignored; a
  // near miss of a real [api] key is still an error.
  EXPECT_NO_THROW(load("", false, {{"HERALD_API_KEY", "k"}}, {}));
  EXPECT_THROW(load("", false, {{"HERALD_API_KEYS", "k"}}, {}), ConfigError);
}

TEST_F(ConfigTest, EnvironmentValuesThatAreNotNumbersNameTheVariable) {
  for (const char* bad : {"abc", "", "12abc", "1.5", "0x10", "25s", "--1"}) {
    EXPECT_THAT(env_error({{"HERALD_LIMITS_PING_INTERVAL_MS", bad}}),
                AllOf(StartsWith("HERALD_LIMITS_PING_INTERVAL_MS: expected an integer number of "
                                 "milliseconds for limits.ping_interval_ms (got '" +
                                 std::string(bad) + "')")));
  }
  EXPECT_THAT(env_error({{"HERALD_SERVER_WORKERS", "four"}}),
              StartsWith("HERALD_SERVER_WORKERS: expected an integer for server.workers"));
  EXPECT_THAT(env_error({{"HERALD_HISTORY_SIZE", "99999999999999999999999"}}),
              StartsWith("HERALD_HISTORY_SIZE: expected an integer"));
}

TEST_F(ConfigTest, StringValueErrorsNameTheKey) {
  EXPECT_THAT(
      file_error("[server]\nlisten = \"abc\"\n"),
      AllOf(StartsWith("server.listen: expected host:port (got 'abc')"), HasSubstr("line 2")));
  EXPECT_THAT(file_error("[server]\nws_path = \"ws\"\n"),
              StartsWith("server.ws_path: must start with '/' (got 'ws')"));
  EXPECT_THAT(file_error("[server]\nws_path = \"/ws?x=1\"\n"), StartsWith("server.ws_path:"));
  EXPECT_THAT(file_error("[server]\nlog_level = \"verbose\"\n"),
              StartsWith("server.log_level: unknown log level 'verbose' (expected trace, debug, "
                         "info, warn, error, off)"));
  EXPECT_THAT(file_error("[engine]\ntype = \"foo\"\n"),
              StartsWith("engine.type: unknown engine 'foo' (expected memory, sqlite, redis)"));
  EXPECT_THAT(file_error("[engine]\ndurability = \"extra\"\n"),
              StartsWith("engine.durability: unknown durability 'extra' (expected normal, full)"));
  EXPECT_THAT(file_error("[engine]\ndata_dir = \"\"\n"),
              StartsWith("engine.data_dir: must not be empty"));
  EXPECT_THAT(env_error({{"HERALD_ENGINE_TYPE", "rediss"}}),
              AllOf(StartsWith("engine.type: unknown engine 'rediss'"),
                    HasSubstr("(from HERALD_ENGINE_TYPE)")));
  // A bad Redis URL is refused at load, and the message never holds its password.
  const std::string bad_url =
      env_error({{"HERALD_ENGINE_REDIS_URL", "redis://u:s3cret@host:notaport"}});
  EXPECT_THAT(bad_url,
              AllOf(StartsWith("engine.redis_url: "), HasSubstr("(from HERALD_ENGINE_REDIS_URL)"),
                    Not(HasSubstr("s3cret"))));
  EXPECT_THAT(file_error("[engine]\nredis_prefix = \"a:b\"\n"),
              StartsWith("engine.redis_prefix: must be non-empty"));
  for (const char* bad : {"example.com", "https://", "https://a.example/", "https://a.example/x",
                          "://a", "https://a b"}) {
    EXPECT_THAT(env_error({{"HERALD_SERVER_ALLOWED_ORIGINS", bad}}),
                AllOf(StartsWith("server.allowed_origins: '"), HasSubstr("is not an origin"),
                      HasSubstr("HERALD_SERVER_ALLOWED_ORIGINS")))
        << bad;
  }
  Overrides o;
  o.listen = "host:99999";
  EXPECT_THAT(flag_error(o), AllOf(StartsWith("server.listen:"), HasSubstr("(from --listen)")));
  o = {};
  o.log_level = "loud";
  EXPECT_THAT(flag_error(o), AllOf(StartsWith("server.log_level:"), HasSubstr("--log-level")));
}

TEST_F(ConfigTest, ServerTlsKeys) {
  const Config c = load(write(R"([server]
tls_cert_file = "/etc/herald/chain.pem"
tls_key_file = "/etc/herald/key.pem"
listen_plain = "127.0.0.1:8081"
)"),
                        true, {}, {});
  EXPECT_TRUE(c.server.tls());
  EXPECT_EQ(c.server.tls_cert_file, "/etc/herald/chain.pem");
  EXPECT_EQ(c.server.tls_key_file, "/etc/herald/key.pem");
  EXPECT_EQ(c.server.listen_plain_host, "127.0.0.1");
  EXPECT_EQ(c.server.listen_plain_port, 8081);
  EXPECT_FALSE(load("", false, {}, {}).server.tls());
  EXPECT_FALSE(load("", false, {}, {}).server.has_listen_plain());

  // A certificate needs its key, and the other way round.
  for (const char* one : {"tls_cert_file", "tls_key_file"})
    EXPECT_THAT(file_error(std::string("[server]\n") + one + " = \"x.pem\"\n"),
                StartsWith("server.tls_cert_file and server.tls_key_file: set both"))
        << one;
  // A plaintext listener only makes sense beside a TLS one.
  EXPECT_THAT(env_error({{"HERALD_SERVER_LISTEN_PLAIN", "127.0.0.1:8081"}}),
              StartsWith("server.listen_plain: is set, but TLS is off"));
  EXPECT_THAT(env_error({{"HERALD_SERVER_LISTEN_PLAIN", "nope"}}),
              StartsWith("server.listen_plain: expected host:port"));
}

TEST_F(ConfigTest, RedisTlsKeys) {
  const Config c = load(write(R"([engine]
type = "redis"
redis_url = "rediss://redis.internal:6380"
redis_tls_ca_file = "/etc/herald/redis ca.pem"
redis_tls_cert_file = "client.pem"
redis_tls_key_file = "client.key"
redis_tls_server_name = "redis.example.com"
)"),
                        true, {}, {});
  EXPECT_EQ(c.engine.redis_tls_ca_file, "/etc/herald/redis ca.pem");  // a path may hold spaces
  EXPECT_EQ(c.engine.redis_tls_cert_file, "client.pem");
  EXPECT_EQ(c.engine.redis_tls_key_file, "client.key");
  EXPECT_EQ(c.engine.redis_tls_server_name, "redis.example.com");

  // A client certificate is a certificate and its key.
  for (const char* one : {"redis_tls_cert_file", "redis_tls_key_file"})
    EXPECT_THAT(file_error(std::string("[engine]\ntype = \"redis\"\nredis_url = \"rediss://h\"\n") +
                           one + " = \"x.pem\"\n"),
                StartsWith("engine.redis_tls_cert_file and engine.redis_tls_key_file: set both"))
        << one;
  // TLS settings with a plain redis:// URL would leave the connection in
  // plain text: refused, whichever layer set them.
  EXPECT_THAT(file_error("[engine]\ntype = \"redis\"\nredis_tls_ca_file = \"ca.pem\"\n"),
              AllOf(StartsWith("engine.redis_tls_ca_file: is set, but engine.redis_url is not a "
                               "rediss:// URL"),
                    HasSubstr("would not use TLS")));
  EXPECT_THAT(env_error({{"HERALD_ENGINE_TYPE", "redis"},
                         {"HERALD_ENGINE_REDIS_TLS_SERVER_NAME", "redis.example.com"}}),
              StartsWith("engine.redis_tls_server_name: is set, but"));
  EXPECT_THAT(env_error({{"HERALD_ENGINE_TYPE", "redis"},
                         {"HERALD_ENGINE_REDIS_URL", "unix:///run/redis.sock"},
                         {"HERALD_ENGINE_REDIS_TLS_CERT_FILE", "c.pem"},
                         {"HERALD_ENGINE_REDIS_TLS_KEY_FILE", "k.pem"}}),
              StartsWith("engine.redis_tls_cert_file: is set, but"));
  // Other engines do not read them.
  EXPECT_EQ(
      load("", false, {{"HERALD_ENGINE_REDIS_TLS_CA_FILE", "ca.pem"}}, {}).engine.redis_tls_ca_file,
      "ca.pem");
  EXPECT_THAT(file_error("[engine]\nredis_tls_server_name = \"a b\"\n"),
              StartsWith("engine.redis_tls_server_name: must not contain spaces"));
}

TEST_F(ConfigTest, ParseListen) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  for (const Case& c : {Case{"127.0.0.1:8081", "127.0.0.1", 8081}, Case{":9000", "0.0.0.0", 9000},
                        Case{"9001", "0.0.0.0", 9001}, Case{"[::1]:443", "::1", 443},
                        Case{"[::]:80", "::", 80}, Case{"localhost:1", "127.0.0.1", 1},
                        Case{"0.0.0.0:65535", "0.0.0.0", 65535}, Case{":0", "0.0.0.0", 0}}) {
    std::string host = "unchanged";
    uint16_t port = 1;
    parse_listen("k", c.text, host, port);
    EXPECT_EQ(host, c.host) << c.text;
    EXPECT_EQ(port, c.port) << c.text;
  }
  for (const char* bad : {"",
                          "abc",
                          ":",
                          "host:",
                          "host:http",
                          "host:65536",
                          "host:123456",
                          "::1:8080",
                          "[::1]",
                          "[::1]8080",
                          "[]:80",
                          "[::1",
                          "a b:80",
                          "h:-1",
                          "h:+80",
                          "[zz]:80",
                          "http://h:80",
                          "example.com:80",
                          "1.2.3:80",
                          "[127.0.0.1]:80",
                          "256.0.0.1:80"}) {
    std::string host = "unchanged";
    uint16_t port = 1;
    try {
      parse_listen("server.listen", bad, host, port);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), AllOf(StartsWith("server.listen: expected host:port"),
                                  HasSubstr("(got '" + std::string(bad) + "')")));
    }
    EXPECT_EQ(host, "unchanged");
    EXPECT_EQ(port, 1);
  }
}

TEST_F(ConfigTest, LogLevelIsCaseInsensitive) {
  Overrides o;
  o.log_level = "Debug";
  EXPECT_EQ(load("", false, {}, o).server.log_level, "debug");
}

TEST_F(ConfigTest, DescribeKeysListsEveryKeyDefaultAndVariable) {
  const std::string text = describe_keys();
  for (const auto& [key, var] : kAllKeys) {
    const std::string name = key.substr(key.find('.') + 1);
    EXPECT_THAT(text, HasSubstr("  " + name + " = ")) << key;
    EXPECT_THAT(text, HasSubstr(var)) << key;
  }
  for (const char* section : {"[server]", "[limits]", "[history]", "[engine]"})
    EXPECT_THAT(text, HasSubstr(section));
  EXPECT_THAT(text, HasSubstr("listen = \"0.0.0.0:8080\""));
  EXPECT_THAT(text, HasSubstr("ping_interval_ms = 25000"));
  EXPECT_THAT(text, HasSubstr("allowed_origins = []"));
  EXPECT_THAT(text, HasSubstr("HERALD_CONFIG"));
}

TEST_F(ConfigTest, ToTomlRoundTrips) {
  EXPECT_EQ(load(write(to_toml(Config{})), true, {}, {}), Config{});
  const Config custom = load(write(kFullFile, "full.toml"), true, {}, {});
  EXPECT_EQ(load(write(to_toml(custom), "out.toml"), true, {}, {}), custom);
  Config v6;
  v6.server.listen_host = "::1";
  v6.server.static_dir = "dir with \"quotes\"\\";
  EXPECT_THAT(to_toml(v6), HasSubstr("listen = \"[::1]:8080\""));
  EXPECT_EQ(load(write(to_toml(v6), "v6.toml"), true, {}, {}), v6);
}

const char* kNamespacesFile = R"([history]
size = 50
ttl_ms = 60000

[defaults]
allow_unknown = false
recover = false
max_message_bytes = 1000
schema = "schemas/default.json"

[namespaces.chat]
history_size = 10
client_publish = false
schema = "/abs/chat.json"

[namespaces.feed]
strict_events = true
presence = true
join_leave = true

[namespaces."v1.odd-name_1"]
history_ttl_ms = 0
schema = ""
)";

TEST_F(ConfigTest, NamespacesInheritWhatTheyLeaveOutFromDefaults) {
  const Config c = load(write(kNamespacesFile), true, {}, {});
  EXPECT_FALSE(c.defaults.allow_unknown);
  EXPECT_EQ(c.defaults.options.history_size, 50u);  // from [history]
  EXPECT_EQ(c.defaults.options.history_ttl, 60000ms);
  EXPECT_FALSE(c.defaults.options.recover);
  EXPECT_EQ(c.defaults.options.publish_access, "public");
  EXPECT_EQ(c.defaults.options.max_message_bytes, 1000u);
  EXPECT_EQ(c.defaults.options.schema, (dir_ / "schemas" / "default.json").string());
  ASSERT_EQ(c.namespaces.size(), 3u);

  const auto& chat = c.namespaces.at("chat");
  EXPECT_EQ(chat.history_size, 10u);
  EXPECT_EQ(chat.history_ttl, 60000ms);
  EXPECT_FALSE(chat.recover);
  EXPECT_EQ(chat.publish_access, "none");
  EXPECT_EQ(chat.max_message_bytes, 1000u);
  EXPECT_EQ(chat.schema, "/abs/chat.json");
  EXPECT_FALSE(chat.strict_events);

  const auto& feed = c.namespaces.at("feed");
  EXPECT_EQ(feed.history_size, 50u);
  EXPECT_TRUE(feed.strict_events);
  EXPECT_TRUE(feed.presence);
  EXPECT_TRUE(feed.join_leave);
  EXPECT_EQ(feed.schema, c.defaults.options.schema);

  const auto& odd = c.namespaces.at("v1.odd-name_1");
  EXPECT_EQ(odd.history_ttl, 0ms);
  EXPECT_EQ(odd.schema, "");
}

TEST_F(ConfigTest, HistoryFromEnvironmentIsTheDefaultRetentionOfNamespaces) {
  const Config c = load(write("[namespaces.chat]\nrecover = false\n[namespaces.log]\n"
                              "history_size = 3\n"),
                        true, {{"HERALD_HISTORY_SIZE", "7"}, {"HERALD_HISTORY_TTL_MS", "9"}}, {});
  EXPECT_EQ(c.defaults.options.history_size, 7u);
  EXPECT_EQ(c.namespaces.at("chat").history_size, 7u);
  EXPECT_EQ(c.namespaces.at("chat").history_ttl, 9ms);
  EXPECT_EQ(c.namespaces.at("log").history_size, 3u);
}

TEST_F(ConfigTest, CompressionKeysAreReadAndChecked) {
  const Config defaults = load("", false, {}, {});
  EXPECT_FALSE(defaults.server.compression) << "permessage-deflate is opt-in";
  EXPECT_EQ(defaults.server.compression_min_bytes, 256u);
  EXPECT_EQ(defaults.server.compression_level, 6);
  const Config c = load(write("[server]\ncompression = true\ncompression_min_bytes = 0\n"
                              "compression_level = 9\n"),
                        true, {}, {});
  EXPECT_TRUE(c.server.compression);
  EXPECT_EQ(c.server.compression_min_bytes, 0u);
  EXPECT_EQ(c.server.compression_level, 9);
  EXPECT_EQ(
      load("", false, {{"HERALD_SERVER_COMPRESSION_LEVEL", "1"}}, {}).server.compression_level, 1);
  EXPECT_THAT(env_error({{"HERALD_SERVER_COMPRESSION_LEVEL", "0"}}),
              AllOf(StartsWith("server.compression_level: must be between 1 and 9"),
                    HasSubstr("HERALD_SERVER_COMPRESSION_LEVEL")));
  EXPECT_THAT(file_error("[server]\ncompression_level = 10\n"),
              StartsWith("server.compression_level: must be between 1 and 9"));
}

TEST_F(ConfigTest, BooleanKeys) {
  EXPECT_TRUE(
      load(write("[server]\nallow_remote_admin = true\n"), true, {}, {}).server.allow_remote_admin);
  EXPECT_TRUE(load("", false, {{"HERALD_SERVER_ALLOW_REMOTE_ADMIN", " TRUE "}}, {})
                  .server.allow_remote_admin);
  EXPECT_FALSE(load("", false, {{"HERALD_SERVER_ALLOW_REMOTE_ADMIN", "false"}}, {})
                   .server.allow_remote_admin);
  EXPECT_THAT(env_error({{"HERALD_SERVER_ALLOW_REMOTE_ADMIN", "1"}}),
              StartsWith("HERALD_SERVER_ALLOW_REMOTE_ADMIN: expected true or false for "
                         "server.allow_remote_admin (got '1')"));
  EXPECT_THAT(file_error("[server]\nallow_remote_admin = 1\n"),
              StartsWith("server.allow_remote_admin: expected a boolean (true or false) (got "
                         "integer)"));
}

TEST_F(ConfigTest, NamespaceOfAChannel) {
  EXPECT_EQ(namespace_of("chat:lobby:x"), "chat");
  EXPECT_EQ(namespace_of("lobby"), "");
  EXPECT_EQ(namespace_of(":x"), "");
}

TEST_F(ConfigTest, BadNamespaceOptionsNameTheKey) {
  EXPECT_THAT(file_error("[namespaces.chat]\nrecovr = true\n"),
              AllOf(StartsWith("namespaces.chat.recovr: unknown key (did you mean "
                               "namespaces.chat.recover?)"),
                    HasSubstr("line 2")));
  EXPECT_THAT(file_error("[namespaces.chat]\nrecover = \"yes\"\n"),
              StartsWith("namespaces.chat.recover: expected a boolean (true or false) (got "
                         "string)"));
  EXPECT_THAT(file_error("[namespaces.chat]\nmax_message_bytes = 0\n"),
              AllOf(StartsWith("namespaces.chat.max_message_bytes: must be between 2 and"),
                    HasSubstr("line 2")));
  EXPECT_THAT(file_error("[namespaces.chat]\nhistory_ttl_ms = -1\n"),
              StartsWith("namespaces.chat.history_ttl_ms: must be between 0 and"));
  EXPECT_THAT(file_error("[defaults]\nhistory_size = 5\n"),
              StartsWith("defaults.history_size: the default is set by history.size"));
  EXPECT_THAT(file_error("[defaults]\nhistory_ttl_ms = 5\n"),
              StartsWith("defaults.history_ttl_ms: the default is set by history.ttl_ms"));
  EXPECT_THAT(file_error("[defaults]\nallow_unknwn = false\n"),
              StartsWith("defaults.allow_unknwn: unknown key (did you mean "
                         "defaults.allow_unknown?)"));
  EXPECT_THAT(file_error("[namespaces.chat]\nallow_unknown = false\n"),
              StartsWith("namespaces.chat.allow_unknown: allow_unknown belongs in [defaults]"));
  EXPECT_THAT(file_error("[namespaces.\"a:b\"]\nrecover = true\n"),
              StartsWith("namespaces.\"a:b\": namespace name must not contain ':'"));
  EXPECT_THAT(file_error("[namespaces.\"\"]\nrecover = true\n"),
              StartsWith("namespaces.\"\": namespace name must not be empty"));
  EXPECT_THAT(file_error("namespaces = 3\n"),
              StartsWith("namespaces: expected a table, i.e. [namespaces] (got integer)"));
  EXPECT_THAT(file_error("[namespaces]\nchat = 3\n"),
              StartsWith("namespaces.chat: expected a table"));
  EXPECT_THAT(file_error("defaults = []\n"), StartsWith("defaults: expected a table"));
  EXPECT_THAT(env_error({{"HERALD_DEFAULTS_RECOVER", "false"}}),
              StartsWith("HERALD_DEFAULTS_RECOVER: [defaults] and [namespaces.*] are set in the "
                         "config file only"));
  EXPECT_THAT(env_error({{"HERALD_NAMESPACES_CHAT_RECOVER", "false"}}),
              StartsWith("HERALD_NAMESPACES_CHAT_RECOVER:"));
}

TEST_F(ConfigTest, NamespacesRoundTripThroughToToml) {
  const Config c = load(write(kNamespacesFile), true, {}, {});
  const std::string text = to_toml(c);
  EXPECT_THAT(text, HasSubstr("[namespaces.\"v1.odd-name_1\"]"));
  EXPECT_THAT(text, HasSubstr("[namespaces.chat]"));
  EXPECT_EQ(load(write(text, "out.toml"), true, {}, {}), c);
}

TEST_F(ConfigTest, RestartRequiredListsOnlyKeysThatCannotBeReloaded) {
  const Config running = load(write(kNamespacesFile), true, {}, {});
  Config next = running;
  next.namespaces.clear();
  next.defaults.allow_unknown = true;
  next.defaults.options.strict_events = true;
  EXPECT_TRUE(restart_required(running, next).empty());
  next.server.workers = 3;
  next.engine.type = "memory";  // not the default
  next.history.size = 5;
  EXPECT_EQ(restart_required(running, next),
            (std::vector<std::string>{"server.workers", "history.size", "engine.type"}));
}

TEST_F(ConfigTest, DescribeKeysListsNamespaceOptions) {
  const std::string text = describe_keys();
  EXPECT_THAT(text, HasSubstr("[namespaces.<name>]"));
  EXPECT_THAT(text, HasSubstr("  allow_unknown = true"));
  for (const auto& name : kNamespaceKeys) EXPECT_THAT(text, HasSubstr("  " + name + " = ")) << name;
}

TEST_F(ConfigTest, ProcessEnvironment) {
  ASSERT_EQ(setenv("HERALD_TEST_PROCESS_ENV", "a=b", 1), 0);
  const auto env = process_environment();
  unsetenv("HERALD_TEST_PROCESS_ENV");
  ASSERT_TRUE(env.count("HERALD_TEST_PROCESS_ENV"));
  EXPECT_EQ(env.at("HERALD_TEST_PROCESS_ENV"), "a=b");
}

// herald.example.toml and docs/config.md live at the repository root; find
// them from this file's path.
std::optional<std::string> repo_file(const std::string& relative) {
  const fs::path path = fs::path(__FILE__).parent_path() / ".." / ".." / relative;
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(ConfigTest, ExampleFileHasEveryKeyAtItsDefault) {
  const auto text = repo_file("herald.example.toml");
  if (!text) GTEST_SKIP() << "herald.example.toml not found from " << __FILE__;
  EXPECT_EQ(load(write(*text), true, {}, {}), Config{});
  for (const auto& [key, var] : kAllKeys) {
    const std::string name = key.substr(key.find('.') + 1);
    EXPECT_THAT(*text, HasSubstr("\n" + name + " = ")) << key;
  }
  EXPECT_THAT(*text, HasSubstr("\n[defaults]\nallow_unknown = true\n"));
  for (const auto& name : kNamespaceKeys)  // [defaults] or the commented namespace example
    EXPECT_THAT(*text, HasSubstr(name + " = ")) << name;
}

TEST_F(ConfigTest, DocsDescribeEveryKey) {
  const auto text = repo_file("docs/config.md");
  if (!text) GTEST_SKIP() << "docs/config.md not found from " << __FILE__;
  for (const auto& [key, var] : kAllKeys) {
    EXPECT_THAT(*text, HasSubstr("`" + key + "`")) << key;
    EXPECT_THAT(*text, HasSubstr("`" + var + "`")) << var;
  }
  EXPECT_THAT(*text, HasSubstr("`defaults.allow_unknown`"));
  for (const auto& name : kNamespaceKeys) EXPECT_THAT(*text, HasSubstr("`" + name + "`")) << name;
}

TEST_F(ConfigTest, AuthAndApiKeysAreReadAndChecked) {
  const std::string path = write(R"([auth]
issuer = "https://id.example"
[[auth.keys]]
name = "app"
algorithms = ["HS256", "HS512"]
secret_env = "APP_SECRET"
[[auth.keys]]
name = "idp"
kid = "k1"
algorithms = ["RS256"]
public_key_file = "keys/idp.pem"
use = "connection"
[[api.keys]]
name = "backend"
sha256 = "AB0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
scopes = ["publish", "history"]
[namespaces.dm]
user_channels = true
anonymous = false
subscribe_access = "capability"
client_publish = false
)");
  const Config c = load(path, true, {}, {});
  ASSERT_EQ(c.auth.keys.size(), 2u);
  EXPECT_EQ(c.auth.keys[0].secret_env, "APP_SECRET");
  EXPECT_EQ(c.auth.keys[0].use, "both");
  EXPECT_EQ(c.auth.keys[1].public_key_file, (dir_ / "keys/idp.pem").lexically_normal().string());
  EXPECT_EQ(c.auth.issuer, "https://id.example");
  EXPECT_TRUE(c.auth.configured());
  ASSERT_EQ(c.api.keys.size(), 1u);
  EXPECT_EQ(c.api.keys[0].sha256.substr(0, 4), "ab01");  // lower-cased
  const auto& dm = c.namespaces.at("dm");
  EXPECT_TRUE(dm.user_channels);
  EXPECT_EQ(dm.anonymous, std::optional<bool>(false));
  EXPECT_EQ(dm.subscribe_access, "capability");
  EXPECT_EQ(dm.publish_access, "none");  // client_publish = false
  EXPECT_FALSE(c.defaults.options.anonymous.has_value());
  EXPECT_EQ(load(write(to_toml(c), "out.toml"), true, {}, {}), c);
}

TEST_F(ConfigTest, BadAuthKeysAreRefusedByName) {
  const auto key = [](std::string body) { return "[[auth.keys]]\nname = \"k\"\n" + body; };
  EXPECT_THAT(file_error(key("algorithms = [\"HS256\"]\n")),
              HasSubstr("needs exactly one of secret"));
  EXPECT_THAT(file_error(key("algorithms = [\"none\"]\nsecret = \"x\"\n")),
              HasSubstr("unknown algorithm 'none'"));
  EXPECT_THAT(file_error(key("algorithms = [\"EdDSA\"]\nsecret = \"x\"\n")),
              HasSubstr("EdDSA is not supported"));
  EXPECT_THAT(file_error(key("algorithms = [\"HS256\", \"RS256\"]\nsecret = \"x\"\n")),
              HasSubstr("cannot share a key"));
  EXPECT_THAT(file_error(key("algorithms = [\"RS256\"]\nsecret = \"x\"\n")),
              HasSubstr("need public_key_file"));
  EXPECT_THAT(file_error(key("algorithms = [\"HS256\"]\nsecret = \"x\"\nuse = \"all\"\n")),
              HasSubstr("unknown use 'all'"));
  EXPECT_THAT(file_error(key("algorithms = [\"HS256\"]\nsecret = \"x\"\nsecrt = 1\n")),
              HasSubstr("auth.keys[0].secrt: unknown key"));
  EXPECT_THAT(file_error("[auth]\nkeys = 3\n"), HasSubstr("expected an array of tables"));
  EXPECT_THAT(file_error("[[api.keys]]\nname = \"b\"\nkey = \"short\"\nscopes = [\"publish\"]\n"),
              HasSubstr("too short"));
  EXPECT_THAT(file_error("[[api.keys]]\nname = \"b\"\nkey = \"0123456789abcdef\"\n"),
              HasSubstr("scopes: required"));
  EXPECT_THAT(file_error("[[api.keys]]\nname = \"b\"\nkey = \"0123456789abcdef\"\n"
                         "scopes = [\"root\"]\n"),
              HasSubstr("unknown scope 'root'"));
  EXPECT_THAT(file_error("[namespaces.x]\npublish_access = \"everyone\"\n"),
              HasSubstr("unknown access level 'everyone'"));
  EXPECT_THAT(file_error("[namespaces.x]\nsubscribe_access = \"none\"\n"),
              HasSubstr("unknown access level 'none'"));
  // Secrets never appear in messages.
  EXPECT_THAT(file_error("[[auth.keys]]\nname = \"k\"\nalgorithms = [\"RS256\"]\n"
                         "secret = \"hunter2-secret\"\n"),
              ::testing::Not(HasSubstr("hunter2")));
}

TEST_F(ConfigTest, ProxyHooks) {
  const auto cfg =
      load(write("[proxy]\nconnect_url = \"http://127.0.0.1:3000/api/herald/connect\"\n"
                 "publish_url = \"http://localhost:3000/publish\"\n"
                 "forward_headers = [\"Authorization\"]\n"
                 "forward_cookies = [\"session\"]\n"
                 "static_headers = [\"X-Herald-Secret: s3cret\"]\n"
                 "[namespaces.chat]\nproxy_publish = true\n"),
           true, Env{}, {});
  EXPECT_EQ(cfg.proxy.connect_url, "http://127.0.0.1:3000/api/herald/connect");
  EXPECT_EQ(cfg.proxy.forward_headers, std::vector<std::string>{"authorization"});
  EXPECT_EQ(cfg.proxy.forward_cookies, std::vector<std::string>{"session"});
  EXPECT_TRUE(cfg.namespaces.at("chat").proxy_publish);
  EXPECT_FALSE(cfg.namespaces.at("chat").proxy_subscribe);
  EXPECT_EQ(load(write("[proxy]\nconnect_url = \"https://app.example.com/x\"\n"), true, Env{}, {})
                .proxy.connect_url,
            "https://app.example.com/x");
  EXPECT_THAT(file_error("[proxy]\nrpc_url = \"ftp://x\"\n"),
              StartsWith("proxy.rpc_url: must start with http:// or https://"));
  EXPECT_THAT(file_error("[proxy]\nstatic_headers = [\"no colon here\"]\n"),
              StartsWith("proxy.static_headers: an entry is not"));
  // The message never quotes a static header (it may be a secret).
  EXPECT_THAT(file_error("[proxy]\nstatic_headers = [\"Bad Name: s3cret\"]\n"),
              ::testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(file_error("[proxy]\nrpc_routes = [\"todos.\"]\n"),
              StartsWith("proxy.rpc_routes: 'todos.': expected"));
  EXPECT_EQ(load(write("[proxy]\nrpc_routes = [\"todos.=http://127.0.0.1:3000/todos\"]\n"), true,
                 Env{}, {})
                .proxy.rpc_routes.size(),
            1u);
  EXPECT_THAT(file_error("[namespaces.chat]\nproxy_subscribe = true\n"),
              StartsWith("namespaces.chat.proxy_subscribe: needs proxy.subscribe_url"));
}

}  // namespace
}  // namespace herald::config
