// Unit tests for the memory engine: offsets, count and age limits, every shape
// of history query, epochs and shard independence, removing a channel and its
// creation time.
#include "engine/memory/memory_engine.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace herald::engine {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // a fixed "now" for the fake clock

class MemoryEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<Engine> make(size_t max_events, int64_t max_age_ms = 0) {
    return make_memory_engine(MemoryLimits{max_events, max_age_ms}, [this] { return now_; });
  }

  std::unique_ptr<ShardStore> open(Engine& engine, unsigned shard = 0) {
    return engine.open_shard(shard, io_.get_executor());
  }

  // Appends and returns the result; the memory engine completes synchronously.
  AppendResult append(ShardStore& store, const std::string& channel, std::string data = "1",
                      std::optional<int64_t> ts = std::nullopt,
                      std::optional<Retention> retention = std::nullopt) {
    std::optional<AppendResult> out;
    store.append(channel,
                 NewEvent{"e", std::move(data), "client-1", "user-1", ts.value_or(now_), retention,
                          R"({"n":"Ana"})"},
                 [&](AppendResult r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value()) << "append did not complete synchronously";
    return out.value_or(AppendResult{});
  }

  HistoryResult read(ShardStore& store, const std::string& channel, size_t limit,
                     std::optional<uint64_t> after = std::nullopt,
                     std::optional<uint64_t> before = std::nullopt,
                     std::optional<Retention> retention = std::nullopt) {
    std::optional<HistoryResult> out;
    HistoryQuery q;
    q.limit = limit;
    q.after = after;
    q.before = before;
    q.retention = retention;
    store.read(channel, q, [&](HistoryResult r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value()) << "read did not complete synchronously";
    return out.value_or(HistoryResult{});
  }

  RemoveResult remove(ShardStore& store, const std::string& channel) {
    std::optional<RemoveResult> out;
    store.remove(channel, [&](RemoveResult r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value()) << "remove did not complete synchronously";
    return out.value_or(RemoveResult{});
  }

  static std::vector<uint64_t> offsets(const HistoryResult& r) {
    std::vector<uint64_t> out;
    for (const auto& e : r.events) out.push_back(e.offset);
    return out;
  }

  // A store holding offsets 1..n of channel "c".
  std::unique_ptr<ShardStore> filled(Engine& engine, int n) {
    auto store = open(engine);
    for (int i = 1; i <= n; ++i) append(*store, "c", std::to_string(i));
    return store;
  }

  boost::asio::io_context io_;
  int64_t now_ = kT0;
};

using Offsets = std::vector<uint64_t>;

TEST_F(MemoryEngineTest, NameIsMemory) {
  EXPECT_EQ(make(10)->name(), "memory");
}

TEST_F(MemoryEngineTest, OffsetsAreContiguousFromOne) {
  auto engine = make(100);
  auto store = open(*engine);
  for (uint64_t i = 1; i <= 5; ++i) {
    const AppendResult r = append(*store, "chat:lobby");
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.offset, i);
    EXPECT_FALSE(r.epoch.empty());
  }
  // Channels count separately.
  EXPECT_EQ(append(*store, "chat:other").offset, 1u);
  EXPECT_EQ(append(*store, "chat:lobby").offset, 6u);
}

TEST_F(MemoryEngineTest, StoresEveryField) {
  auto engine = make(10);
  auto store = open(*engine);
  append(*store, "c", R"({"text":"hi"})", kT0 - 5);
  const HistoryResult r = read(*store, "c", 10);
  ASSERT_EQ(r.events.size(), 1u);
  const StoredEvent& e = r.events[0];
  EXPECT_EQ(e.offset, 1u);
  EXPECT_EQ(e.ts_ms, kT0 - 5);
  EXPECT_EQ(e.event, "e");
  EXPECT_EQ(e.data, R"({"text":"hi"})");
  EXPECT_EQ(e.from_client, "client-1");
  EXPECT_EQ(e.from_user, "user-1");
  EXPECT_EQ(e.from_info, R"({"n":"Ana"})");
}

TEST_F(MemoryEngineTest, UnknownChannelReadsEmpty) {
  auto engine = make(10);
  auto store = open(*engine);
  const HistoryResult r = read(*store, "nobody", 10);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.epoch, append(*store, "somebody").epoch);
  EXPECT_EQ(r.last_offset, 0u);
  EXPECT_EQ(r.first_offset, 0u);
  EXPECT_TRUE(r.events.empty());
}

