// Unit tests for the redis engine (src/engine/redis/redis_engine.*) against a
// real redis-server started by each test (redis_server.hpp): the embedded
// scripts and their SHA1s, offsets, every field, history queries, retention
// by count and age, remove and epochs, created_ms, idempotency keys (replay,
// conflict, window, max keys, shared by two engines through the seed), the
// ordering contract with calls issued back to back, two shards on two
// threads, Redis stopped and restarted, FLUSHALL, SCRIPT FLUSH (NOSCRIPT
// retried in order), and a clear start-up error.
#include "engine/redis/redis_engine.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/clock_and_epoch.hpp"
#include "engine/redis/redis_scripts.hpp"
#include "redis_server.hpp"

namespace herald::engine::redis {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RedisServer;
using ::testing::StartsWith;
using Offsets = std::vector<uint64_t>;

class RedisEngineTest : public ::testing::Test {
 protected:
  RedisEngineOptions options(size_t max_events = 1000, int64_t max_age_ms = 0) {
    RedisEngineOptions o;
    o.url = parse_redis_url(server_.url());
    o.connection.reconnect_min = 10ms;
    o.connection.reconnect_max = 100ms;
    o.max_events_per_channel = max_events;
    o.max_age_ms = max_age_ms;
    o.now_ms = [this] { return now_; };
    return o;
  }

  std::unique_ptr<Engine> make(size_t max_events = 1000, int64_t max_age_ms = 0) {
    return make_redis_engine(options(max_events, max_age_ms));
  }

  std::unique_ptr<ShardStore> open(Engine& engine) {
    return engine.open_shard(0, io_.get_executor());
  }

  void run_until(const std::function<bool()>& done) {
    ASSERT_TRUE(testing::run_until(io_, done)) << "operation did not complete";
  }

  NewEvent event(std::string data = "1", std::optional<int64_t> ts = std::nullopt,
                 std::optional<Retention> retention = std::nullopt) {
    return NewEvent{"e",       std::move(data), "client-1", "user-1", ts.value_or(now_),
                    retention, R"({"n":"Ana"})"};
  }

  AppendResult append(ShardStore& store, const std::string& channel, std::string data = "1",
                      std::optional<int64_t> ts = std::nullopt,
                      std::optional<Retention> retention = std::nullopt) {
    return append(store, channel, event(std::move(data), ts, retention));
  }

  AppendResult append(ShardStore& store, const std::string& channel, NewEvent ev) {
    std::optional<AppendResult> out;
    store.append(channel, std::move(ev), [&](AppendResult r) { out = std::move(r); });
    run_until([&] { return out.has_value(); });
    return out.value_or(AppendResult{});
  }

  static HistoryQuery query(size_t limit, std::optional<uint64_t> after = std::nullopt,
                            std::optional<uint64_t> before = std::nullopt,
                            std::optional<Retention> retention = std::nullopt) {
    HistoryQuery q;
    q.limit = limit;
    q.after = after;
    q.before = before;
    q.retention = retention;
    return q;
  }

  HistoryResult read(ShardStore& store, const std::string& channel, size_t limit,
                     std::optional<uint64_t> after = std::nullopt,
                     std::optional<uint64_t> before = std::nullopt,
                     std::optional<Retention> retention = std::nullopt) {
    std::optional<HistoryResult> out;
    store.read(channel, query(limit, after, before, retention),
               [&](HistoryResult r) { out = std::move(r); });
    run_until([&] { return out.has_value(); });
    return out.value_or(HistoryResult{});
  }

  RemoveResult remove(ShardStore& store, const std::string& channel) {
    std::optional<RemoveResult> out;
    store.remove(channel, [&](RemoveResult r) { out = std::move(r); });
    run_until([&] { return out.has_value(); });
    return out.value_or(RemoveResult{});
  }

  NewEvent keyed_event(const std::string& key, uint64_t fingerprint,
                       std::optional<int64_t> ts = std::nullopt, int64_t window_ms = 120000,
                       size_t max_keys = 10000) {
    NewEvent ev = event("k", ts);
    ev.idempotency_key = key;
    ev.fingerprint = fingerprint;
    ev.idempotency_window_ms = window_ms;
    ev.idempotency_max_keys = max_keys;
    return ev;
  }

