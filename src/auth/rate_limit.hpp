// Rate and concurrency limits: token buckets (one per connection, or one per
// key in a bounded, thread-safe map) and counters of concurrent holders per
// key.
//
// TokenBucket lives inside every connection, so it is 16 bytes and keeps
// only the time at which it will be full again (the "theoretical arrival
// time" of GCRA), which is equivalent to a token count and needs no
// separate last-refill time: tokens at `now` = burst - (full_at - now) *
// rate, capped at burst. Time is always passed in, so behaviour is
// deterministic and tests need no clock.
//
// KeyedLimiter holds a bucket per key (an IP address, a user id) for limits
// that span connections and workers: new connections per IP, failed
// authentications per IP, publishes per user. It is shared by the worker
// threads, so its map is split into shards, each behind its own mutex, and
// bounded: when a shard is full it drops, among its least recently used
// buckets, one that has refilled completely (forgetting it loses nothing: a
// new bucket starts full), and otherwise the least recently used one. Under
// a flood of distinct keys an evicted key thus regains its burst; memory
// stays bounded, and each new key costs O(1).
//
// ConcurrencyLimiter counts concurrent holders per key (connections per IP,
// per user) against a maximum; a key is forgotten when its count returns to
// zero, so memory follows the number of holders.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>

namespace herald::auth {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // What take() returns when `tokens` exceeds the burst: it can never succeed.
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

  // `rate_per_s` tokens are added per second, up to `burst` (the capacity);
  // the bucket starts full. A rate of 0 means unlimited (burst is then
  // ignored). Throws std::invalid_argument for a negative or non-finite rate,
  // or a burst that is not positive and finite when the rate is not 0.
  TokenBucket(double rate_per_s, double burst);

  // Takes `tokens` if the bucket holds them and returns 0; otherwise takes
  // nothing and returns the milliseconds until it will hold them (>= 1): a
  // take() of the same amount at `now` + that result succeeds, one at a
  // millisecond earlier does not (given no other take in between). kNever
  // when `tokens` exceeds the burst.
  uint64_t take(Clock::time_point now, double tokens = 1);

  // What take() would return, without taking anything.
  uint64_t peek(Clock::time_point now, double tokens = 1) const;

  // The bucket is at capacity: indistinguishable from a new one.
  bool full(Clock::time_point now) const;
  bool unlimited() const { return interval_ms_ == 0; }

 private:
  // Rate and burst are floats (7 significant digits), which is plenty for
  // configured limits and keeps the bucket at 16 bytes.
  double full_at_ms_;  // when the bucket is full again, in ms of Clock
  float interval_ms_;  // milliseconds per token; 0 when unlimited
  float burst_;
};
static_assert(sizeof(TokenBucket) == 16, "TokenBucket lives in every connection: keep it small");

class KeyedLimiter {
 public:
  // A bucket of (`rate_per_s`, `burst`) per key (see TokenBucket; rate 0:
  // unlimited and nothing is stored), at most `max_keys` keys (>= 1) over
  // `shards` mutexes. Throws std::invalid_argument for bad arguments.
  KeyedLimiter(double rate_per_s, double burst, size_t max_keys, size_t shards = 16);
  ~KeyedLimiter();
  KeyedLimiter(const KeyedLimiter&) = delete;
  KeyedLimiter& operator=(const KeyedLimiter&) = delete;

  // TokenBucket::take on `key`'s bucket (created full on first use).
  // Thread-safe.
  uint64_t take(std::string_view key, TokenBucket::Clock::time_point now, double tokens = 1);
  // TokenBucket::peek on `key`'s bucket; an unknown key's bucket is full.
  // Thread-safe; creates nothing.
  uint64_t peek(std::string_view key, TokenBucket::Clock::time_point now, double tokens = 1) const;

  // Keys currently held (a snapshot; shards are read one after another).
  size_t size() const;
  size_t max_keys() const { return max_keys_; }

 private:
  struct Shard;
  Shard& shard_for(std::string_view key) const;

  double rate_per_s_;
  double burst_;
  size_t max_keys_;
  size_t shard_count_;
  std::unique_ptr<Shard[]> shards_;
};

class ConcurrencyLimiter {
 public:
  // At most `max_per_key` concurrent holders per key; 0: unlimited (nothing
  // is counted).
  explicit ConcurrencyLimiter(uint32_t max_per_key, size_t shards = 16);
  ~ConcurrencyLimiter();
  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  // Counts one more holder of `key`; false (and nothing counted) when `key`
  // already has the maximum. Thread-safe.
  bool acquire(std::string_view key);
  // Gives back one acquire() that returned true. A release without a
  // matching acquire is ignored. Thread-safe.
  void release(std::string_view key);

  uint32_t count(std::string_view key) const;
  // Keys with at least one holder (a snapshot).
  size_t size() const;
  uint32_t max_per_key() const { return max_; }

 private:
  struct Shard;
  Shard& shard_for(std::string_view key) const;

  uint32_t max_;
  size_t shard_count_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace herald::auth
