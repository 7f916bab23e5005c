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

// `herald check-config`: what serve() checks before it starts (schemas,
// keys and their secret files, TLS files, the listen address), without
// opening the engine, binding or starting anything. Throws what serve()
// would throw.
void check(const config::Config& cfg);

}  // namespace herald::server