  AppendResult keyed(ShardStore& store, const std::string& channel, const std::string& key,
                     uint64_t fingerprint, std::optional<int64_t> ts = std::nullopt,
                     int64_t window_ms = 120000, size_t max_keys = 10000) {
    return append(store, channel, keyed_event(key, fingerprint, ts, window_ms, max_keys));
  }

  static Offsets offsets(const HistoryResult& r) {
    Offsets out;
    for (const auto& e : r.events) out.push_back(e.offset);
    return out;
  }

  std::unique_ptr<ShardStore> filled(Engine& engine, int n) {
    auto store = open(engine);
    for (int i = 1; i <= n; ++i) append(*store, "c", std::to_string(i));
    return store;
  }

  // Redis' TTLs run on real time, so the fake clock starts at the real one.
  int64_t now_ = system_now_ms();
  RedisServer server_;
  boost::asio::io_context io_;
};

TEST_F(RedisEngineTest, ScriptsAreEmbeddedWithTheSha1RedisGives) {
  EXPECT_EQ(make()->name(), "redis");
  for (Script s : {Script::publish, Script::read, Script::remove}) {
    const std::string text(redis_script(s));
    EXPECT_THAT(text, StartsWith("#!lua"));
    EXPECT_EQ(to_string(server_.call({"SCRIPT", "LOAD", text})),
              "\"" + std::string(redis_script_sha1(s)) + "\"");
  }
}

TEST_F(RedisEngineTest, KeysOfAChannelShareAnEscapedHashTag) {
  EXPECT_EQ(channel_key("herald", "chat:lobby", "meta"), "herald:{chat:lobby}:meta");
  EXPECT_EQ(channel_key("p", "a}b%c", "stream"), "p:{a%7Db%25c}:stream");
  auto engine = make();
  auto store = open(*engine);
  append(*store, "x}y");
  EXPECT_EQ(server_.call({"EXISTS", "herald:{x%7Dy}:meta", "herald:{x%7Dy}:stream"}).integer, 2);
}

TEST_F(RedisEngineTest, OffsetsAreContiguousFromOne) {
  auto engine = make();
  auto store = open(*engine);
  std::string epoch;
  for (uint64_t i = 1; i <= 5; ++i) {
    const AppendResult r = append(*store, "chat:lobby");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.offset, i);
    EXPECT_FALSE(r.replayed);
    if (i == 1) epoch = r.epoch;
    EXPECT_EQ(r.epoch, epoch);
    EXPECT_EQ(r.created_ms, now_);
  }
  EXPECT_EQ(append(*store, "chat:other").offset, 1u);
  EXPECT_EQ(append(*store, "chat:lobby").offset, 6u);
  // Another store (another worker or node) continues the same offsets.
  auto other = open(*engine);
  EXPECT_EQ(append(*other, "chat:lobby").offset, 7u);
}

TEST_F(RedisEngineTest, StoresEveryField) {
  auto engine = make();
  auto store = open(*engine);
  NewEvent ev = event(R"({"text":"hi"})", now_ - 5);
  ev.event = "chat.message";
  ev.from_info = std::string("bin\0ary", 7);
  append(*store, "c", std::move(ev));
  const HistoryResult r = read(*store, "c", 10);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.events.size(), 1u);
  const StoredEvent& e = r.events[0];
  EXPECT_EQ(e.offset, 1u);
  EXPECT_EQ(e.ts_ms, now_ - 5);
  EXPECT_EQ(e.event, "chat.message");
  EXPECT_EQ(e.data, R"({"text":"hi"})");
  EXPECT_EQ(e.from_client, "client-1");
  EXPECT_EQ(e.from_user, "user-1");
  EXPECT_EQ(e.from_info, std::string("bin\0ary", 7));
  EXPECT_EQ(r.created_ms, now_ - 5);
}

TEST_F(RedisEngineTest, UnknownChannelReadsEmptyWithTheEpochItsFirstAppendKeeps) {
  auto engine = make();
  auto store = open(*engine);
  const HistoryResult r = read(*store, "nobody", 10);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.epoch.empty());
  EXPECT_EQ(r.last_offset, 0u);
  EXPECT_EQ(r.first_offset, 0u);
  EXPECT_EQ(r.created_ms, 0);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(append(*store, "nobody").epoch, r.epoch);
}

