// One channel's idempotency keys as both engines keep them in RAM: key ->
// (offset, fingerprint, expiry), oldest first. The memory engine's only copy;
// the sqlite engine's index of the keys stored in its events rows (see
// "Idempotency keys" in sqlite_engine.cpp), so that neither a replay nor a
// new key costs a query.
//
// A key is remembered until its expiry (the publish's ts + the namespace's
// idempotency_window_ms) and only while its event is one of the channel's
// last `max_keys` events (idempotency_max_keys): prune() forgets the others,
// oldest first, so the cost is constant per keyed append (one hash insert,
// on average at most one erase).
//
// Keys are known by a 64-bit hash (hash(): XXH3 with the engine's random
// seed, which clients never see, so they cannot aim at collisions): the
// hash map holds 16 bytes per key, small enough to stay in the CPU's cache
// for a channel at its bound of 10,000 keys (issue 12: a keyed publish
// within 10% of an unkeyed one), and the sqlite engine stores 8 bytes per
// key instead of the key. Two different keys with the same hash in one
// channel within a window (odds about n^2 / 2^65 for n keys) count as the
// same key: the second publish gets `idempotency_conflict` (a clear error,
// nothing stored), or, only when the user, event and data are the same
// too, a replay of that identical event.
//
// Not thread-safe: each engine uses an index from one thread only.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>

namespace herald::engine {

class KeyIndex {
 public:
  struct Record {
    uint64_t offset = 0;
    uint64_t fingerprint = 0;
    int64_t expires_ms = 0;
  };

  // ts_ms + window_ms (a negative window counts as 0), saturated.
  static int64_t expiry(int64_t ts_ms, int64_t window_ms);

  // What the index knows a key by (see above); `seed` is the engine's.
  static uint64_t hash(std::string_view key, uint64_t seed);

  // A random seed for hash().
  static uint64_t random_seed();

  KeyIndex() = default;
  KeyIndex(const KeyIndex&) = delete;  // the map points into the entries
  KeyIndex& operator=(const KeyIndex&) = delete;

  // The record of the key with hash `key` if it has not expired at
  // `now_ms`, else nullptr.
  const Record* find(uint64_t key, int64_t now_ms) const;

  // Remembers the key with hash `key` (which find() does not know at this
  // time) for the event just given record.offset, the channel's newest.
  void add(uint64_t key, const Record& record);

  // Forgets the keys expired at `now_ms` and those whose event lies `max_keys`
  // or more events behind `last_offset`, oldest first; returns how many.
  size_t prune(int64_t now_ms, uint64_t last_offset, size_t max_keys);

  // The offset of the oldest key held (0: none): events from there on may
  // still be needed to answer a replay.
  uint64_t oldest_offset() const { return entries_.empty() ? 0 : entries_.front().record.offset; }

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void clear();

 private:
  struct Entry {
    Record record;
    uint64_t key = 0;
  };

  // The hash is XXH3 already: the map must not mix it again.
  struct Same {
    using is_avalanching = void;
    size_t operator()(uint64_t h) const noexcept { return static_cast<size_t>(h); }
  };

  std::deque<Entry> entries_;  // in order of add(), so by offset
  boost::unordered_flat_map<uint64_t, const Entry*, Same> by_key_;
};

}  // namespace herald::engine
