// engine::KeyIndex: the idempotency keys both engines keep per channel.
#include "engine/key_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>

namespace herald::engine {
namespace {

constexpr uint64_t kSeed = 12345;

uint64_t key_of(uint64_t i) {
  return KeyIndex::hash("k" + std::to_string(i), kSeed);
}
uint64_t key_of(const char* key) {
  return KeyIndex::hash(key, kSeed);
}

TEST(KeyIndex, RemembersTheKeysOfTheLastMaxKeysEvents) {
  KeyIndex index;
  constexpr size_t kMax = 50;
  for (uint64_t offset = 1; offset <= 2000; ++offset) {
    index.prune(0, offset, kMax);
    ASSERT_EQ(index.find(key_of(offset), 0), nullptr) << offset;
    index.add(key_of(offset), {offset, offset * 3, 1000});
    if (offset % 97 == 0) {
      // Every key of the last kMax events is found with its record; older
      // ones are forgotten.
      for (uint64_t o = 1; o <= offset; ++o) {
        const KeyIndex::Record* r = index.find(key_of(o), 0);
        if (o + kMax > offset) {
          ASSERT_NE(r, nullptr) << o << " at " << offset;
          EXPECT_EQ(r->offset, o);
          EXPECT_EQ(r->fingerprint, o * 3);
        } else {
          EXPECT_EQ(r, nullptr) << o << " at " << offset;
        }
      }
      EXPECT_EQ(index.size(), std::min<size_t>(offset, kMax));
      EXPECT_EQ(index.oldest_offset(), offset >= kMax ? offset - kMax + 1 : 1);
    }
  }
}

TEST(KeyIndex, HashDependsOnEveryByteAndTheSeed) {
  EXPECT_EQ(KeyIndex::hash("msg-1", 1), KeyIndex::hash("msg-1", 1));
  EXPECT_NE(KeyIndex::hash("msg-1", 1), KeyIndex::hash("msg-2", 1));
  EXPECT_NE(KeyIndex::hash("msg-1", 1), KeyIndex::hash("msg-1x", 1));
  EXPECT_NE(KeyIndex::hash("msg-1", 1), KeyIndex::hash("sg-1", 1));
  EXPECT_NE(KeyIndex::hash("msg-1", 1), KeyIndex::hash("msg-1", 2));
  EXPECT_NE(KeyIndex::random_seed(), KeyIndex::random_seed());
}

TEST(KeyIndex, ExpiredKeysAreNotFoundAndArePruned) {
  KeyIndex index;
  index.add(key_of("a"), {1, 7, 100});
  index.add(key_of("b"), {2, 7, 200});
  EXPECT_NE(index.find(key_of("a"), 99), nullptr);
  EXPECT_EQ(index.find(key_of("a"), 100), nullptr);  // expires at 100
  EXPECT_NE(index.find(key_of("b"), 100), nullptr);
  EXPECT_EQ(index.prune(150, 2, 1000), 1u);
  EXPECT_EQ(index.oldest_offset(), 2u);
  // The same key again after its expiry: the new record counts.
  index.add(key_of("a"), {3, 8, 400});
  ASSERT_NE(index.find(key_of("a"), 300), nullptr);
  EXPECT_EQ(index.find(key_of("a"), 300)->offset, 3u);
  EXPECT_EQ(index.prune(500, 3, 1000), 2u);
  EXPECT_TRUE(index.empty());
  EXPECT_EQ(index.oldest_offset(), 0u);
  EXPECT_EQ(index.find(key_of("a"), 0), nullptr);
  index.add(key_of("c"), {4, 1, 600});  // usable again after emptying
  EXPECT_NE(index.find(key_of("c"), 0), nullptr);
}

// An expired entry still held (windows may differ after a reload) must not
// take the newer entry of its key with it when it is pruned.
TEST(KeyIndex, PruningAnOldEntryKeepsTheNewerOneOfItsKey) {
  KeyIndex index;
  index.add(key_of("k"), {1, 1, 1000});     // long window
  index.add(key_of("j"), {2, 1, 50});       // short window, expires first
  index.add(key_of("j"), {3, 2, 5000});     // "j" again, after its expiry at 50
  EXPECT_EQ(index.prune(60, 3, 1000), 0u);  // "k" at the front holds the rest
  EXPECT_EQ(index.find(key_of("j"), 60)->offset, 3u);
  EXPECT_EQ(index.prune(1000, 3, 1000), 2u);  // "k" expired, then the old "j"
  ASSERT_NE(index.find(key_of("j"), 1000), nullptr);
  EXPECT_EQ(index.find(key_of("j"), 1000)->offset, 3u);
}

TEST(KeyIndex, ExpiryIsSaturated) {
  EXPECT_EQ(KeyIndex::expiry(10, 5), 15);
  EXPECT_EQ(KeyIndex::expiry(10, -5), 10);
  EXPECT_EQ(KeyIndex::expiry(std::numeric_limits<int64_t>::max() - 1, 5),
            std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace herald::engine