TEST_F(RedisEngineTest, HistoryWithLimitBeforeAndAfter) {
  auto engine = make();
  auto store = filled(*engine, 10);
  HistoryResult r = read(*store, "c", 3);
  EXPECT_EQ(offsets(r), (Offsets{8, 9, 10}));
  EXPECT_EQ(r.first_offset, 1u);
  EXPECT_EQ(r.last_offset, 10u);
  EXPECT_EQ(r.events[0].data, "8");
  EXPECT_EQ(offsets(read(*store, "c", 3, std::nullopt, 6)), (Offsets{3, 4, 5}));
  EXPECT_EQ(offsets(read(*store, "c", 10, std::nullopt, 3)), (Offsets{1, 2}));
  EXPECT_TRUE(read(*store, "c", 10, std::nullopt, 1).events.empty());
  EXPECT_EQ(offsets(read(*store, "c", 3, 4)), (Offsets{5, 6, 7}));
  EXPECT_EQ(offsets(read(*store, "c", 10, 8)), (Offsets{9, 10}));
  EXPECT_TRUE(read(*store, "c", 10, 10).events.empty());
  EXPECT_EQ(offsets(read(*store, "c", 10, 2, 6)), (Offsets{3, 4, 5}));
  EXPECT_EQ(offsets(read(*store, "c", 2, 2, 6)), (Offsets{3, 4}));
  EXPECT_TRUE(read(*store, "c", 0).events.empty());
}

TEST_F(RedisEngineTest, CountRetentionDropsOldestButOffsetsContinue) {
  auto engine = make(3);
  auto store = filled(*engine, 5);
  HistoryResult r = read(*store, "c", 100);
  EXPECT_EQ(offsets(r), (Offsets{3, 4, 5}));
  EXPECT_EQ(r.first_offset, 3u);
  EXPECT_EQ(r.last_offset, 5u);
  EXPECT_EQ(append(*store, "c").offset, 6u);
  EXPECT_EQ(offsets(read(*store, "c", 100)), (Offsets{4, 5, 6}));
  // A channel's own retention overrides the engine's, and may shrink.
  EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{2, 0})), (Offsets{5, 6}));
  for (int i = 1; i <= 4; ++i) append(*store, "big", std::to_string(i), {}, Retention{100, 0});
  EXPECT_EQ(offsets(read(*store, "big", 100, {}, {}, Retention{100, 0})), (Offsets{1, 2, 3, 4}));
  // None kept, offsets still count.
  append(*store, "none", "x", {}, Retention{0, 0});
  EXPECT_EQ(append(*store, "none", "x", {}, Retention{0, 0}).offset, 2u);
  const HistoryResult none = read(*store, "none", 10, {}, {}, Retention{0, 0});
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.last_offset, 2u);
  EXPECT_EQ(none.first_offset, 0u);
  EXPECT_EQ(server_.call({"EXISTS", "herald:{none}:stream"}).integer, 0);
}

TEST_F(RedisEngineTest, ManyEventsThroughASmallCountLimit) {
  auto engine = make(7);
  auto store = open(*engine);
  // Pipelined: 1000 appends issued in one go, then one read behind them.
  std::vector<uint64_t> got;
  for (int i = 1; i <= 1000; ++i)
    store->append("c", event(std::to_string(i)), [&](AppendResult r) { got.push_back(r.offset); });
  std::optional<HistoryResult> r;
  store->read("c", query(100), [&](HistoryResult h) { r = std::move(h); });
  run_until([&] { return r.has_value(); });
  ASSERT_EQ(got.size(), 1000u);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1);
  EXPECT_EQ(offsets(*r), (Offsets{994, 995, 996, 997, 998, 999, 1000}));
  for (const auto& e : r->events) EXPECT_EQ(e.data, std::to_string(e.offset));
}

TEST_F(RedisEngineTest, AgeRetentionOnReadAndAppend) {
  auto engine = make(100, 60000);
  auto store = open(*engine);
  append(*store, "c");  // 1 at T0
  now_ += 30000;
  append(*store, "c");  // 2 at T0+30s
  now_ += 30000;        // event 1 exactly 60 s old: kept
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{1, 2}));
  now_ += 1;
  HistoryResult r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{2}));
  EXPECT_EQ(r.first_offset, 2u);
  EXPECT_EQ(r.last_offset, 2u);
  now_ += 600000;  // everything too old
  r = read(*store, "c", 10);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.first_offset, 0u);
  EXPECT_EQ(r.last_offset, 2u);
  EXPECT_EQ(append(*store, "c").offset, 3u);  // offsets are not reused
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{3}));
  // Too old when stored; a channel's age limit overrides the engine's.
  append(*store, "d", "old", now_ - 5000, Retention{100, 1000});
  append(*store, "d", "new", now_, Retention{100, 1000});
  EXPECT_EQ(offsets(read(*store, "d", 10, {}, {}, Retention{100, 1000})), (Offsets{2}));
  EXPECT_EQ(server_.call({"XLEN", "herald:{d}:stream"}).integer, 1);  // trimmed by the append
}

