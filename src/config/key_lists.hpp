// Internal to src/config: the lists of key tables, [[auth.keys]] and
// [[api.keys]] (one table per JWT verification key or HTTP API key), read
// from the config file with every field checked, and written back as TOML.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace herald::config::detail {

// `node` is the value of `auth.keys` / `api.keys` in `file`; relative paths
// are relative to `base_dir`. Throw ConfigError naming the entry and field.
std::vector<AuthKeyConfig> parse_auth_keys(const toml::node& node, const std::string& file,
                                           const std::filesystem::path& base_dir);
std::vector<ApiKeyConfig> parse_api_keys(const toml::node& node, const std::string& file,
                                         const std::filesystem::path& base_dir);

// The [[auth.keys]] and [[api.keys]] tables of `config` ("" when none).
std::string key_lists_to_toml(const Config& config);

}  // namespace herald::config::detail
