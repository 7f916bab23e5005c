// The server's token verification: the keys of [[auth.keys]] and of a JWK
// Set (a file, or a URL refreshed in the background), and a per-worker
// cache of verified tokens.
//
// One Authenticator serves the whole process and is thread-safe: workers
// call verify() on their own threads. The static keys never change; the
// JWKS keys live in an immutable KeySet that the auth thread swaps in after
// each successful fetch (a failed fetch keeps the last good set). A token
// whose `kid` no key has triggers a refetch, at most once per
// auth.jwks_min_refetch_ms: its verification waits for that fetch (so a key
// rotated in at the identity provider works at once) and then runs again.
//
// Secrets are read here (secret_env, secret_file) and never logged; errors
// name the key by its `name`.
#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "auth/jwt.hpp"
#include "config/config.hpp"

namespace herald::auth {

class JwksFetcher;

enum class TokenKind : uint8_t { connection, subscription };

using VerifyResult = std::variant<Claims, VerifyError>;

// Verified tokens of one worker, by the SHA-256 of kind and token, until
// they expire. Bounded: when full, expired entries go, then all of them.
// Use on one thread only.
class TokenCache {
 public:
  // A token's identity in the cache: the SHA-256 of its kind and bytes.
  using Key = std::array<unsigned char, 32>;
  static Key key_of(TokenKind kind, std::string_view token);

  explicit TokenCache(size_t capacity) : capacity_(capacity) {}
  bool enabled() const { return capacity_ > 0; }
  // The cached claims of a token verified before and not expired at `now`
  // (seconds since the Unix epoch, leeway included), or null.
  std::shared_ptr<const Claims> find(const Key& key, int64_t now) const;
  void put(const Key& key, const Claims& claims, int64_t now);

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  size_t capacity_;
  boost::unordered_flat_map<Key, std::shared_ptr<const Claims>, KeyHash> entries_;
};

class Authenticator {
 public:
  // Reads every key (secrets from env and files, PEM files, the JWKS file).
  // Throws std::runtime_error naming the config key that is wrong.
  explicit Authenticator(const config::AuthConfig& config);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Whether any key or JWKS is configured (else every connection is anonymous).
  bool enabled() const { return enabled_; }

  // Starts the auth thread when a JWKS URL is configured: fetches it once
  // (waiting up to jwks_timeout_ms; a failure is logged and retried) and
  // then every jwks_refresh_ms.
  void start();
  void stop();

  // Verifies `token` at `now` (seconds since the Unix epoch). Calls `done`
  // before returning, except when the token names an unknown kid and a
  // refetch of the JWKS URL may bring it: then `done` is posted to
  // `reply_to` once the fetch is over.
  void verify(TokenKind kind, std::string token, int64_t now, TokenCache* cache,
              const boost::asio::any_io_executor& reply_to, std::function<void(VerifyResult)> done);

  const VerifyOptions& options() const { return options_; }

  // Seconds since the Unix epoch, as tokens count time.
  static int64_t now_seconds();

 private:
  struct Pending {
    TokenKind kind;
    std::string token;
    boost::asio::any_io_executor reply_to;
    std::function<void(VerifyResult)> done;
  };
  std::shared_ptr<const KeySet> keys_for(TokenKind kind) const;
  void set_jwks(std::shared_ptr<const KeySet> jwks);
  void fetch_jwks(bool on_demand);  // auth thread
  void schedule_refresh();          // auth thread

  bool enabled_ = false;
  VerifyOptions options_;
  std::shared_ptr<const KeySet> connection_static_;
  std::shared_ptr<const KeySet> subscription_static_;
  std::string jwks_url_;
  std::string jwks_ca_file_;
  std::vector<Alg> jwks_algorithms_;
  std::chrono::milliseconds jwks_refresh_;
  std::chrono::milliseconds jwks_min_refetch_;
  std::chrono::milliseconds jwks_timeout_;

  mutable std::mutex mutex_;  // guards the two combined sets
  std::shared_ptr<const KeySet> connection_keys_;
  std::shared_ptr<const KeySet> subscription_keys_;

  // Auth thread state (JWKS URL only).
  boost::asio::io_context io_;
  std::unique_ptr<JwksFetcher> fetcher_;
  boost::asio::steady_timer refresh_timer_{io_};
  std::thread thread_;
  bool fetching_ = false;
  std::chrono::steady_clock::time_point last_on_demand_{};
  std::vector<Pending> waiting_;  // for the fetch in flight
};

}  // namespace herald::auth