TEST_F(RedisEngineTest, RemoveGivesANewEpochAndOffsetsRestart) {
  auto engine = make();
  auto store = filled(*engine, 3);
  const HistoryResult before = read(*store, "c", 10);
  const RemoveResult removed = remove(*store, "c");
  ASSERT_TRUE(removed.ok) << removed.error;
  EXPECT_NE(removed.epoch, before.epoch);
  EXPECT_EQ(removed.epoch.size(), 8u);
  HistoryResult r = read(*store, "c", 10);
  EXPECT_EQ(r.epoch, removed.epoch);
  EXPECT_EQ(r.last_offset, 0u);
  EXPECT_EQ(r.created_ms, 0);
  EXPECT_TRUE(r.events.empty());
  now_ += 10;
  const AppendResult a = append(*store, "c", "new");
  EXPECT_EQ(a.offset, 1u);
  EXPECT_EQ(a.epoch, removed.epoch);
  EXPECT_EQ(a.created_ms, now_);
  r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{1}));
  EXPECT_EQ(r.events[0].data, "new");
  // Removing a channel never published to works too.
  EXPECT_TRUE(remove(*store, "never").ok);
}

TEST_F(RedisEngineTest, CreatedIsTheFirstEventsTimeAndOutlivesItsRetention) {
  auto engine = make(2);
  auto store = open(*engine);
  const int64_t t0 = now_;
  append(*store, "c", "1", t0);
  for (int i = 2; i <= 5; ++i) append(*store, "c", std::to_string(i), t0 + i);
  const HistoryResult r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{4, 5}));
  EXPECT_EQ(r.created_ms, t0);
  EXPECT_EQ(append(*store, "c").created_ms, t0);
}

TEST_F(RedisEngineTest, IdempotentReplayReturnsTheOriginalOffsetAndStoresNothing) {
  auto engine = make();
  auto store = open(*engine);
  append(*store, "c");
  const AppendResult first = keyed(*store, "c", "key-1", 42);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(first.offset, 2u);
  EXPECT_FALSE(first.replayed);
  now_ += 1000;
  const AppendResult again = keyed(*store, "c", "key-1", 42);
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_TRUE(again.replayed);
  EXPECT_FALSE(again.conflict);
  EXPECT_EQ(again.offset, 2u);
  EXPECT_EQ(again.epoch, first.epoch);
  EXPECT_EQ(again.created_ms, first.created_ms);
  EXPECT_EQ(offsets(read(*store, "c", 10)), (Offsets{1, 2}));
  EXPECT_EQ(append(*store, "c").offset, 3u);
  // The same key on another channel is another key.
  EXPECT_EQ(keyed(*store, "d", "key-1", 42).offset, 1u);
  // Keys are stored by their seeded hash, in canonical decimal.
  const Reply fields = server_.call({"HKEYS", "herald:{c}:keys"});
  ASSERT_EQ(fields.elements.size(), 1u);
  EXPECT_EQ(fields.elements[0].str, std::to_string(std::stoull(fields.elements[0].str)));
}

TEST_F(RedisEngineTest, IdempotencyKeyWithAnotherFingerprintIsAConflict) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(keyed(*store, "c", "k", 1).offset, 1u);
  const AppendResult r = keyed(*store, "c", "k", 2);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.conflict);
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(r.offset, 1u);
  EXPECT_THAT(r.error, HasSubstr("idempotency key conflict"));
  EXPECT_EQ(r.idempotency_key, "k");
  EXPECT_EQ(append(*store, "c").offset, 2u);
  EXPECT_TRUE(keyed(*store, "c", "k", 1).replayed);
}

