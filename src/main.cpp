// The `herald` command line: `herald serve` runs the server; `--help` on
// each command explains every option. Config precedence: defaults < file
// (--config, HERALD_CONFIG or ./herald.toml) < HERALD_* environment < flags;
// SIGHUP re-reads the same sources to reload namespaces and schemas.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "config/config.hpp"
#include "server/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "Herald: a realtime messaging server for web apps (WebSocket pub/sub, "
      "HTTP publish, history and recovery)",
      "herald"};
  app.set_version_flag("--version", HERALD_VERSION);
  app.require_subcommand(1);

  auto* serve = app.add_subcommand("serve", "Run the server");
  std::string config_path;
  herald::config::Overrides overrides;
  std::string listen, static_dir, log_level;
  unsigned workers = 0;
  serve->add_option("-c,--config", config_path,
                    "TOML config file (default: $HERALD_CONFIG, else ./herald.toml if present)");
  auto* listen_opt =
      serve->add_option("-l,--listen", listen, "Address to listen on, host:port (server.listen)");
  auto* workers_opt = serve->add_option("-w,--workers", workers,
                                        "Worker threads, 0 = one per core (server.workers)");
  auto* static_opt = serve->add_option(
      "--static-dir", static_dir, "Folder served over HTTP, \"\" to disable (server.static_dir)");
  auto* log_opt = serve->add_option("--log-level", log_level,
                                    "trace, debug, info, warn, error or off (server.log_level)");
  serve->footer("Every config key, its default and its environment variable:\n\n" +
                herald::config::describe_keys());

  CLI11_PARSE(app, argc, argv);

  if (serve->parsed()) {
    if (*listen_opt) overrides.listen = listen;
    if (*workers_opt) overrides.workers = workers;
    if (*static_opt) overrides.static_dir = static_dir;
    if (*log_opt) overrides.log_level = log_level;
    bool explicit_path = !config_path.empty();
    if (!explicit_path) {
      if (const char* env = std::getenv("HERALD_CONFIG"); env && *env) {
        config_path = env;
        explicit_path = true;
      } else {
        config_path = "herald.toml";
      }
    }
    herald::config::Config cfg;
    try {
      cfg = herald::config::load(config_path, explicit_path, herald::config::process_environment(),
                                 overrides);
    } catch (const herald::config::ConfigError& e) {
      std::fprintf(stderr, "herald: config error: %s\n", e.what());
      return 2;
    }
    spdlog::set_level(spdlog::level::from_str(cfg.server.log_level));
    try {
      return herald::server::serve(cfg, {config_path, explicit_path, overrides});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "herald: cannot start: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
