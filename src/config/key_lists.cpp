// [[auth.keys]] and [[api.keys]]: the lists of key tables; see key_lists.hpp.
#include "config/key_lists.hpp"

#include <algorithm>

#include "config/toml_values.hpp"

namespace herald::config::detail {

namespace {

constexpr std::string_view kKeyUses[] = {"connection", "subscription", "both"};
constexpr std::string_view kApiScopes[] = {"publish", "history", "admin", "presence", "destroy"};

// Reads the fields of one table of an array of tables (`key` is e.g.
// "auth.keys[0]"), refusing fields it was not asked for.
class EntryReader {
 public:
  EntryReader(std::string key, const toml::table& table, const std::string& file,
              std::vector<std::string_view> fields)
      : key_(std::move(key)), table_(table), file_(file) {
    for (const auto& [name_key, node] : table) {
      const std::string name(name_key.str());
      if (std::find(fields.begin(), fields.end(), name) != fields.end()) continue;
      throw ConfigError(key_ + "." + name + ": unknown key (expected " + join(fields, ", ") + ") " +
                        location(file, name_key.source()));
    }
  }
  std::string str(std::string_view field) const {
    const auto* node = table_.get(field);
    return node ? std::get<std::string>(from_toml(name(field), Type::string, *node, file_)) : "";
  }
  std::vector<std::string> list(std::string_view field) const {
    const auto* node = table_.get(field);
    if (!node) return {};
    return std::get<std::vector<std::string>>(
        from_toml(name(field), Type::string_list, *node, file_));
  }
  std::string path(std::string_view field, const std::filesystem::path& base_dir) const {
    const std::string p = str(field);
    return p.empty() ? p : std::filesystem::absolute(base_dir / p).lexically_normal().string();
  }
  std::string name(std::string_view field) const { return key_ + "." + std::string(field); }
  ConfigError error(std::string_view field, const std::string& why) const {
    const auto* node = table_.get(field);
    return ConfigError(name(field) + ": " + why + " " +
                       location(file_, node ? node->source() : table_.source()));
  }

