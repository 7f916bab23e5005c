// Authenticator and TokenCache; see authenticator.hpp.
#include "auth/authenticator.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <cstring>
#include <future>

#include "auth/jwks_fetcher.hpp"
#include "auth/secrets.hpp"

namespace herald::auth {

namespace {

KeySpec to_spec(const config::AuthKeyConfig& k) {
  const std::string what = "auth.keys '" + k.name + "'";
  KeySpec spec;
  spec.name = k.name;
  spec.kid = k.kid;
  for (const auto& name : k.algorithms) {
    auto alg = parse_alg(name);
    if (!alg) throw std::runtime_error(what + ": unsupported algorithm " + name);
    spec.algorithms.push_back(*alg);
  }
  if (!k.public_key_file.empty())
    spec.public_key_pem = read_key_file(what + " public_key_file", k.public_key_file);
  else
    spec.secret = read_secret(what, k.secret, k.secret_env, k.secret_file);
  return spec;
}

std::vector<Alg> parse_algs(const std::vector<std::string>& names) {
  std::vector<Alg> out;
  for (const auto& name : names)
    if (auto alg = parse_alg(name)) out.push_back(*alg);
  return out;
}

}  // namespace

// --- TokenCache ------------------------------------------------------------------

size_t TokenCache::KeyHash::operator()(const Key& k) const {
  size_t h;
  std::memcpy(&h, k.data(), sizeof h);  // a SHA-256 is already well mixed
  return h;
}

TokenCache::Key TokenCache::key_of(TokenKind kind, std::string_view token) {
  // The kind first, so a connection token never stands for a subscription one.
  std::string input(1, static_cast<char>(kind));
  input.append(token);
  Key out{};
  unsigned len = 0;
  EVP_Digest(input.data(), input.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::shared_ptr<const Claims> TokenCache::find(const Key& key, int64_t now) const {
  if (entries_.empty()) return nullptr;
  const auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  const auto& claims = it->second;
  if (claims->exp && *claims->exp <= now) return nullptr;
  return claims;
}

void TokenCache::put(const Key& key, const Claims& claims, int64_t now) {
  if (capacity_ == 0) return;
  if (entries_.size() >= capacity_) {
    boost::unordered::erase_if(entries_, [now](const auto& entry) {
      return entry.second->exp && *entry.second->exp <= now;
    });
    if (entries_.size() >= capacity_) entries_.clear();
  }
  entries_.insert_or_assign(key, std::make_shared<const Claims>(claims));
}

// --- Authenticator ---------------------------------------------------------------

Authenticator::Authenticator(const config::AuthConfig& config)
    : enabled_(config.configured()),
      jwks_url_(config.jwks_url),
      jwks_ca_file_(config.jwks_ca_file),
      jwks_algorithms_(parse_algs(config.jwks_algorithms)),
      jwks_refresh_(config.jwks_refresh),
      jwks_min_refetch_(config.jwks_min_refetch),
      jwks_timeout_(config.jwks_timeout) {
  options_.issuer = config.issuer;
  options_.audience = config.audience;
  options_.leeway = std::chrono::duration_cast<std::chrono::seconds>(config.leeway);
  options_.max_token_bytes = config.max_token_bytes;

  std::vector<KeySpec> connection, subscription;
  for (const auto& k : config.keys) {
    KeySpec spec = to_spec(k);
    if (k.use != "subscription") connection.push_back(spec);
    if (k.use != "connection") subscription.push_back(std::move(spec));
  }
  try {
    connection_static_ = KeySet::build(connection);
    subscription_static_ = KeySet::build(subscription);
  } catch (const KeyError& e) {
    throw std::runtime_error(std::string("auth.keys: ") + e.what());
  }
  std::shared_ptr<const KeySet> jwks;
  if (!config.jwks_file.empty()) {
    const std::string text = read_key_file("auth.jwks_file", config.jwks_file);
    std::vector<std::string> skipped;
    try {
      jwks = KeySet::from_jwks(text, jwks_algorithms_, config.jwks_file, &skipped);
    } catch (const KeyError& e) {
      throw std::runtime_error("auth.jwks_file: " + config.jwks_file + ": " + e.what());
    }
    for (const auto& why : skipped) spdlog::warn("auth.jwks_file: skipped key {}", why);
  }
  set_jwks(std::move(jwks));
}

Authenticator::~Authenticator() {
  stop();
}

int64_t Authenticator::now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<const KeySet> Authenticator::keys_for(TokenKind kind) const {
  std::lock_guard lock(mutex_);
  return kind == TokenKind::connection ? connection_keys_ : subscription_keys_;
}

void Authenticator::set_jwks(std::shared_ptr<const KeySet> jwks) {
  auto connection = KeySet::merge(connection_static_, jwks);
  auto subscription = KeySet::merge(subscription_static_, jwks);
  std::lock_guard lock(mutex_);
  connection_keys_ = std::move(connection);
  subscription_keys_ = std::move(subscription);
}

void Authenticator::verify(TokenKind kind, std::string token, int64_t now, TokenCache* cache,
                           const boost::asio::any_io_executor& reply_to,
                           std::function<void(VerifyResult)> done) {
  std::optional<TokenCache::Key> cache_key;
  if (cache && cache->enabled()) {
    cache_key = TokenCache::key_of(kind, token);
    if (auto hit = cache->find(*cache_key, now - options_.leeway.count())) {
      done(*hit);
      return;
    }
  }
  auto result = auth::verify(*keys_for(kind), token, options_, now);
  if (cache_key) {
    if (const auto* claims = std::get_if<Claims>(&result)) cache->put(*cache_key, *claims, now);
  }
  const auto* error = std::get_if<VerifyError>(&result);
  const bool kid_unknown =
      error && (error->failure == VerifyFailure::unknown_kid || error->kid_unknown);
  if (!kid_unknown || jwks_url_.empty() || !fetcher_) {
    done(std::move(result));
    return;
  }
  // The key may have been rotated in at the issuer: ask the auth thread.
  boost::asio::post(io_, [this, p = Pending{kind, std::move(token), reply_to, std::move(done)},
                          first = std::move(result)]() mutable {
    const auto now_steady = std::chrono::steady_clock::now();
    if (!fetching_ && now_steady - last_on_demand_ < jwks_min_refetch_) {
      boost::asio::post(p.reply_to, [done = std::move(p.done), r = std::move(first)]() mutable {
        done(std::move(r));
      });
      return;
    }
    waiting_.push_back(std::move(p));
    if (!fetching_) {
      last_on_demand_ = now_steady;
      fetch_jwks(true);
    }
  });
}

void Authenticator::start() {
  if (jwks_url_.empty()) return;
  fetcher_ = std::make_unique<JwksFetcher>(io_, jwks_ca_file_);
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
  // Wait for the first fetch, so that a server that starts serves its users
  // at once; a failure is logged and retried, and start-up goes on.
  auto first = std::make_shared<std::promise<void>>();
  auto ready = first->get_future();
  boost::asio::post(io_, [this, first] {
    fetch_jwks(false);
    waiting_.push_back(
        Pending{TokenKind::connection, {}, {}, [first](VerifyResult) { first->set_value(); }});
  });
  ready.wait_for(jwks_timeout_ + std::chrono::seconds(1));
}

void Authenticator::stop() {
  if (!thread_.joinable()) return;
  io_.stop();
  thread_.join();
}

void Authenticator::schedule_refresh() {
  refresh_timer_.expires_after(jwks_refresh_);
  refresh_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !fetching_) fetch_jwks(false);
  });
}

