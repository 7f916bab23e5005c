// TokenBucket, KeyedLimiter and ConcurrencyLimiter; see rate_limit.hpp.
#include "auth/rate_limit.hpp"

#include <algorithm>
#include <cmath>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace herald::auth {
namespace {

// Comparisons of times allow a microsecond, so that rounding in double
// arithmetic cannot turn "exactly when the token is there" into a refusal
// with a retry of 1 ms. It admits at most 1 µs early.
constexpr double kSlackMs = 1e-3;

double to_ms(TokenBucket::Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}

// Keeps shards off each other's cache lines: every worker thread locks them.
constexpr size_t kCacheLine = 64;

// How far from the least recently used end eviction looks for a bucket that
// has refilled, before it evicts the least recently used one: bounded, so a
// flood of new keys costs O(1) each.
constexpr size_t kEvictScan = 16;

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

size_t shard_index(std::string_view key, size_t count) {
  // The map inside the shard uses the same hash: take the shard from the
  // high bits so the keys of one shard still spread over its map.
  const uint64_t h = std::hash<std::string_view>{}(key);
  return static_cast<size_t>((h * 0x9E3779B97F4A7C15ull) >> 32) % count;
}

// The GCRA step shared by TokenBucket::take() and peek(): where full_at would
// move if `tokens` were taken at `now_ms`, or the wait before that is allowed.
struct Step {
  uint64_t retry_ms;
  double new_full_at_ms;
};
Step step(double full_at_ms, float interval_ms, float burst, double now_ms, double tokens) {
  const double cost = tokens * interval_ms;
  const double window = static_cast<double>(burst) * interval_ms;  // an empty bucket's refill time
  if (cost > window + kSlackMs) return {TokenBucket::kNever, full_at_ms};
  const double new_full_at = std::max(full_at_ms, now_ms) + cost;
  // How far the bucket would be below empty, in refill time.
  const double excess = new_full_at - now_ms - window;
  if (excess <= kSlackMs) return {0, new_full_at};
  // ceil(excess - slack) keeps take() at now + retry admitted and take() at
  // now + retry - 1 refused (see the header).
  const double wait = std::ceil(excess - kSlackMs);
  return {std::max<uint64_t>(1, static_cast<uint64_t>(wait)), full_at_ms};
}

}  // namespace

// ---------------------------------------------------------------------------
// TokenBucket

TokenBucket::TokenBucket(double rate_per_s, double burst)
    : full_at_ms_(-std::numeric_limits<double>::infinity()), interval_ms_(0), burst_(0) {
  if (!std::isfinite(rate_per_s) || rate_per_s < 0)
    throw std::invalid_argument("rate must be a finite number >= 0");
  if (rate_per_s == 0) return;
  if (!std::isfinite(burst) || burst <= 0)
    throw std::invalid_argument("burst must be a finite number > 0");
  interval_ms_ = static_cast<float>(1000.0 / rate_per_s);
  burst_ = static_cast<float>(burst);
  if (!(interval_ms_ > 0) || !std::isfinite(interval_ms_) || !std::isfinite(burst_))
    throw std::invalid_argument("rate or burst out of range");
}

uint64_t TokenBucket::take(Clock::time_point now, double tokens) {
  if (unlimited() || !(tokens > 0)) return 0;
  const Step s = step(full_at_ms_, interval_ms_, burst_, to_ms(now), tokens);
  if (s.retry_ms == 0) full_at_ms_ = s.new_full_at_ms;
  return s.retry_ms;
}

uint64_t TokenBucket::peek(Clock::time_point now, double tokens) const {
  if (unlimited() || !(tokens > 0)) return 0;
  return step(full_at_ms_, interval_ms_, burst_, to_ms(now), tokens).retry_ms;
}

bool TokenBucket::full(Clock::time_point now) const {
  return unlimited() || full_at_ms_ <= to_ms(now) + kSlackMs;
}

// ---------------------------------------------------------------------------
// KeyedLimiter

struct alignas(kCacheLine) KeyedLimiter::Shard {
  struct Entry {
    std::string key;
    TokenBucket bucket;
  };
  std::mutex mutex;
  // Most recently used first. List nodes never move, so the index can point
  // into them, and its keys can view the entries' strings.
  std::list<Entry> lru;
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index;
  size_t capacity = 0;

  void erase(std::list<Entry>::iterator it) {
    index.erase(std::string_view(it->key));
    lru.erase(it);
  }