TEST_F(MemoryEngineTest, CountLimitDropsOldestButOffsetsContinue) {
  auto engine = make(3);
  auto store = filled(*engine, 5);
  HistoryResult r = read(*store, "c", 100);
  EXPECT_EQ(offsets(r), (Offsets{3, 4, 5}));
  EXPECT_EQ(r.first_offset, 3u);
  EXPECT_EQ(r.last_offset, 5u);
  EXPECT_EQ(r.events[0].data, "3");
  EXPECT_EQ(append(*store, "c").offset, 6u);
  r = read(*store, "c", 100);
  EXPECT_EQ(offsets(r), (Offsets{4, 5, 6}));
  EXPECT_EQ(r.first_offset, 4u);
}

TEST_F(MemoryEngineTest, AChannelsRetentionOverridesTheEngineLimits) {
  auto engine = make(100);
  auto store = open(*engine);
  for (int i = 1; i <= 5; ++i) append(*store, "small", std::to_string(i), {}, Retention{2, 0});
  for (int i = 1; i <= 5; ++i) append(*store, "big", std::to_string(i));
  EXPECT_EQ(offsets(read(*store, "small", 100, {}, {}, Retention{2, 0})), (Offsets{4, 5}));
  EXPECT_EQ(offsets(read(*store, "big", 100)), (Offsets{1, 2, 3, 4, 5}));
  // None kept, offsets still count.
  EXPECT_EQ(append(*store, "none", "x", {}, Retention{0, 0}).offset, 1u);
  const HistoryResult none = read(*store, "none", 10, {}, {}, Retention{0, 0});
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.last_offset, 1u);
}

TEST_F(MemoryEngineTest, ARetentionThatShrinksDropsOnTheNextReadOrAppend) {
  auto engine = make(100);
  auto store = filled(*engine, 6);  // a reload then gives channel c a smaller retention
  EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{3, 0})), (Offsets{4, 5, 6}));
  append(*store, "c", "7", {}, Retention{2, 0});
  EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{2, 0})), (Offsets{6, 7}));
  // Growing again keeps what is there and lets it fill up.
  for (int i = 8; i <= 10; ++i) append(*store, "c", std::to_string(i), {}, Retention{4, 0});
  EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{4, 0})), (Offsets{7, 8, 9, 10}));
}

TEST_F(MemoryEngineTest, AChannelsAgeLimitOverridesTheEngines) {
  auto engine = make(100, 0);  // no engine-wide age limit
  auto store = open(*engine);
  append(*store, "c", "old", now_ - 5000, Retention{100, 1000});
  append(*store, "c", "new", now_, Retention{100, 1000});
  append(*store, "d", "old", now_ - 5000);
  EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{100, 1000})), (Offsets{2}));
  EXPECT_EQ(offsets(read(*store, "d", 100)), (Offsets{1}));
}

TEST_F(MemoryEngineTest, ManyEventsThroughASmallWindow) {
  auto engine = make(7);
  auto store = filled(*engine, 1000);  // wraps the ring many times
  const HistoryResult r = read(*store, "c", 100);
  EXPECT_EQ(offsets(r), (Offsets{994, 995, 996, 997, 998, 999, 1000}));
  for (const auto& e : r.events) EXPECT_EQ(e.data, std::to_string(e.offset));
}

TEST_F(MemoryEngineTest, ZeroCountKeepsNothingButStillCounts) {
  auto engine = make(0);
  auto store = filled(*engine, 3);
  const HistoryResult r = read(*store, "c", 10);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.last_offset, 3u);
  EXPECT_EQ(r.first_offset, 0u);
  EXPECT_EQ(append(*store, "c").offset, 4u);
}

