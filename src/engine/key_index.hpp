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
// Layout, for speed at max rate (issue 12: a keyed publish within 10% of an
// unkeyed one). A channel at its bound holds 10,000 keys, so what a publish
// touches at random must stay small enough for the CPU's cache: the hash map
// holds only a 64-bit hash of each key (XXH3 with a random per-process seed,
// so clients cannot aim at collisions) and a pointer to its entry, 16 bytes;
// entries sit in a deque and the keys' bytes in one ring buffer, both
// first-in first-out, so they are touched at their ends only (no allocation
// per key). A hash hit is confirmed against the key's bytes. Two different
// keys with the same hash (odds about n^2 / 2^65 for n keys) do not both
// stay: the newer one replaces the older in the map, which is forgotten
// early, so the worst case is a retry stored twice, never a wrong replay.
//
// Not thread-safe: each engine uses an index from one thread only.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

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

  KeyIndex() = default;
  KeyIndex(const KeyIndex&) = delete;  // the map points into the entries
  KeyIndex& operator=(const KeyIndex&) = delete;

  // The record of `key` if it has not expired at `now_ms`, else nullptr.
  const Record* find(std::string_view key, int64_t now_ms) const;

  // Remembers `key` (which find() does not know at this time) for the event
  // just given record.offset, the channel's newest.
  void add(std::string_view key, const Record& record);

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
  // Key bytes, first in first out, in one growable ring: positions count up
  // forever, a byte lives at position % capacity.
  class Bytes {
   public:
    uint64_t push(std::string_view s);
    void pop(size_t n) { head_ += n; }
    bool equals(uint64_t pos, std::string_view s) const;
    void clear();

   private:
    void grow(size_t need);
    std::vector<char> ring_;  // capacity: a power of two, or empty
    uint64_t head_ = 0, tail_ = 0;
  };

  struct Entry {
    Record record;
    uint64_t hash = 0;
    uint64_t key_pos = 0;  // in bytes_
    uint32_t key_size = 0;
  };

  // The hash is XXH3 already: the map must not mix it again.
  struct Same {
    using is_avalanching = void;
    size_t operator()(uint64_t h) const noexcept { return static_cast<size_t>(h); }
  };

  static uint64_t hash(std::string_view key);

  std::deque<Entry> entries_;  // in order of add(), so by offset
  boost::unordered_flat_map<uint64_t, const Entry*, Same> by_hash_;
  Bytes bytes_;
};

}  // namespace herald::engine