  // Makes room for one key: a bucket near the cold end that has refilled
  // (forgetting it changes nothing), else the least recently used one.
  void evict_one(TokenBucket::Clock::time_point now) {
    auto it = lru.end();
    for (size_t i = 0; i < kEvictScan && it != lru.begin(); ++i) {
      --it;
      if (it->bucket.full(now)) return erase(it);
    }
    erase(std::prev(lru.end()));
  }
};

KeyedLimiter::KeyedLimiter(double rate_per_s, double burst, size_t max_keys, size_t shards)
    : rate_per_s_(rate_per_s), burst_(burst), max_keys_(max_keys) {
  (void)TokenBucket(rate_per_s, burst);  // validates the pair; throws invalid_argument
  if (max_keys == 0) throw std::invalid_argument("max_keys must be at least 1");
  if (shards == 0) throw std::invalid_argument("shards must be at least 1");
  // No shard may have a capacity of 0; the capacities add up to max_keys.
  shard_count_ = std::min(shards, max_keys);
  shards_ = std::make_unique<Shard[]>(shard_count_);
  for (size_t i = 0; i < shard_count_; ++i)
    shards_[i].capacity = max_keys / shard_count_ + (i < max_keys % shard_count_ ? 1 : 0);
}

KeyedLimiter::~KeyedLimiter() = default;

KeyedLimiter::Shard& KeyedLimiter::shard_for(std::string_view key) const {
  return shards_[shard_index(key, shard_count_)];
}

uint64_t KeyedLimiter::take(std::string_view key, TokenBucket::Clock::time_point now,
                            double tokens) {
  if (rate_per_s_ == 0) return 0;
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  if (const auto found = s.index.find(key); found != s.index.end()) {
    s.lru.splice(s.lru.begin(), s.lru, found->second);
    return found->second->bucket.take(now, tokens);
  }
  TokenBucket fresh(rate_per_s_, burst_);
  const uint64_t result = fresh.take(now, tokens);
  // A bucket that is still full after the take (nothing was taken) needs no
  // entry: a later take creates the same full bucket.
  if (fresh.full(now)) return result;
  if (s.index.size() >= s.capacity) s.evict_one(now);
  s.lru.push_front(Shard::Entry{std::string(key), fresh});
  s.index.emplace(std::string_view(s.lru.front().key), s.lru.begin());
  return result;
}

uint64_t KeyedLimiter::peek(std::string_view key, TokenBucket::Clock::time_point now,
                            double tokens) const {
  if (rate_per_s_ == 0) return 0;
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  if (const auto found = s.index.find(key); found != s.index.end())
    return found->second->bucket.peek(now, tokens);
  return TokenBucket(rate_per_s_, burst_).peek(now, tokens);
}

size_t KeyedLimiter::size() const {
  size_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    n += shards_[i].index.size();
  }
  return n;
}

// ---------------------------------------------------------------------------
// ConcurrencyLimiter

struct alignas(kCacheLine) ConcurrencyLimiter::Shard {
  std::mutex mutex;
  std::unordered_map<std::string, uint32_t, TransparentHash, std::equal_to<>> counts;
};

ConcurrencyLimiter::ConcurrencyLimiter(uint32_t max_per_key, size_t shards) : max_(max_per_key) {
  if (shards == 0) throw std::invalid_argument("shards must be at least 1");
  shard_count_ = shards;
  shards_ = std::make_unique<Shard[]>(shard_count_);
}

ConcurrencyLimiter::~ConcurrencyLimiter() = default;

ConcurrencyLimiter::Shard& ConcurrencyLimiter::shard_for(std::string_view key) const {
  return shards_[shard_index(key, shard_count_)];
}

bool ConcurrencyLimiter::acquire(std::string_view key) {
  if (max_ == 0) return true;
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  if (const auto it = s.counts.find(key); it != s.counts.end()) {
    if (it->second >= max_) return false;
    ++it->second;
    return true;
  }
  s.counts.emplace(std::string(key), 1);
  return true;
}

void ConcurrencyLimiter::release(std::string_view key) {
  if (max_ == 0) return;
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  const auto it = s.counts.find(key);
  if (it == s.counts.end()) return;
  // The entry goes with its last holder: memory follows the live holders.
  if (--it->second == 0) s.counts.erase(it);
}

uint32_t ConcurrencyLimiter::count(std::string_view key) const {
  if (max_ == 0) return 0;
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  const auto it = s.counts.find(key);
  return it == s.counts.end() ? 0 : it->second;
}

size_t ConcurrencyLimiter::size() const {
  size_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    n += shards_[i].counts.size();
  }
  return n;
}

}  // namespace herald::auth