TEST_F(MemoryEngineTest, AgeLimitDropsOldEventsOnRead) {
  auto engine = make(100, 1000);
  auto store = open(*engine);
  append(*store, "c");  // 1 at T0
  now_ += 600;
  append(*store, "c");  // 2 at T0+600
  now_ += 400;          // T0+1000: event 1 is exactly 1000 ms old, still kept
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{1, 2}));
  now_ += 1;  // event 1 now older than the limit
  HistoryResult r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{2}));
  EXPECT_EQ(r.first_offset, 2u);
  EXPECT_EQ(r.last_offset, 2u);
  now_ += 10000;  // everything expired
  r = read(*store, "c", 10);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.first_offset, 0u);
  EXPECT_EQ(r.last_offset, 2u);
  EXPECT_EQ(append(*store, "c").offset, 3u);  // offsets are not reused
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{3}));
}

TEST_F(MemoryEngineTest, AgeLimitAppliesOnAppendToo) {
  auto engine = make(100, 1000);
  auto store = open(*engine);
  append(*store, "c", "old", kT0 - 5000);  // already too old when stored
  EXPECT_EQ(append(*store, "c").offset, 2u);
  const HistoryResult r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{2}));
}

TEST_F(MemoryEngineTest, NoAgeLimitKeepsOldEvents) {
  auto engine = make(100, 0);
  auto store = open(*engine);
  append(*store, "c", "old", 0);
  now_ += 365LL * 24 * 3600 * 1000;
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{1}));
}

