// Reloader: reloading namespaces and schemas at runtime; see reloader.hpp.
#include "server/reloader.hpp"

#include <spdlog/spdlog.h>

#include "core/namespace_table.hpp"
#include "protocol/messages.hpp"

namespace herald::server {

Reloader::Reloader(ConfigSource source, const config::Config& started, core::Node& node)
    : source_(std::move(source)), started_(started), node_(node) {}

ReloadOutcome Reloader::reload() {
  std::lock_guard lock(mutex_);
  ReloadOutcome outcome;
  try {
    const config::Config next = config::load(source_.path, source_.path_is_explicit,
                                             config::process_environment(), source_.overrides);
    node_.set_namespaces(core::NamespaceTable::build(next));
    outcome.ok = true;
    outcome.namespaces = next.namespaces.size();
    outcome.restart_required = config::restart_required(started_, next);
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
  spdlog::info("reloaded: {} namespaces", outcome.namespaces);
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
