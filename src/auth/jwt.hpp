// JSON Web Tokens: the keys Herald trusts and the verification of a compact
// JWS (header.payload.signature) into the claims the server acts on.
//
// Every signature and MAC is checked by OpenSSL 3 (its EVP API), with keys
// prepared once when the KeySet is built: PEM keys read by OpenSSL, keys of
// a JWK Set read and converted to OpenSSL keys by libjose (latchset, Debian
// libjose-dev 11), HMAC secrets kept as bytes. This file and jwt.cpp do no
// cryptography themselves. Before any signature check, the header's `alg`
// must be on the allow-list of the key that is tried, and the key's type
// must fit the algorithm (HS* only with a secret, RS*/PS* only with an RSA
// key, ES256 only with P-256, ...), so `alg: none` and algorithm confusion
// (an HMAC token "signed" with a public key) cannot pass. The claims are
// then checked against the clock and the configured issuer and audience.
//
// A KeySet is immutable once built and may be shared between threads; each
// verify() call only reads it. JWKS sources build a new KeySet and swap it
// in (auth::Authenticator).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/capabilities.hpp"

namespace herald::auth {

enum class Alg {
  HS256,
  HS384,
  HS512,
  RS256,
  RS384,
  RS512,
  PS256,
  PS384,
  PS512,
  ES256,
  ES384,
  ES512
};

// "HS256" -> Alg::HS256; nullopt for anything else (including "none" and
// algorithms Herald does not verify, such as "EdDSA").
std::optional<Alg> parse_alg(std::string_view name);
std::string_view to_string(Alg alg);

// Bad key material or a key whose algorithms do not fit it. what() names the
// key by its `name`, never its content.
class KeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One configured key, as config gives it.
struct KeySpec {
  std::string name;  // for logs and errors; never the key itself
  // "": tried for tokens without a kid, and for tokens whose kid no key has
  std::string kid;
  std::vector<Alg> algorithms;  // the allow-list; non-empty
  std::string secret;           // HS*: the raw secret bytes
  std::string public_key_pem;   // RS*/PS*/ES*: PEM public key or certificate
};

class KeySet {
 public:
  ~KeySet();
  // Throws KeyError: a PEM that does not parse, an algorithm that does not
  // fit the key (HS256 with a PEM key, RS256 with a secret, ES384 with a
  // P-256 key), an empty allow-list, an HMAC secret shorter than 32 bytes.
  static std::shared_ptr<const KeySet> build(const std::vector<KeySpec>& keys);

  // The keys of a JWK Set document ({"keys":[...]}), named `name` in logs.
  // Each key keeps its `kid`; its algorithms are its `alg` member when that
  // is in `allowed`, else those of `allowed` that fit its type. Keys that
  // are private, of unknown type, for encryption (`use: "enc"`), or fit no
  // allowed algorithm are skipped (reported in `skipped`, by kid). Throws
  // KeyError when the document is not a JWK Set.
  static std::shared_ptr<const KeySet> from_jwks(std::string_view json,
                                                 const std::vector<Alg>& allowed,
                                                 const std::string& name,
                                                 std::vector<std::string>* skipped = nullptr);

  // `a`'s keys followed by `b`'s (either may be null).
  static std::shared_ptr<const KeySet> merge(const std::shared_ptr<const KeySet>& a,
                                             const std::shared_ptr<const KeySet>& b);

  size_t size() const;
  bool has_kid(std::string_view kid) const;

  struct Key;  // defined in jwt.cpp
  const std::vector<std::unique_ptr<Key>>& keys() const { return keys_; }

 private:
  KeySet() = default;
  std::vector<std::unique_ptr<Key>> keys_;
};

struct VerifyOptions {
  std::string issuer;    // "": `iss` not checked
  std::string audience;  // "": `aud` not checked; else `aud` (string or array) must hold it
  std::chrono::seconds leeway{5};  // allowed clock skew for exp and nbf
  size_t max_token_bytes = 8192;   // longer tokens are refused before any parsing
  bool require_exp = false;        // a token without `exp` is refused when set
};

// What a verified token says. Connection tokens use sub, exp, info, caps and
// channels; subscription tokens sub, exp, channel and caps.
struct Claims {
  std::string sub;                    // user id; may be empty only if the token has none
  std::optional<int64_t> exp;         // seconds since the Unix epoch
  std::string info;                   // raw JSON of `info` (any JSON value), "" when absent
  Capabilities caps;                  // `caps`; empty when absent
  std::vector<std::string> channels;  // `channels`
  std::string channel;                // `channel` (subscription tokens)
  std::string kid;                    // the header's kid, "" when absent
  std::string key_name;               // the name of the key that verified it
};

enum class VerifyFailure {
  malformed,      // not three base64url parts, bad JSON, bad claim types
  too_large,      // longer than max_token_bytes
  bad_algorithm,  // `none`, unknown, or not allowed for any key that could be tried
  unknown_kid,    // the header names a kid no key has (a JWKS refetch may help)
  bad_signature,  // no allowed key verified it (wrong key, tampered token)
  expired,        // exp + leeway <= now
  not_yet_valid,  // nbf - leeway > now
  bad_issuer,
  bad_audience,
  bad_claims,  // a claim of the wrong type (e.g. `sub` not a string, bad caps pattern)
};

struct VerifyError {
  VerifyFailure failure = VerifyFailure::malformed;
  std::string reason;  // for the client and logs; never contains the token or a key
  // The token names a kid no key has, and keys without a kid were tried in
  // vain: a JWKS refetch may bring its key (as for unknown_kid).
  bool kid_unknown = false;
};

// Verifies `token` against `keys` at time `now` (seconds since the Unix epoch).
// Never throws; any bytes are safe to pass.
std::variant<Claims, VerifyError> verify(const KeySet& keys, std::string_view token,
                                         const VerifyOptions& options, int64_t now);

}  // namespace herald::auth
