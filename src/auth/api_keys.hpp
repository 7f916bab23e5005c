// The server API's keys: which backends may call the HTTP API, and with
// which scopes.
//
// Only SHA-256 digests of the keys are kept in memory; config may give a key
// raw or as its digest, so a deployment can keep raw keys out of its config
// files entirely. A presented key is hashed and its digest compared with
// every configured digest in constant time, without stopping at a match, so
// the time taken reveals neither which key matched nor whether any did.
// Comparing digests rather than the keys also hides the keys' lengths.
//
// ApiKeys is immutable once built and may be shared between threads;
// authenticate() only reads it. Nothing here logs, and no error message
// carries key material: keys are named by their configured `name`.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::auth {

enum class Scope : uint8_t { publish = 1, history = 2, admin = 4, presence = 8, destroy = 16 };

using ScopeSet = uint8_t;  // bits of Scope

inline constexpr ScopeSet kAllScopes = 31;

// "publish" -> Scope::publish; nullopt for any other name.
std::optional<Scope> parse_scope(std::string_view name);
std::string_view to_string(Scope scope);

inline bool has(ScopeSet set, Scope scope) {
  return (set & static_cast<ScopeSet>(scope)) != 0;
}

// One configured key, as config gives it: exactly one of `key` and
// `sha256_hex` is set.
struct ApiKeySpec {
  std::string name;        // for logs and errors; never the key itself
  std::string key;         // the raw key (at least 16 bytes), or empty
  std::string sha256_hex;  // or the key's SHA-256 as 64 hex digits (either case)
  ScopeSet scopes = 0;     // non-empty
};

// What a caller who presented a valid key may do.
struct ApiKey {
  std::string name;
  ScopeSet scopes = 0;
  bool allows(Scope scope) const { return has(scopes, scope); }
};

class ApiKeys {
 public:
  // Throws std::invalid_argument, naming the key by its name: an empty
  // name, neither or both of key and sha256_hex, a sha256_hex that is not 64
  // hex digits, a raw key shorter than 16 bytes, a name used twice, two
  // names for the same key, no scopes.
  explicit ApiKeys(const std::vector<ApiKeySpec>& specs);

  // The key whose digest matches `presented`'s, or nullptr (also for an
  // empty `presented`). The pointer lives as long as this object.
  const ApiKey* authenticate(std::string_view presented) const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // The credential of a request: the token of `Authorization: Bearer <key>`
  // (scheme in any case, one or more spaces before the key), else the value
  // of `X-API-Key`; empty when neither holds one. Arguments are the header
  // values ("" when absent).
  static std::string_view credential_from_headers(std::string_view authorization,
                                                  std::string_view x_api_key);

  static constexpr size_t kMinKeyBytes = 16;

 private:
  using Digest = std::array<unsigned char, 32>;
  struct Entry {
    ApiKey key;
    Digest digest;
  };
  std::vector<Entry> entries_;
};

}  // namespace herald::auth
