// serve(): process-level wiring of engine, node, workers and signals; see
// server.hpp.
#include "server/server.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <optional>
#include <thread>

#include "auth/abuse_limits.hpp"
#include "auth/api_keys.hpp"
#include "auth/authenticator.hpp"
#include "auth/secrets.hpp"
#include "core/namespace_table.hpp"
#include "core/node.hpp"
#include "engine/engine.hpp"
#include "engine/redis/redis_engine.hpp"
#include "engine/redis/redis_tls.hpp"
#include "engine/sqlite/sqlite_engine.hpp"
#include "net/tls_context.hpp"
#include "server/memory_trim.hpp"
#include "server/worker.hpp"

namespace herald::server {

namespace {

// The HTTP API keys of [[api.keys]], their secrets read; null when none.
std::shared_ptr<const auth::ApiKeys> make_api_keys(const config::ApiConfig& api) {
  if (api.keys.empty()) return nullptr;
  std::vector<auth::ApiKeySpec> specs;
  for (const auto& k : api.keys) {
    auth::ApiKeySpec spec;
    spec.name = k.name;
    if (k.sha256.empty())
      spec.key = auth::read_secret("api.keys '" + k.name + "'", k.key, k.key_env, k.key_file);
    else
      spec.sha256_hex = k.sha256;
    for (const auto& scope : k.scopes)
      if (auto s = auth::parse_scope(scope)) spec.scopes |= static_cast<auth::ScopeSet>(*s);
    specs.push_back(std::move(spec));
  }
  try {
    return std::make_shared<const auth::ApiKeys>(specs);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("api.keys: ") + e.what());
  }
}

std::unique_ptr<engine::Engine> make_engine(const config::Config& cfg) {
  if (cfg.engine.type == "memory") {
    return engine::make_memory_engine(
        engine::MemoryLimits{cfg.history.size, static_cast<int64_t>(cfg.history.ttl.count())});
  }
  if (cfg.engine.type == "sqlite") {
    engine::SqliteOptions o;
    o.data_dir = cfg.engine.data_dir;
    o.full_sync = cfg.engine.durability == "full";
    o.queue_limit = cfg.engine.queue_limit;
    o.max_events_per_channel = cfg.history.size;
    o.max_age_ms = static_cast<int64_t>(cfg.history.ttl.count());
    o.hot_window = cfg.engine.hot_window;
    o.channel_cache = cfg.engine.channel_cache;
    o.page_cache_kib = cfg.engine.page_cache_mb * 1024;
    auto sqlite = engine::make_sqlite_engine(o);  // throws naming the path on a bad data dir
    if (sqlite->epoch_renewed())
      spdlog::warn(
          "engine.data_dir '{}': the database holds fewer offsets than were already handed out "
          "(restored from a backup?) or {} is missing: every channel starts a new epoch",
          o.data_dir, engine::kSqliteOffsetsName);
    return sqlite;
  }
  if (cfg.engine.type == "redis") {
    engine::redis::RedisEngineOptions o;
    o.url = engine::redis::parse_redis_url(cfg.engine.redis_url);  // checked by the config
    o.connection.connect_timeout = cfg.engine.redis_connect_timeout;
    o.connection.command_timeout = cfg.engine.redis_command_timeout;
    o.connection.reconnect_max = cfg.engine.redis_reconnect_max;
    o.connection.reconnect_min = std::min(o.connection.reconnect_min, o.connection.reconnect_max);
    o.max_events_per_channel = cfg.history.size;
    o.max_age_ms = static_cast<int64_t>(cfg.history.ttl.count());
    o.idle_ttl_ms = static_cast<int64_t>(cfg.engine.redis_idle_ttl.count());
    o.prefix = cfg.engine.redis_prefix;
    o.cluster = cfg.engine.redis_cluster;
    o.sharded = cfg.engine.redis_cluster;  // SPUBLISH/SSUBSCRIBE: a cluster needs them
    o.presence_ttl_ms = static_cast<int64_t>(cfg.engine.redis_presence_ttl.count());
    if (o.url.tls) {
      // One TLS context for the engine, shared by every link through
      // o.connection (command connections, pub/sub, the seed read); throws
      // naming a file that cannot be loaded.
      o.connection.tls =
          engine::redis::make_redis_tls_context({.ca_file = cfg.engine.redis_tls_ca_file,
                                                 .cert_file = cfg.engine.redis_tls_cert_file,
                                                 .key_file = cfg.engine.redis_tls_key_file});
      o.connection.tls_server_name = cfg.engine.redis_tls_server_name;
    }
    // Throws naming the redacted URL when Redis cannot be reached at start.
    auto redis = engine::redis::make_redis_engine(o);
    spdlog::info("engine redis{} at {} (keys {}:*)", o.cluster ? " cluster" : "",
                 engine::redis::redacted(o.url), o.prefix);
    return redis;
  }
  throw std::runtime_error("engine.type: unsupported engine '" + cfg.engine.type + "'");
}

}  // namespace