void Authenticator::fetch_jwks(bool on_demand) {
  fetching_ = true;
  fetcher_->fetch(
      jwks_url_, jwks_timeout_,
      [this, on_demand](std::optional<std::string> body, std::string error) {
        fetching_ = false;
        bool ok = false;
        if (body) {
          std::vector<std::string> skipped;
          try {
            auto jwks = KeySet::from_jwks(*body, jwks_algorithms_, jwks_url_, &skipped);
            spdlog::info("auth: JWKS {} fetched{}: {} keys", jwks_url_,
                         on_demand ? " for an unknown kid" : "", jwks->size());
            for (const auto& why : skipped) spdlog::warn("auth: JWKS skipped key {}", why);
            set_jwks(std::move(jwks));
            ok = true;
          } catch (const KeyError& e) {
            error = e.what();
          }
        }
        if (!ok) spdlog::error("auth: JWKS fetch failed: {}; keeping the last good set", error);
        // Retry a failed fetch sooner than the regular refresh.
        refresh_timer_.cancel();
        if (ok) {
          schedule_refresh();
        } else {
          refresh_timer_.expires_after(std::min(jwks_refresh_, std::chrono::milliseconds(5000)));
          refresh_timer_.async_wait([this](boost::system::error_code ec) {
            if (!ec && !fetching_) fetch_jwks(false);
          });
        }
        auto waiting = std::move(waiting_);
        waiting_.clear();
        const int64_t now = now_seconds();
        for (auto& p : waiting) {
          if (p.token.empty()) {  // start() waiting for the first fetch
            p.done(VerifyError{});
            continue;
          }
          auto result = auth::verify(*keys_for(p.kind), p.token, options_, now);
          boost::asio::post(p.reply_to, [done = std::move(p.done),
                                         r = std::move(result)]() mutable { done(std::move(r)); });
        }
      });
}

}  // namespace herald::auth