TEST_F(MemoryEngineTest, ReadLimitOnlyGivesNewest) {
  auto engine = make(100);
  auto store = filled(*engine, 10);
  HistoryResult r = read(*store, "c", 3);
  EXPECT_EQ(offsets(r), (Offsets{8, 9, 10}));
  EXPECT_EQ(r.first_offset, 1u);
  EXPECT_EQ(r.last_offset, 10u);
  EXPECT_EQ(offsets(read(*store, "c", 100)), (Offsets{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST_F(MemoryEngineTest, ReadBeforeGivesNewestBelow) {
  auto engine = make(100);
  auto store = filled(*engine, 10);
  EXPECT_EQ(offsets(read(*store, "c", 3, std::nullopt, 6)), (Offsets{3, 4, 5}));
  EXPECT_EQ(offsets(read(*store, "c", 10, std::nullopt, 3)), (Offsets{1, 2}));
  EXPECT_EQ(offsets(read(*store, "c", 2, std::nullopt, 1000)), (Offsets{9, 10}));
  EXPECT_TRUE(read(*store, "c", 10, std::nullopt, 1).events.empty());
  EXPECT_TRUE(read(*store, "c", 10, std::nullopt, 0).events.empty());
}

TEST_F(MemoryEngineTest, ReadAfterGivesOldestAbove) {
  auto engine = make(100);
  auto store = filled(*engine, 10);
  EXPECT_EQ(offsets(read(*store, "c", 3, 4)), (Offsets{5, 6, 7}));
  EXPECT_EQ(offsets(read(*store, "c", 100, 7)), (Offsets{8, 9, 10}));
  EXPECT_EQ(offsets(read(*store, "c", 3, 0)), (Offsets{1, 2, 3}));
  EXPECT_TRUE(read(*store, "c", 10, 10).events.empty());
  EXPECT_TRUE(read(*store, "c", 10, 5000).events.empty());
  EXPECT_TRUE(read(*store, "c", 10, UINT64_MAX).events.empty());
  // Metadata is filled even when no event matches.
  const HistoryResult r = read(*store, "c", 10, 10);
  EXPECT_EQ(r.last_offset, 10u);
  EXPECT_EQ(r.first_offset, 1u);
}

TEST_F(MemoryEngineTest, ReadAfterAndBefore) {
  auto engine = make(100);
  auto store = filled(*engine, 10);
  EXPECT_EQ(offsets(read(*store, "c", 100, 3, 7)), (Offsets{4, 5, 6}));
  EXPECT_EQ(offsets(read(*store, "c", 2, 3, 7)), (Offsets{4, 5}));  // oldest first
  EXPECT_TRUE(read(*store, "c", 100, 5, 6).events.empty());
  EXPECT_TRUE(read(*store, "c", 100, 6, 6).events.empty());
  EXPECT_TRUE(read(*store, "c", 100, 8, 2).events.empty());
}

TEST_F(MemoryEngineTest, ReadAfterDroppedEventsStartsAtOldestHeld) {
  auto engine = make(3);
  auto store = filled(*engine, 10);  // holds 8, 9, 10
  const HistoryResult r = read(*store, "c", 100, 2);
  EXPECT_EQ(offsets(r), (Offsets{8, 9, 10}));
  EXPECT_EQ(r.first_offset, 8u);  // > after + 1: the client knows it missed events
  EXPECT_EQ(offsets(read(*store, "c", 100, std::nullopt, 5)), Offsets{});
  EXPECT_EQ(offsets(read(*store, "c", 100, std::nullopt, 9)), (Offsets{8}));
}

TEST_F(MemoryEngineTest, ReadLimitZero) {
  auto engine = make(100);
  auto store = filled(*engine, 5);
  for (const auto& r : {read(*store, "c", 0), read(*store, "c", 0, 1), read(*store, "c", 0, 1, 4),
                        read(*store, "c", 0, std::nullopt, 4)}) {
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.events.empty());
    EXPECT_EQ(r.last_offset, 5u);
    EXPECT_EQ(r.first_offset, 1u);
  }
}

TEST_F(MemoryEngineTest, EpochSharedByChannelsAndShards) {
  auto engine = make(10);
  auto a = open(*engine, 0);
  auto b = open(*engine, 1);
  const std::string epoch = append(*a, "x").epoch;
  EXPECT_EQ(epoch.size(), 8u);
  for (char c : epoch) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) << epoch;
  EXPECT_EQ(append(*a, "y").epoch, epoch);
  EXPECT_EQ(append(*b, "z").epoch, epoch);
  EXPECT_EQ(read(*a, "x", 1).epoch, epoch);
  EXPECT_EQ(read(*b, "nothing", 1).epoch, epoch);
}

TEST_F(MemoryEngineTest, EpochDiffersBetweenEngines) {
  auto first = make(10);
  auto second = make(10);
  EXPECT_NE(append(*open(*first), "c").epoch, append(*open(*second), "c").epoch);
}

TEST_F(MemoryEngineTest, ShardsAreIndependent) {
  auto engine = make(10);
  auto a = open(*engine, 0);
  auto b = open(*engine, 1);
  append(*a, "c", "from a");
  append(*a, "c", "from a");
  EXPECT_EQ(append(*b, "c", "from b").offset, 1u);
  EXPECT_EQ(read(*a, "c", 10).last_offset, 2u);
  const HistoryResult rb = read(*b, "c", 10);
  ASSERT_EQ(rb.events.size(), 1u);
  EXPECT_EQ(rb.events[0].data, "from b");
}

TEST_F(MemoryEngineTest, DefaultFactoryUsesSystemClock) {
  auto engine = make_memory_engine(MemoryLimits{10, 60000});
  auto store = engine->open_shard(0, io_.get_executor());
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  append(*store, "c", "stale", now - 3'600'000);  // an hour old: dropped at once
  append(*store, "c", "fresh", now);
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{2}));
}

TEST_F(MemoryEngineTest, CallbackMayCallBackIntoTheStore) {
  auto engine = make(10);
  auto store = open(*engine);
  std::vector<uint64_t> seen;
  store->append("c", NewEvent{"e", "1", "", "", now_}, [&](AppendResult r) {
    seen.push_back(r.offset);
    store->append("c", NewEvent{"e", "2", "", "", now_},
                  [&](AppendResult r2) { seen.push_back(r2.offset); });
  });
  EXPECT_EQ(seen, (Offsets{1, 2}));
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{1, 2}));
}

// remove() -------------------------------------------------------------------

