// See key_index.hpp.
#include "engine/key_index.hpp"

#include <algorithm>
#include <limits>
#include <random>

#define XXH_INLINE_ALL  // xxhash.h as header-only: nothing to link
#include <xxhash.h>

namespace herald::engine {

int64_t KeyIndex::expiry(int64_t ts_ms, int64_t window_ms) {
  window_ms = std::max<int64_t>(window_ms, 0);
  return ts_ms > std::numeric_limits<int64_t>::max() - window_ms
             ? std::numeric_limits<int64_t>::max()
             : ts_ms + window_ms;
}

uint64_t KeyIndex::hash(std::string_view key, uint64_t seed) {
  return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

uint64_t KeyIndex::random_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

const KeyIndex::Record* KeyIndex::find(uint64_t key, int64_t now_ms) const {
  const auto it = by_key_.find(key);
  if (it == by_key_.end() || it->second->record.expires_ms <= now_ms) return nullptr;
  return &it->second->record;
}

void KeyIndex::add(uint64_t key, const Record& record) {
  const Entry& entry = entries_.emplace_back(Entry{record, key});
  // An expired entry of the same key still held (not pruned yet: windows may
  // differ between publishes after a config reload) is replaced in the map;
  // prune() then leaves the map alone when it drops that entry.
  by_key_.insert_or_assign(key, &entry);
}

size_t KeyIndex::prune(int64_t now_ms, uint64_t last_offset, size_t max_keys) {
  const uint64_t keep_from = last_offset >= max_keys ? last_offset - max_keys + 1 : 0;
  size_t dropped = 0;
  while (!entries_.empty()) {
    const Entry& oldest = entries_.front();
    if (oldest.record.expires_ms > now_ms && oldest.record.offset >= keep_from) break;
    if (const auto it = by_key_.find(oldest.key); it != by_key_.end() && it->second == &oldest)
      by_key_.erase(it);
    entries_.pop_front();
    ++dropped;
  }
  if (dropped > 0 && entries_.empty()) clear();  // an idle channel keeps no memory
  return dropped;
}

void KeyIndex::clear() {
  by_key_ = {};
  std::deque<Entry>().swap(entries_);
}

}  // namespace herald::engine
