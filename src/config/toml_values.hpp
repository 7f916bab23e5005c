// Internal to src/config: the typed values keys hold and the reading of
// them from TOML, shared by the key tables (config.cpp) and the lists of
// key tables (key_lists.cpp). Errors are ConfigError naming the key and
// where the value came from.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace herald::config::detail {

using Value = std::variant<int64_t, std::string, std::vector<std::string>, bool>;

enum class Type { integer, duration_ms, string, string_list, boolean };

// The JWT algorithms a key may allow (those auth/jwt.cpp verifies).
inline constexpr std::string_view kJwtAlgorithms[] = {"HS256", "HS384", "HS512", "RS256",
                                                      "RS384", "RS512", "PS256", "PS384",
                                                      "PS512", "ES256", "ES384", "ES512"};

std::string join(const auto& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Throws ConfigError unless `value` is one of `allowed`.
void check_one_of(const std::string& key, const std::string& value, std::string_view what,
                  const auto& allowed) {
  if (std::find(std::begin(allowed), std::end(allowed), value) != std::end(allowed)) return;
  throw ConfigError(key + ": unknown " + std::string(what) + " '" + value + "' (expected " +
                    join(allowed, ", ") + ")");
}

std::string to_lower(std::string_view s);
// A TOML basic string literal for `s`.
std::string quote(std::string_view s);
// `v` as TOML.
std::string render(const Value& v);
// "an integer", "a string", ... for messages.
std::string type_name(Type t);
std::string toml_type_name(toml::node_type t);
// "(in FILE, line N)".
std::string location(const std::string& file, const toml::source_region& where);
// The value of `node` as `type`; throws ConfigError naming `key` otherwise.
Value from_toml(const std::string& key, Type type, const toml::node& node, const std::string& file);

}  // namespace herald::config::detail