TEST_F(RedisEngineTest, IdempotencyKeyIsNewAgainAfterItsWindow) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(keyed(*store, "c", "k", 1, now_, 1000).offset, 1u);
  EXPECT_TRUE(keyed(*store, "c", "k", 1, now_ + 999, 1000).replayed);
  const AppendResult later = keyed(*store, "c", "k", 2, now_ + 1000, 1000);
  ASSERT_TRUE(later.ok) << later.error;
  EXPECT_FALSE(later.replayed);
  EXPECT_EQ(later.offset, 2u);
  const AppendResult replay = keyed(*store, "c", "k", 2, now_ + 1500, 1000);
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.offset, 2u);
}

TEST_F(RedisEngineTest, IdempotencyKeysBeyondTheMaxAreForgotten) {
  auto engine = make();
  auto store = open(*engine);
  for (int i = 1; i <= 5; ++i)
    ASSERT_EQ(keyed(*store, "c", "k" + std::to_string(i), 1, now_ + i, 120000, 3).offset,
              static_cast<uint64_t>(i));
  EXPECT_EQ(server_.call({"HLEN", "herald:{c}:keys"}).integer, 3);
  EXPECT_TRUE(keyed(*store, "c", "k5", 1, now_ + 10, 120000, 3).replayed);
  EXPECT_TRUE(keyed(*store, "c", "k3", 1, now_ + 10, 120000, 3).replayed);
  const AppendResult k1 = keyed(*store, "c", "k1", 1, now_ + 10, 120000, 3);
  EXPECT_FALSE(k1.replayed);
  EXPECT_EQ(k1.offset, 6u);  // and now k3 is the oldest: forgotten
  EXPECT_FALSE(keyed(*store, "c", "k3", 1, now_ + 11, 120000, 3).replayed);
}

TEST_F(RedisEngineTest, RemoveForgetsIdempotencyKeys) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(keyed(*store, "c", "k", 1).offset, 1u);
  ASSERT_TRUE(remove(*store, "c").ok);
  const AppendResult r = keyed(*store, "c", "k", 1);
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(r.offset, 1u);
}

// The seed lives in Redis: two engines (two nodes) hash a key the same way.
TEST_F(RedisEngineTest, TwoEnginesShareTheSeedSoAKeyIsReplayedOnEither) {
  auto a = make();
  auto b = make();
  auto sa = open(*a);
  auto sb = open(*b);
  ASSERT_EQ(keyed(*sa, "c", "k", 7).offset, 1u);
  const AppendResult r = keyed(*sb, "c", "k", 7);
  EXPECT_TRUE(r.replayed);
  EXPECT_EQ(r.offset, 1u);
}

// engine.hpp's ordering contract with everything issued in one loop turn:
// callbacks in call order, each read seeing exactly the calls before it.
TEST_F(RedisEngineTest, CallsIssuedBackToBackCompleteInCallOrder) {
  auto engine = make();
  auto store = open(*engine);
  std::vector<std::string> log;
  std::vector<HistoryResult> reads;
  std::string removed_epoch;
  const auto add = [&](int n) {
    store->append("c", event(std::to_string(n)), [&log, n](AppendResult r) {
      log.push_back("a" + std::to_string(n) + "@" + std::to_string(r.offset));
    });
  };
  const auto rd = [&] {
    store->read("c", query(100), [&](HistoryResult r) {
      log.push_back("r" + std::to_string(r.last_offset));
      reads.push_back(std::move(r));
    });
  };
  add(1);
  add(2);
  rd();
  add(3);
  store->remove("c", [&](RemoveResult r) {
    log.push_back("x");
    removed_epoch = r.epoch;
  });
  rd();
  add(4);
  rd();
  run_until([&] { return log.size() == 8; });
  EXPECT_EQ(log, (std::vector<std::string>{"a1@1", "a2@2", "r2", "a3@3", "x", "r0", "a4@1", "r1"}));
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(offsets(reads[0]), (Offsets{1, 2}));
  EXPECT_TRUE(reads[1].events.empty());
  EXPECT_EQ(reads[1].epoch, removed_epoch);
  EXPECT_EQ(offsets(reads[2]), (Offsets{1}));
  EXPECT_EQ(reads[2].events[0].data, "4");
  EXPECT_EQ(reads[2].epoch, removed_epoch);
}