void check(const config::Config& cfg) {
  // The steps of serve() that read and check something, in its order,
  // minus those with effects (the engine's files or connection, JWKS
  // fetches, the listening socket, threads).
  (void)core::NamespaceTable::build(cfg);
  auth::Authenticator authenticator(cfg.auth);
  (void)make_api_keys(cfg.api);
  auth::AbuseLimits abuse(cfg.rate_limits);
  if (cfg.engine.type == "redis" && engine::redis::parse_redis_url(cfg.engine.redis_url).tls)
    (void)engine::redis::make_redis_tls_context({.ca_file = cfg.engine.redis_tls_ca_file,
                                                 .cert_file = cfg.engine.redis_tls_cert_file,
                                                 .key_file = cfg.engine.redis_tls_key_file});
  (void)boost::asio::ip::make_address(cfg.server.listen_host);
  if (cfg.server.tls())
    (void)net::make_server_tls_context(cfg.server.tls_cert_file, cfg.server.tls_key_file);
  if (cfg.server.has_listen_plain())
    (void)boost::asio::ip::make_address(cfg.server.listen_plain_host);
}

int serve(const config::Config& cfg, const ConfigSource& source) {
  const unsigned workers =
      cfg.server.workers ? cfg.server.workers : std::max(1u, std::thread::hardware_concurrency());
  auto namespaces = core::NamespaceTable::build(cfg);  // a bad schema stops start-up here
  auth::Authenticator authenticator(cfg.auth);         // so does a bad key
  if (!authenticator.enabled())
    spdlog::warn(
        "no [[auth.keys]] and no JWKS configured: every connection is anonymous and may use "
        "every channel (see docs/security.md)");
  auto api_keys = make_api_keys(cfg.api);
  auth::AbuseLimits abuse(cfg.rate_limits);
  // Throws naming the file when the certificate or key cannot be used.
  std::unique_ptr<net::TlsCertificates> tls;
  if (cfg.server.tls()) {
    tls = std::make_unique<net::TlsCertificates>(cfg.server.tls_cert_file, cfg.server.tls_key_file);
    // OpenSSL writes to client sockets with write(2), not send(MSG_NOSIGNAL)
    // as Herald's own writes do: a peer gone mid-write must be an EPIPE, not
    // a signal that ends the process.
    std::signal(SIGPIPE, SIG_IGN);
  }
  if (!api_keys)
    spdlog::warn(
        "no [[api.keys]] configured: the HTTP API (publish, history, disconnect) is open to "
        "anyone who can reach it (see docs/security.md)");
  authenticator.start();
  auto engine = make_engine(cfg);
  core::Node node(workers, *engine, core::NodeOptions{cfg.history.max_request},
                  std::move(namespaces));
  std::atomic<size_t> connection_count{0};

  // Reloads run on the signal thread, off the workers' event loops (they
  // read and compile files); an HTTP request for one gets its answer posted
  // back to the worker that received it.
  boost::asio::io_context signals_io;
  Reloader reloader(source, cfg, node, tls.get());
  const ReloadFn reload = [&](boost::asio::any_io_executor reply_to,
                              std::function<void(ReloadOutcome)> done) {
    boost::asio::post(signals_io, [&reloader, reply_to, done = std::move(done)]() mutable {
      boost::asio::post(reply_to,
                        [outcome = reloader.reload(), done = std::move(done)] { done(outcome); });
    });
  };

  std::vector<std::unique_ptr<Worker>> pool;
  // Server actions (POST /api/disconnect, /api/unsubscribe) run on every
  // worker; the total goes back to the worker that received the request.
  const UserActionBroadcast user_action = [&pool](http::UserAction action,
                                                  boost::asio::any_io_executor reply_to,
                                                  std::function<void(size_t)> done) {
    struct Gather {
      http::UserAction action;
      std::function<void(size_t)> done;
      boost::asio::any_io_executor reply_to;
      std::atomic<size_t> total{0};
      std::atomic<size_t> left{0};
    };
    auto gather = std::make_shared<Gather>();
    gather->action = std::move(action);
    gather->done = std::move(done);
    gather->reply_to = std::move(reply_to);
    gather->left = pool.size();
    for (auto& w : pool) {
      boost::asio::post(w->executor(), [gather, &worker = *w] {
        gather->total += worker.apply(gather->action);
        if (--gather->left == 0)
          boost::asio::post(gather->reply_to, [gather] { gather->done(gather->total.load()); });
      });
    }
  };
  boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address(cfg.server.listen_host),
                                          cfg.server.listen_port);
  std::optional<boost::asio::ip::tcp::endpoint> plain_endpoint;
  if (cfg.server.has_listen_plain())
    plain_endpoint.emplace(boost::asio::ip::make_address(cfg.server.listen_plain_host),
                           cfg.server.listen_plain_port);
  const WorkerShared shared{authenticator, abuse, api_keys, user_action, tls.get()};
  for (unsigned i = 0; i < workers; ++i) {
    pool.push_back(std::make_unique<Worker>(i, cfg, node, connection_count, reload, shared));
    // With port 0 the first bind picks the port; the others share it.
    endpoint.port(pool.back()->listen(endpoint));
    if (plain_endpoint) plain_endpoint->port(pool.back()->listen_plain(*plain_endpoint));
  }
  spdlog::info("herald {} listening on {}:{}{} with {} workers, engine {}", HERALD_VERSION,
               cfg.server.listen_host, endpoint.port(), tls ? " (TLS)" : "", workers,
               engine->name());
  if (plain_endpoint)
    spdlog::info("plain HTTP listener on {}:{} (server.listen_plain)", cfg.server.listen_plain_host,
                 plain_endpoint->port());

  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signo);
    for (auto& w : pool) w->request_shutdown();
  });
  boost::asio::signal_set hangup(signals_io, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      spdlog::info("SIGHUP: reloading namespaces and schemas");
      reloader.reload();
      wait_hangup();
    });
  };
  wait_hangup();
  // After a wave of connections has closed, give the memory they used back
  // to the OS (memory_trim.hpp); on the signal thread, off the workers.
  MemoryTrimmer trimmer(signals_io, connection_count);
  trimmer.start();

  std::vector<std::thread> threads;
  for (auto& w : pool) threads.emplace_back([&w] { w->run(); });
  std::thread signal_thread([&] { signals_io.run(); });

  for (auto& t : threads) t.join();
  // The workers' io_contexts go with `pool`: an engine with its own thread
  // must stop posting results to them first.
  engine->stop();
  signals_io.stop();
  signal_thread.join();
  authenticator.stop();
  pool.clear();
  spdlog::info("stopped");
  return 0;
}

}  // namespace herald::server
