// The `herald` command line: `herald serve` runs the server, `herald typegen`
// prints the TypeScript types of the configured event schemas, `herald
// check-config` validates the config as `serve` would without starting, and
// `sub`, `pub`, `history` and `presence` are the command-line client
// (src/cli, registered here only); `--help` on each command explains every
// option. A bad command line exits with 2. Config precedence: defaults < file
// (--config, HERALD_CONFIG or ./herald.toml) < HERALD_* environment < flags;
// SIGHUP re-reads the same sources to reload namespaces and schemas.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli/commands.hpp"
#include "config/config.hpp"
#include "log/logging.hpp"
#include "server/server.hpp"
#include "typegen/module.hpp"

namespace {

const char* const kConfigHelp =
    "TOML config file (default: $HERALD_CONFIG, else ./herald.toml if present)";

// Loads the config from `source.path` (--config), else $HERALD_CONFIG, else
// ./herald.toml if present, filling in `source` with the file used. Prints
// the error and returns nullopt when the config is bad.
std::optional<herald::config::Config> load_config(herald::server::ConfigSource& source) {
  source.path_is_explicit = !source.path.empty();
  if (!source.path_is_explicit) {
    if (const char* env = std::getenv("HERALD_CONFIG"); env && *env) {
      source.path = env;
      source.path_is_explicit = true;
    } else {
      source.path = herald::config::kDefaultConfigPath;
    }
  }
  try {
    return herald::config::load(source.path, source.path_is_explicit,
                                herald::config::process_environment(), source.overrides);
  } catch (const herald::config::ConfigError& e) {
    std::fprintf(stderr, "herald: config error: %s\n", e.what());
    return std::nullopt;
  }
}

// `herald typegen`: the module goes to `out_path`, or stdout when empty.
int typegen(const std::string& config_path, const std::string& out_path) {
  herald::server::ConfigSource source{config_path, false, {}};
  const auto cfg = load_config(source);
  if (!cfg) return 2;
  std::string module;
  try {
    module = herald::typegen::generate_module(*cfg, source.path);
  } catch (const herald::typegen::TypegenError& e) {
    std::fprintf(stderr, "herald typegen: %s\n", e.what());
    return 2;
  }
  if (out_path.empty()) {
    std::cout << module << std::flush;
    return std::cout ? 0 : 1;
  }
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  out << module;
  out.close();
  if (!out) {
    std::fprintf(stderr, "herald typegen: cannot write %s (%s)\n", out_path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  return 0;
}

}  // namespace

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
  serve->add_option("-c,--config", config_path, kConfigHelp);
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

  auto* typegen_cmd = app.add_subcommand(
      "typegen", "Print the TypeScript types of the namespaces' event schemas (HeraldSchema)");
  typegen_cmd->footer(
      "Prints a types-only TypeScript module declaring HeraldSchema, for\n"
      "new Herald<HeraldSchema>() in @herald/client, e.g.\n"
      "  herald typegen --config herald.toml > src/herald-types.ts\n"
      "Exit code 2 when the config or a schema file cannot be used.");
  std::string typegen_config, typegen_out;
  typegen_cmd->add_option("-c,--config", typegen_config, kConfigHelp);
  typegen_cmd->add_option("-o,--out", typegen_out, "Write the module to this file, not stdout");

  auto* check_cmd = app.add_subcommand(
      "check-config", "Load and validate the config as `serve` would, without starting");
  check_cmd->footer(
      "Checks every key, the namespaces and their schema files, keys and secret files, TLS\n"
      "files and the listen address, exactly as `serve` does before it starts; opens no\n"
      "database, connects to nothing, binds no port. Prints \"config ok: <path>\" and exits 0,\n"
      "or prints the error `serve` would print and exits with its code (2: config, 1: start).");
  std::string check_config_path;
  check_cmd->add_option("-c,--config", check_config_path, kConfigHelp);

  herald::cli::ClientCommands client_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error is 2, as the client's
    // exit codes document (CLI11's own codes are 100 and up).
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (auto code = client_commands.run()) return *code;

  if (check_cmd->parsed()) {
    herald::server::ConfigSource source{check_config_path, false, {}};
    const auto cfg = load_config(source);
    if (!cfg) return 2;
    try {
      herald::server::check(*cfg);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "herald: cannot start: %s\n", e.what());
      return 1;
    }
    if (source.path_is_explicit || std::ifstream(source.path))
      std::printf("config ok: %s\n", source.path.c_str());
    else
      std::printf("config ok: (no %s: defaults and environment)\n", source.path.c_str());
    return 0;
  }

  if (typegen_cmd->parsed()) return typegen(typegen_config, typegen_out);

  if (serve->parsed()) {
    if (*listen_opt) overrides.listen = listen;
    if (*workers_opt) overrides.workers = workers;
    if (*static_opt) overrides.static_dir = static_dir;
    if (*log_opt) overrides.log_level = log_level;
    herald::server::ConfigSource source{config_path, false, overrides};
    const auto cfg = load_config(source);
    if (!cfg) return 2;
    herald::log::configure(cfg->server.log_level, cfg->server.log_format);
    try {
      return herald::server::serve(*cfg, source);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "herald: cannot start: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
