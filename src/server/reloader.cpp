// Reloader: reloading namespaces and schemas at runtime; see reloader.hpp.
#include "server/reloader.hpp"

#include <spdlog/spdlog.h>

#include "core/namespace_table.hpp"
#include "protocol/messages.hpp"

namespace herald::server {

Reloader::Reloader(ConfigSource source, const config::Config& started, core::Node& node,
                   net::TlsCertificates* tls)
    : source_(std::move(source)), started_(started), node_(node), tls_(tls) {}

ReloadOutcome Reloader::reload() {
  std::lock_guard lock(mutex_);
  ReloadOutcome outcome;
  bool tls_reloaded = false;
  try {
    const config::Config next = config::load(source_.path, source_.path_is_explicit,
                                             config::process_environment(), source_.overrides);
    auto namespaces = core::NamespaceTable::build(next);
    // The certificates after everything else that may refuse, before
    // anything is applied: a refused reload changes nothing.
    const bool tls_reloads = tls_ && next.server.tls();
    if (tls_reloads) {
      if (auto why = tls_->reload(next.server.tls_cert_file, next.server.tls_key_file);
          !why.empty())
        throw std::runtime_error(why + " (new TLS connections keep the previous certificate)");
    }
    tls_reloaded = tls_reloads;
    node_.set_namespaces(std::move(namespaces));
    outcome.ok = true;
    outcome.namespaces = next.namespaces.size();
    outcome.restart_required = config::restart_required(started_, next);
    // Turning TLS on or off needs a restart; new files for it do not.
    if (tls_reloads)
      std::erase_if(outcome.restart_required,
                    [](const std::string& key) { return key.starts_with("server.tls_"); });
    // The engines take each channel's retention from the namespaces with
    // every append and read, so the default retention reloads with them.
    std::erase_if(outcome.restart_required, [](const std::string& key) {
      return key.starts_with("history.") && key != "history.max_request";
    });
  } catch (const std::exception& e) {  // config::ConfigError, schema::SchemaError
    outcome.error = e.what();
    spdlog::error("reload refused, the running configuration stays: {}", outcome.error);
    return outcome;
  }
  spdlog::info("reloaded: {} namespaces{}", outcome.namespaces,
               tls_reloaded ? ", TLS certificate and key re-read" : "");
  for (const auto& key : outcome.restart_required)
    spdlog::warn("reload: {} changed but takes effect only after a restart", key);
  return outcome;
}

std::string to_json(const ReloadOutcome& outcome) {
  std::string out = outcome.ok ? "{\"ok\":true" : "{\"ok\":false";
  if (outcome.ok) {
    out += ",\"namespaces\":" + std::to_string(outcome.namespaces);
  } else {
    out += ",\"error\":";
    protocol::append_json_string(out, outcome.error);
  }
  out += ",\"restart_required\":[";
  for (size_t i = 0; i < outcome.restart_required.size(); ++i) {
    if (i) out += ',';
    protocol::append_json_string(out, outcome.restart_required[i]);
  }
  return out + "]}";
}

}  // namespace herald::server