TEST_F(MemoryEngineTest, RemoveEmptiesTheChannelAndStartsANewEpoch) {
  auto engine = make(100);
  auto store = filled(*engine, 3);
  append(*store, "other");
  const std::string old_epoch = read(*store, "c", 10).epoch;
  const RemoveResult removed = remove(*store, "c");
  ASSERT_TRUE(removed.ok) << removed.error;
  EXPECT_EQ(removed.epoch.size(), 8u);
  EXPECT_NE(removed.epoch, old_epoch);
  HistoryResult r = read(*store, "c", 10, 0);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.epoch, removed.epoch);
  EXPECT_EQ(r.last_offset, 0u);
  EXPECT_EQ(r.first_offset, 0u);
  EXPECT_EQ(r.created_ms, 0);
  EXPECT_TRUE(r.events.empty());
  // Offsets start again at 1, under the new epoch.
  const AppendResult next = append(*store, "c", "new");
  EXPECT_EQ(next.offset, 1u);
  EXPECT_EQ(next.epoch, removed.epoch);
  r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{1}));
  EXPECT_EQ(r.events[0].data, "new");
  EXPECT_EQ(r.epoch, removed.epoch);
  // Other channels keep their events and the process's epoch.
  const HistoryResult other = read(*store, "other", 10);
  EXPECT_EQ(other.epoch, old_epoch);
  EXPECT_EQ(offsets(other), (Offsets{1}));
  EXPECT_EQ(append(*store, "other").epoch, old_epoch);
  // Each removal gives another epoch.
  const RemoveResult again = remove(*store, "c");
  EXPECT_NE(again.epoch, removed.epoch);
  EXPECT_NE(again.epoch, old_epoch);
  EXPECT_EQ(append(*store, "c").epoch, again.epoch);
}

TEST_F(MemoryEngineTest, RemovingAChannelNeverUsedGivesItItsOwnEpoch) {
  auto engine = make(10);
  auto store = open(*engine);
  const std::string process_epoch = read(*store, "never", 10).epoch;
  const RemoveResult removed = remove(*store, "never");
  ASSERT_TRUE(removed.ok);
  EXPECT_NE(removed.epoch, process_epoch);
  const HistoryResult r = read(*store, "never", 10);
  EXPECT_EQ(r.epoch, removed.epoch);
  EXPECT_EQ(r.last_offset, 0u);
  const AppendResult a = append(*store, "never");
  EXPECT_EQ(a.offset, 1u);
  EXPECT_EQ(a.epoch, removed.epoch);
}

TEST_F(MemoryEngineTest, CreatedIsTheFirstEventsTimeAndOutlivesItsRetention) {
  auto engine = make(2, 1000);
  auto store = open(*engine);
  EXPECT_EQ(read(*store, "c", 10).created_ms, 0);  // never published
  const AppendResult first = append(*store, "c", "1", kT0 - 100);
  EXPECT_EQ(first.created_ms, kT0 - 100);
  for (int i = 2; i <= 4; ++i) {
    now_ += 10;
    EXPECT_EQ(append(*store, "c", std::to_string(i)).created_ms, kT0 - 100);
  }
  HistoryResult r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{3, 4}));  // the count limit dropped the first event
  EXPECT_EQ(r.created_ms, kT0 - 100);
  now_ += 5000;  // and the age limit all of them
  r = read(*store, "c", 10);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.created_ms, kT0 - 100);

  ASSERT_TRUE(remove(*store, "c").ok);
  EXPECT_EQ(read(*store, "c", 10).created_ms, 0);
  EXPECT_EQ(append(*store, "c", "x", now_).created_ms, now_);
  EXPECT_EQ(append(*store, "c", "y", now_ + 5).created_ms, now_);
  EXPECT_EQ(read(*store, "c", 10).created_ms, now_);
}