 private:
  std::string key_;
  const toml::table& table_;
  const std::string& file_;
};

const toml::array& expect_array_of_tables(const std::string& key, const toml::node& node,
                                          const std::string& file) {
  const auto* array = node.as_array();
  if (!array || !array->is_array_of_tables())
    throw ConfigError(key + ": expected an array of tables, i.e. [[" + key + "]] (got " +
                      toml_type_name(node.type()) + ") " + location(file, node.source()));
  return *array;
}

// How many of `values` are not empty.
size_t count_set(std::initializer_list<std::string_view> values) {
  return static_cast<size_t>(
      std::count_if(values.begin(), values.end(), [](auto v) { return !v.empty(); }));
}

}  // namespace

std::vector<AuthKeyConfig> parse_auth_keys(const toml::node& node, const std::string& file,
                                           const std::filesystem::path& base_dir) {
  std::vector<AuthKeyConfig> keys;
  const auto& array = expect_array_of_tables("auth.keys", node, file);
  for (size_t i = 0; i < array.size(); ++i) {
    const EntryReader e("auth.keys[" + std::to_string(i) + "]", *array[i].as_table(), file,
                        {"name", "kid", "algorithms", "secret", "secret_env", "secret_file",
                         "public_key_file", "use"});
    AuthKeyConfig k;
    k.name = e.str("name");
    k.kid = e.str("kid");
    k.algorithms = e.list("algorithms");
    k.secret = e.str("secret");
    k.secret_env = e.str("secret_env");
    k.secret_file = e.path("secret_file", base_dir);
    k.public_key_file = e.path("public_key_file", base_dir);
    if (const auto use = e.str("use"); !use.empty()) k.use = use;
    if (k.name.empty()) throw e.error("name", "required: a name for logs (never the key)");
    for (const auto& other : keys)
      if (other.name == k.name) throw e.error("name", "duplicate key name '" + k.name + "'");
    if (k.algorithms.empty())
      throw e.error("algorithms", "required: the algorithms this key may verify, e.g. [\"HS256\"]");
    bool hmac = false, asymmetric = false;
    for (const auto& alg : k.algorithms) {
      if (alg == "EdDSA") throw e.error("algorithms", "EdDSA is not supported");
      check_one_of(e.name("algorithms"), alg, "algorithm", kJwtAlgorithms);
      (alg.starts_with("HS") ? hmac : asymmetric) = true;
    }
    if (hmac && asymmetric)
      throw e.error("algorithms",
                    "HMAC (HS*) and public-key algorithms cannot share a key; use two keys");
    const size_t sources = count_set({k.secret, k.secret_env, k.secret_file, k.public_key_file});
    if (sources != 1)
      throw e.error("name", "key '" + k.name +
                                "' needs exactly one of secret, secret_env, secret_file "
                                "(HS*) or public_key_file (RS*, PS*, ES*)");
    if (hmac && !k.public_key_file.empty())
      throw e.error("public_key_file", "HS* algorithms verify with a secret, not a public key");
    if (asymmetric && k.public_key_file.empty())
      throw e.error("algorithms", "RS*, PS* and ES* algorithms need public_key_file");
    check_one_of(e.name("use"), k.use, "use", kKeyUses);
    keys.push_back(std::move(k));
  }
  return keys;
}

std::vector<ApiKeyConfig> parse_api_keys(const toml::node& node, const std::string& file,
                                         const std::filesystem::path& base_dir) {
  std::vector<ApiKeyConfig> keys;
  const auto& array = expect_array_of_tables("api.keys", node, file);
  for (size_t i = 0; i < array.size(); ++i) {
    const EntryReader e("api.keys[" + std::to_string(i) + "]", *array[i].as_table(), file,
                        {"name", "key", "key_env", "key_file", "sha256", "scopes"});
    ApiKeyConfig k;
    k.name = e.str("name");
    k.key = e.str("key");
    k.key_env = e.str("key_env");
    k.key_file = e.path("key_file", base_dir);
    k.sha256 = to_lower(e.str("sha256"));
    k.scopes = e.list("scopes");
    if (k.name.empty()) throw e.error("name", "required: a name for logs (never the key)");
    for (const auto& other : keys)
      if (other.name == k.name) throw e.error("name", "duplicate key name '" + k.name + "'");
    if (count_set({k.key, k.key_env, k.key_file, k.sha256}) != 1)
      throw e.error("name",
                    "key '" + k.name + "' needs exactly one of key, key_env, key_file or sha256");
    if (!k.key.empty() && k.key.size() < 16)
      throw e.error("key", "too short (at least 16 characters)");
    if (!k.sha256.empty() && (k.sha256.size() != 64 ||
                              k.sha256.find_first_not_of("0123456789abcdef") != std::string::npos))
      throw e.error("sha256", "must be 64 hex digits (the SHA-256 of the key)");
    if (k.scopes.empty())
      throw e.error("scopes", "required: some of publish, history, admin, presence, destroy");
    for (const auto& scope : k.scopes) check_one_of(e.name("scopes"), scope, "scope", kApiScopes);
    keys.push_back(std::move(k));
  }
  return keys;
}

std::string key_lists_to_toml(const Config& config) {
  std::string out;
  const auto field = [&](std::string_view name, const Value& v) {
    const bool empty = std::holds_alternative<std::string>(v)
                           ? std::get<std::string>(v).empty()
                           : std::get<std::vector<std::string>>(v).empty();
    if (!empty) out += std::string(name) + " = " + render(v) + "\n";
  };
  for (const auto& k : config.auth.keys) {
    out += "\n[[auth.keys]]\n";
    field("name", k.name);
    field("kid", k.kid);
    field("algorithms", k.algorithms);
    field("secret", k.secret);
    field("secret_env", k.secret_env);
    field("secret_file", k.secret_file);
    field("public_key_file", k.public_key_file);
    field("use", k.use);
  }
  for (const auto& k : config.api.keys) {
    out += "\n[[api.keys]]\n";
    field("name", k.name);
    field("key", k.key);
    field("key_env", k.key_env);
    field("key_file", k.key_file);
    field("sha256", k.sha256);
    field("scopes", k.scopes);
  }
  return out;
}

}  // namespace herald::config::detail