// publish.lua is atomic: two workers on two threads appending to one channel
// get distinct offsets with no gap, each its own in increasing order.
TEST_F(RedisEngineTest, TwoShardsOnTwoThreadsGetGapFreeDistinctOffsets) {
  auto engine = make(10000);
  constexpr int kEach = 2000;
  std::vector<uint64_t> got[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      boost::asio::io_context io;
      auto store = engine->open_shard(t, io.get_executor());
      int done = 0;
      for (int i = 0; i < kEach; ++i)
        store->append("c", event("x"), [&, t](AppendResult r) {
          ++done;
          if (r.ok) got[t].push_back(r.offset);
        });
      testing::run_until(
          io, [&] { return done == kEach; }, 30s);
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> all;
  for (auto& g : got) {
    ASSERT_EQ(g.size(), static_cast<size_t>(kEach));
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
    all.insert(all.end(), g.begin(), g.end());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
  EXPECT_EQ(read(*open(*engine), "c", 1).last_offset, 2u * kEach);
}

TEST_F(RedisEngineTest, RedisStoppedFailsCallsThenRestartedWorksAgain) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(append(*store, "c").offset, 1u);
  server_.stop();
  for (int i = 0; i < 3; ++i) {
    const AppendResult r = append(*store, "c", "lost");
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.unavailable);  // clients get `unavailable`, not `internal`
    EXPECT_THAT(r.error, StartsWith("redis unavailable")) << r.error;
  }
  const HistoryResult h = read(*store, "c", 10);
  EXPECT_FALSE(h.ok);
  EXPECT_TRUE(h.unavailable);
  EXPECT_THAT(h.error, StartsWith("redis unavailable"));
  const RemoveResult x = remove(*store, "c");
  EXPECT_FALSE(x.ok);
  EXPECT_TRUE(x.unavailable);
  EXPECT_THAT(x.error, StartsWith("redis unavailable"));
  server_.start();  // without persistence: everything is gone, a new epoch
  AppendResult r;
  ASSERT_TRUE(testing::run_until(io_, [&] {
    r = append(*store, "c", "back");
    return r.ok;
  }));
  EXPECT_EQ(r.offset, 1u);
  const HistoryResult after = read(*store, "c", 10);
  ASSERT_EQ(after.events.size(), 1u);
  EXPECT_EQ(after.events[0].data, "back");
}

TEST_F(RedisEngineTest, FlushallGivesANewEpoch) {
  auto engine = make();
  auto store = filled(*engine, 3);
  const std::string old_epoch = read(*store, "c", 1).epoch;
  read(*store, "d", 1);
  server_.call({"FLUSHALL"});
  const AppendResult a = append(*store, "c");
  EXPECT_EQ(a.offset, 1u);
  EXPECT_NE(a.epoch, old_epoch);
  server_.call({"FLUSHALL"});
  const HistoryResult r = read(*store, "c", 10);
  EXPECT_NE(r.epoch, a.epoch);
  EXPECT_EQ(r.last_offset, 0u);
}

// After SCRIPT FLUSH every pipelined EVALSHA gets NOSCRIPT: they are sent
// again (EVAL) in call order, and the calls behind them wait.
TEST_F(RedisEngineTest, ScriptFlushIsHandledInOrder) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(append(*store, "c").offset, 1u);
  server_.call({"SCRIPT", "FLUSH"});
  std::vector<std::string> log;
  for (int i = 2; i <= 20; ++i)
    store->append("c", event(std::to_string(i)), [&log](AppendResult r) {
      log.push_back(r.ok ? std::to_string(r.offset) : r.error);
    });
  store->read("c", query(100), [&](HistoryResult r) {
    log.push_back("r" + std::to_string(r.last_offset) + ":" + std::to_string(r.events.size()));
  });
  store->remove("c", [&](RemoveResult r) { log.push_back(r.ok ? "x" : r.error); });
  store->append("c", event("new"),
                [&log](AppendResult r) { log.push_back("n" + std::to_string(r.offset)); });
  run_until([&] { return log.size() == 22; });
  std::vector<std::string> want;
  for (int i = 2; i <= 20; ++i) want.push_back(std::to_string(i));
  want.insert(want.end(), {"r20:20", "x", "n1"});
  EXPECT_EQ(log, want);
  // And EVALSHA works again afterwards (EVAL loaded the scripts).
  EXPECT_EQ(append(*store, "c").offset, 2u);
}

