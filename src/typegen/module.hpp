// `herald typegen`'s output: one TypeScript module, types only, declaring
// `HeraldSchema`, the typed-events contract @herald/client is generic over
// (README, "Typed events"): per configured namespace, and for [defaults],
// the map from event name to the payload publishers send and the one
// subscribers receive; and, with `[proxy] rpc_schema`, per rpc method the
// data `client.rpc` sends and the result it resolves with. Reads the schema
// files the config names; writes nothing.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"
#include "typegen/schema_types.hpp"

namespace herald::typegen {

// The module for `config`, loaded from `config_path` (named in the module's
// header comment). Throws TypegenError naming the schema file when one cannot
// be read or turned into types.
std::string generate_module(const config::Config& config, std::string_view config_path);

}  // namespace herald::typegen
