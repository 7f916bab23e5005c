// `herald serve`: builds the engine, the node and the workers from the
// config, binds the shared port, runs one thread per worker, and shuts down
// gracefully on SIGINT/SIGTERM (stop accepting, close WebSockets with 1001,
// flush, exit within the shutdown timeout). SIGHUP reloads the channel
// namespaces and schemas from `source` (see reloader.hpp).
#pragma once

#include "config/config.hpp"
#include "server/reloader.hpp"

namespace herald::server {

// Runs the server until a shutdown signal; returns the process exit code.
// Throws on start-up failures (bind errors, a bad schema file and the like).
int serve(const config::Config& cfg, const ConfigSource& source);

}  // namespace herald::server