// The rare case the retry must not reorder: publish.lua is gone but read.lua
// is loaded (as when another node loads it in between), so an append gets
// Each connection loads the scripts when it (re)connects: after a Redis
// restart (its script cache empty) the first calls, from two nodes at once,
// run without a single NOSCRIPT (which could have failed a retried call).
TEST_F(RedisEngineTest, ScriptsAreLoadedOnEveryConnectionSoARestartedRedisNeverSaysNoscript) {
  auto a = make();
  auto b = make();
  auto store_a = open(*a);
  auto store_b = open(*b);
  ASSERT_EQ(append(*store_a, "c").offset, 1u);
  server_.stop();
  server_.start();  // empty: no scripts, no keys
  ASSERT_TRUE(testing::run_until(io_, [&] { return append(*store_a, "c", "back").ok; }));
  ASSERT_TRUE(testing::run_until(io_, [&] { return read(*store_b, "c", 10).ok; }));
  EXPECT_EQ(append(*store_b, "c", "b").offset, 2u);
  const Reply stats = server_.call({"INFO", "errorstats"});
  EXPECT_THAT(stats.str, Not(HasSubstr("NOSCRIPT"))) << stats.str;
  const Reply calls = server_.call({"INFO", "commandstats"});
  EXPECT_THAT(calls.str, HasSubstr("cmdstat_evalsha:"));
  EXPECT_THAT(calls.str, Not(HasSubstr("cmdstat_eval:"))) << "a script was sent again with EVAL";
}

// NOSCRIPT while a read behind it runs. The append of the read's channel
// fails (nothing stored) rather than being stored after the read saw the
// channel without it; an append of another channel is retried. Callbacks
// still come in call order.
TEST_F(RedisEngineTest, NoscriptRetryNeverOvertakesALaterCallOfTheChannel) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(append(*store, "c").offset, 1u);
  ASSERT_EQ(append(*store, "d").offset, 1u);
  server_.call({"SCRIPT", "FLUSH"});
  server_.call({"SCRIPT", "LOAD", std::string(redis_script(Script::read))});
  std::vector<std::string> log;
  store->append("c", event("2"), [&log](AppendResult r) {
    log.push_back(r.ok ? "c" + std::to_string(r.offset) : "c failed: " + r.error);
  });
  store->append("d", event("2"), [&log](AppendResult r) {
    log.push_back(r.ok ? "d" + std::to_string(r.offset) : "d failed: " + r.error);
  });
  store->read("c", query(100),
              [&](HistoryResult r) { log.push_back("rc" + std::to_string(r.last_offset)); });
  run_until([&] { return log.size() == 3; });
  ASSERT_EQ(log.size(), 3u);
  EXPECT_THAT(log[0], StartsWith("c failed: redis unavailable"));
  EXPECT_EQ(log[1], "d2");
  EXPECT_EQ(log[2], "rc1");
  EXPECT_EQ(read(*store, "c", 10).last_offset, 1u);  // not stored
  EXPECT_EQ(append(*store, "c").offset, 2u);
}

// The core destroys stores only when it stops: calls not yet answered are
// dropped, and nothing runs afterwards (nor touches the freed store).
TEST_F(RedisEngineTest, DestroyedStoreRunsNoCallbackAfterwards) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(append(*store, "c").offset, 1u);
  int called = 0;
  for (int i = 0; i < 100; ++i) store->append("c", event(), [&](AppendResult) { ++called; });
  store->read("c", query(10), [&](HistoryResult) { ++called; });
  store.reset();
  testing::run_for(io_, 100ms);
  EXPECT_EQ(called, 0);
}

// A callback may destroy its store: the calls behind it are dropped.
TEST_F(RedisEngineTest, StoreDestroyedFromItsOwnCallback) {
  auto engine = make();
  auto store = open(*engine);
  int called = 0;
  for (int i = 0; i < 10; ++i)
    store->append("c", event(), [&](AppendResult r) {
      EXPECT_TRUE(r.ok);
      ++called;
      store.reset();
    });
  run_until([&] { return called > 0; });
  testing::run_for(io_, 100ms);
  EXPECT_EQ(called, 1);
}

TEST_F(RedisEngineTest, UnreachableRedisAtStartIsAClearErrorWithoutThePassword) {
  RedisEngineOptions o = options();
  o.url = parse_redis_url("redis://user:s3cret@127.0.0.1:1");
  o.connection.connect_timeout = 500ms;
  try {
    make_redis_engine(o);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("redis unavailable at "));
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:1"));
    EXPECT_THAT(e.what(), Not(HasSubstr("s3cret")));
  }
}

}  // namespace
}  // namespace herald::engine::redis