// The ordering contract with remove: the memory engine completes each call
// before it returns, so a read made before remove() sees the old events and
// one made after it the new, empty epoch.
TEST_F(MemoryEngineTest, RemoveIsOrderedWithAppendsAndReads) {
  auto engine = make(100);
  auto store = filled(*engine, 2);
  std::vector<std::string> order;
  std::optional<HistoryResult> before;
  std::optional<HistoryResult> after;
  std::optional<RemoveResult> removed;
  std::optional<AppendResult> next;
  HistoryQuery q;
  q.after = 0;
  store->append("c", NewEvent{"e", "3", "", "", now_},
                [&](AppendResult) { order.push_back("append 3"); });
  store->append("c", NewEvent{"e", "4", "", "", now_},
                [&](AppendResult) { order.push_back("append 4"); });
  store->read("c", q, [&](HistoryResult r) {
    order.push_back("read before");
    before = std::move(r);
  });
  store->remove("c", [&](RemoveResult r) {
    order.push_back("remove");
    removed = std::move(r);
  });
  store->read("c", q, [&](HistoryResult r) {
    order.push_back("read after");
    after = std::move(r);
  });
  store->append("c", NewEvent{"e", "new", "", "", now_}, [&](AppendResult r) {
    order.push_back("append new");
    next = std::move(r);
  });
  EXPECT_EQ(order, (std::vector<std::string>{"append 3", "append 4", "read before", "remove",
                                             "read after", "append new"}));
  ASSERT_TRUE(before && after && removed && next);
  EXPECT_EQ(offsets(*before), (Offsets{1, 2, 3, 4}));
  EXPECT_NE(before->epoch, removed->epoch);
  EXPECT_EQ(after->epoch, removed->epoch);
  EXPECT_EQ(after->last_offset, 0u);
  EXPECT_TRUE(after->events.empty());
  EXPECT_EQ(next->offset, 1u);
  EXPECT_EQ(next->epoch, removed->epoch);
}

// Appends with an idempotency key (window 1 s, at most `max_keys` per channel).
AppendResult keyed(ShardStore& store, const std::string& channel, const std::string& key,
                   uint64_t fingerprint, int64_t ts, size_t max_keys = 100) {
  std::optional<AppendResult> out;
  NewEvent ev{"e", "1", "client-1", "user-1", ts};
  ev.idempotency_key = key;
  ev.fingerprint = fingerprint;
  ev.idempotency_window_ms = 1000;
  ev.idempotency_max_keys = max_keys;
  store.append(channel, std::move(ev), [&](AppendResult r) { out = std::move(r); });
  return out.value_or(AppendResult{});
}

TEST_F(MemoryEngineTest, IdempotencyKeyReplaysTheOriginalOffsetAndStoresNothing) {
  auto engine = make(100);
  auto store = open(*engine);
  const AppendResult first = keyed(*store, "c", "k1", 7, kT0);
  ASSERT_TRUE(first.ok);
  EXPECT_FALSE(first.replayed);
  EXPECT_EQ(first.offset, 1u);
  const AppendResult again = keyed(*store, "c", "k1", 7, kT0 + 10);
  EXPECT_TRUE(again.ok);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.offset, 1u);
  EXPECT_EQ(again.epoch, first.epoch);
  EXPECT_EQ(read(*store, "c", 10).events.size(), 1u);
  EXPECT_EQ(append(*store, "c").offset, 2u);  // no offset was consumed by the replay
  const AppendResult other = keyed(*store, "c", "k1", 8, kT0 + 20);  // other event or data
  EXPECT_FALSE(other.ok);
  EXPECT_TRUE(other.conflict);
  EXPECT_EQ(other.offset, 1u);
  EXPECT_EQ(other.idempotency_key, "k1");
  EXPECT_EQ(keyed(*store, "d", "k1", 8, kT0 + 20).offset, 1u);  // keys are per channel
  // After the window the key is new again.
  const AppendResult later = keyed(*store, "c", "k1", 7, kT0 + 1000);
  EXPECT_TRUE(later.ok);
  EXPECT_FALSE(later.replayed);
  EXPECT_EQ(later.offset, 3u);
}

TEST_F(MemoryEngineTest, IdempotencyKeysAreBoundedAndForgottenByRemove) {
  auto engine = make(100);
  auto store = open(*engine);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(keyed(*store, "c", "k" + std::to_string(i), 1, kT0, 3).ok);
  EXPECT_FALSE(keyed(*store, "c", "k0", 1, kT0, 3).replayed);  // the oldest were forgotten
  EXPECT_TRUE(keyed(*store, "c", "k4", 1, kT0, 3).replayed);
  remove(*store, "c");
  const AppendResult after = keyed(*store, "c", "k4", 1, kT0);
  EXPECT_FALSE(after.replayed);
  EXPECT_EQ(after.offset, 1u);
}

}  // namespace
}  // namespace herald::engine
