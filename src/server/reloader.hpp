// Reloading channel namespaces and their schemas while the server runs
// (SIGHUP and POST /api/admin/reload): re-reads the configuration from the
// sources it was started with, compiles the new namespaces, and hands them
// to the node, which switches every worker over without dropping a
// connection. With TLS on, it also re-reads the certificate and key
// (renewed certificates): new handshakes use them, open connections keep
// theirs. A configuration that does not load or compile (or a new
// certificate that does not load) is refused and the running one stays.
// Keys that only take effect at start-up are reported as needing a restart
// rather than silently ignored.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/node.hpp"
#include "net/tls_context.hpp"

namespace herald::server {

// Where the configuration came from at start-up.
struct ConfigSource {
  std::string path;
  bool path_is_explicit = false;
  config::Overrides overrides;
};

struct ReloadOutcome {
  bool ok = false;
  std::string error;                          // when !ok: why the new config was refused
  std::vector<std::string> restart_required;  // changed keys that wait for a restart
  size_t namespaces = 0;                      // configured namespaces now in force
};

class Reloader {
 public:
  // `tls`: the client certificates to re-read (null: TLS is off).
  Reloader(ConfigSource source, const config::Config& started, core::Node& node,
           net::TlsCertificates* tls = nullptr);

  // Loads, checks and applies the configuration; logs the outcome.
  // Thread-safe: reloads run one at a time.
  ReloadOutcome reload();

 private:
  std::mutex mutex_;
  ConfigSource source_;
  const config::Config started_;  // what the keys that cannot be reloaded still are
  core::Node& node_;
  net::TlsCertificates* tls_;
};

// Starts a reload away from the caller's thread; `done` runs on `reply_to`.
using ReloadFn = std::function<void(boost::asio::any_io_executor reply_to,
                                    std::function<void(ReloadOutcome)> done)>;

// {"ok":true,"namespaces":2,"restart_required":["server.workers"]} or
// {"ok":false,"error":"...","restart_required":[]}.
std::string to_json(const ReloadOutcome& outcome);

}  // namespace herald::server
