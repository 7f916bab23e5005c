// See key_index.hpp.
#include "engine/key_index.hpp"

#include <algorithm>
#include <cstring>
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

uint64_t KeyIndex::hash(std::string_view key) {
  static const uint64_t seed = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

const KeyIndex::Record* KeyIndex::find(std::string_view key, int64_t now_ms) const {
  const auto it = by_hash_.find(hash(key));
  if (it == by_hash_.end()) return nullptr;
  const Entry& e = *it->second;
  if (e.record.expires_ms <= now_ms || !bytes_.equals(e.key_pos, key)) return nullptr;
  return &e.record;
}

void KeyIndex::add(std::string_view key, const Record& record) {
  const uint64_t h = hash(key);
  const uint64_t pos = bytes_.push(key);
  const Entry& entry =
      entries_.emplace_back(Entry{record, h, pos, static_cast<uint32_t>(key.size())});
  // An entry of the same hash still held (the key expired, but is not pruned
  // yet: windows may differ between publishes after a config reload; or
  // another key, see the header) is replaced in the map; prune() then leaves
  // the map alone when it drops that entry.
  by_hash_.insert_or_assign(h, &entry);
}

size_t KeyIndex::prune(int64_t now_ms, uint64_t last_offset, size_t max_keys) {
  const uint64_t keep_from = last_offset >= max_keys ? last_offset - max_keys + 1 : 0;
  size_t dropped = 0;
  while (!entries_.empty()) {
    const Entry& oldest = entries_.front();
    if (oldest.record.expires_ms > now_ms && oldest.record.offset >= keep_from) break;
    if (const auto it = by_hash_.find(oldest.hash); it != by_hash_.end() && it->second == &oldest)
      by_hash_.erase(it);
    bytes_.pop(oldest.key_size);
    entries_.pop_front();
    ++dropped;
  }
  if (dropped > 0 && entries_.empty()) clear();  // an idle channel keeps no memory
  return dropped;
}

void KeyIndex::clear() {
  by_hash_ = {};
  std::deque<Entry>().swap(entries_);
  bytes_.clear();
}

uint64_t KeyIndex::Bytes::push(std::string_view s) {
  if (tail_ - head_ + s.size() > ring_.size()) grow(tail_ - head_ + s.size());
  const size_t mask = ring_.size() - 1;
  const size_t at = static_cast<size_t>(tail_) & mask;
  const size_t first = std::min(s.size(), ring_.size() - at);
  std::memcpy(ring_.data() + at, s.data(), first);
  std::memcpy(ring_.data(), s.data() + first, s.size() - first);
  const uint64_t pos = tail_;
  tail_ += s.size();
  return pos;
}

bool KeyIndex::Bytes::equals(uint64_t pos, std::string_view s) const {
  if (ring_.empty()) return s.empty();
  const size_t mask = ring_.size() - 1;
  const size_t at = static_cast<size_t>(pos) & mask;
  const size_t first = std::min(s.size(), ring_.size() - at);
  return std::memcmp(ring_.data() + at, s.data(), first) == 0 &&
         std::memcmp(ring_.data(), s.data() + first, s.size() - first) == 0;
}

void KeyIndex::Bytes::grow(size_t need) {
  size_t capacity = std::max<size_t>(ring_.size(), 256);
  while (capacity < need) capacity *= 2;
  std::vector<char> bigger(capacity);
  // Each live byte moves to its position modulo the new capacity.
  for (uint64_t p = head_; p < tail_; ++p)
    bigger[static_cast<size_t>(p) & (capacity - 1)] =
        ring_[static_cast<size_t>(p) & (ring_.size() - 1)];
  ring_ = std::move(bigger);
}

void KeyIndex::Bytes::clear() {
  std::vector<char>().swap(ring_);
  head_ = tail_ = 0;
}

}  // namespace herald::engine
