// Unit tests for the sqlite engine: contiguous offsets, offsets and epochs
// that survive reopening, group commit from two shards on two threads, every
// history query shape against the memory engine, retention by count and age,
// the read/append ordering that keeps subscribe exact, the bounded channel
// cache, new epochs for a restored older database, clear start-up errors
// for a corrupt database or an unusable data directory, and removing a
// channel (ordered with its appends and reads, kept across a restart) and its
// creation time, and idempotency keys (replay, conflict, window, one batch,
// restarts, remove, the per-channel bound, the sweep and a failed commit).
#include "engine/sqlite/sqlite_engine.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "engine/memory/memory_engine.hpp"

namespace herald::engine {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int64_t kT0 = 1'700'000'000'000;  // a fixed "now" for the fake clock

class SqliteEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "herald-sqlite-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  SqliteOptions options(size_t size = 1000, int64_t max_age_ms = 0, size_t hot_window = 256) {
    SqliteOptions o;
    o.data_dir = (dir_ / "data").string();
    o.max_events_per_channel = size;
    o.max_age_ms = max_age_ms;
    o.hot_window = hot_window;
    o.now_ms = [this] { return now_.load(); };
    return o;
  }

  std::unique_ptr<SqliteEngine> make(size_t size = 1000, int64_t max_age_ms = 0,
                                     size_t hot_window = 256) {
    return make_sqlite_engine(options(size, max_age_ms, hot_window));
  }

  std::unique_ptr<ShardStore> open(Engine& engine) {
    return engine.open_shard(0, io_.get_executor());
  }

  // Runs io_ until `done()` or 10 s.
  void run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_one_for(10ms);
    }
    ASSERT_TRUE(done()) << "operation did not complete";
  }

  AppendResult append(ShardStore& store, const std::string& channel, std::string data = "1",
                      std::optional<int64_t> ts = std::nullopt,
                      std::optional<Retention> retention = std::nullopt) {
    std::optional<AppendResult> out;
    store.append(channel,
                 NewEvent{"e", std::move(data), "client-1", "user-1", ts.value_or(now_.load()),
                          retention, R"({"n":"Ana"})"},
                 [&](AppendResult r) { out = std::move(r); });
    run_until([&] { return out.has_value(); });
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
    run_until([&] { return out.has_value(); });
    return out.value_or(HistoryResult{});
  }

  RemoveResult remove(ShardStore& store, const std::string& channel) {
    std::optional<RemoveResult> out;
    store.remove(channel, [&](RemoveResult r) { out = std::move(r); });
    run_until([&] { return out.has_value(); });
    return out.value_or(RemoveResult{});
  }

  // An append with an idempotency key (see NewEvent).
  AppendResult keyed(ShardStore& store, const std::string& channel, const std::string& key,
                     uint64_t fingerprint, std::optional<int64_t> ts = std::nullopt,
                     int64_t window_ms = 120000, size_t max_keys = 10000, std::string data = "k") {
    std::optional<AppendResult> out;
    store.append(channel, keyed_event(key, fingerprint, ts, window_ms, max_keys, std::move(data)),
                 [&](AppendResult r) { out = std::move(r); });
    run_until([&] { return out.has_value(); });
    return out.value_or(AppendResult{});
  }

  NewEvent keyed_event(const std::string& key, uint64_t fingerprint,
                       std::optional<int64_t> ts = std::nullopt, int64_t window_ms = 120000,
                       size_t max_keys = 10000, std::string data = "k") {
    NewEvent ev{"e", std::move(data), "client-1", "user-1", ts.value_or(now_.load())};
    ev.idempotency_key = key;
    ev.fingerprint = fingerprint;
    ev.idempotency_window_ms = window_ms;
    ev.idempotency_max_keys = max_keys;
    return ev;
  }

  // Keys the database remembers for `channel` (rows with a key that has not
  // expired, from the channel's keys_from on), counted with a separate connection.
  int64_t keys_in_db(const std::string& channel) {
    return count_in_db(
        "SELECT COUNT(*) FROM events JOIN channels ON channels.id = events.channel WHERE "
        "channels.name = ?1 AND events.key_hash IS NOT NULL AND events.\"offset\" >= "
        "channels.keys_from AND events.ts + channels.keys_window_ms > ?2",
        channel);
  }

  // Runs a COUNT query with a separate read-only connection; ?1 is `channel`,
  // ?2 (when the query has it) the test clock.
  int64_t count_in_db(const char* sql, const std::string& channel) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((dir_ / "data" / kSqliteFileName).c_str(), &db, SQLITE_OPEN_READONLY,
                              nullptr),
              SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_text(st, 1, channel.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int64(st, 2, now_.load());
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  static std::vector<uint64_t> offsets(const HistoryResult& r) {
    std::vector<uint64_t> out;
    for (const auto& e : r.events) out.push_back(e.offset);
    return out;
  }

  // Rows of `channel` in the database file, counted with a separate connection.
  int64_t rows_in_db(const std::string& channel) {
    return count_in_db(
        "SELECT COUNT(*) FROM events JOIN channels ON channels.id = events.channel WHERE "
        "channels.name = ?1",
        channel);
  }

  static std::string start_error(const SqliteOptions& o) {
    try {
      make_sqlite_engine(o);
    } catch (const std::exception& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  }

  fs::path dir_;
  std::atomic<int64_t> now_{kT0};
  boost::asio::io_context io_;
};

TEST_F(SqliteEngineTest, OffsetsAreContiguousFromOneWithOneEpoch) {
  auto engine = make();
  EXPECT_EQ(engine->name(), "sqlite");
  auto store = open(*engine);
  const AppendResult first = append(*store, "c");
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(first.offset, 1u);
  EXPECT_FALSE(first.epoch.empty());
  for (uint64_t i = 2; i <= 50; ++i) {
    const AppendResult r = append(*store, "c", std::to_string(i));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.offset, i);
    EXPECT_EQ(r.epoch, first.epoch);
  }
  EXPECT_EQ(append(*store, "other").offset, 1u);  // offsets are per channel
  const HistoryResult h = read(*store, "c", 100);
  ASSERT_TRUE(h.ok);
  EXPECT_EQ(h.last_offset, 50u);
  EXPECT_EQ(h.first_offset, 1u);
  ASSERT_EQ(h.events.size(), 50u);
  EXPECT_EQ(h.events[41].data, "42");
  EXPECT_EQ(h.events[41].from_client, "client-1");
  EXPECT_EQ(h.events[41].from_user, "user-1");
  EXPECT_EQ(h.events[41].from_info, R"({"n":"Ana"})");
  EXPECT_EQ(h.events[41].event, "e");
}

TEST_F(SqliteEngineTest, OffsetsAndEpochSurviveReopening) {
  std::string epoch;
  {
    auto engine = make();
    auto store = open(*engine);
    for (int i = 1; i <= 10; ++i) epoch = append(*store, "a", std::to_string(i)).epoch;
    for (int i = 1; i <= 3; ++i) append(*store, "b");
    // An empty channel reads with the same epoch, so a client that saw it
    // empty can recover once events arrive.
    EXPECT_EQ(read(*store, "never", 10).epoch, epoch);
  }
  for (int round = 0; round < 2; ++round) {
    auto engine = make();
    auto store = open(*engine);
    const HistoryResult h = read(*store, "a", 100, 4);  // cold: from the database
    ASSERT_TRUE(h.ok) << h.error;
    EXPECT_EQ(h.epoch, epoch);
    EXPECT_EQ(h.last_offset, 10u + round);
    EXPECT_EQ(offsets(h).front(), 5u);
    EXPECT_EQ(offsets(h).back(), 10u + round);
    const AppendResult r = append(*store, "a", "more");
    EXPECT_EQ(r.offset, 11u + round);
    EXPECT_EQ(r.epoch, epoch);
    EXPECT_EQ(append(*store, "b").offset, 4u + round);
    EXPECT_EQ(read(*store, "never", 10).epoch, epoch);
    EXPECT_EQ(read(*store, "never", 10).last_offset, 0u);
  }
}

TEST_F(SqliteEngineTest, GroupCommitFromTwoShardsOnTwoThreads) {
  auto engine = make(100000);
  constexpr int kPerChannel = 3000;
  const std::vector<std::vector<std::string>> channels = {{"a1", "a2"}, {"b1"}};
  boost::asio::io_context io[2];
  std::unique_ptr<ShardStore> stores[2];
  for (int s = 0; s < 2; ++s) stores[s] = engine->open_shard(s, io[s].get_executor());
  std::vector<std::vector<uint64_t>> acked(3);
  std::vector<std::string> errors[2];
  std::atomic<int> done{0};
  std::atomic<bool> quit{false};
  std::vector<std::thread> threads;
  size_t slot = 0;
  for (int s = 0; s < 2; ++s) {
    std::vector<std::vector<uint64_t>*> mine;
    for (size_t c = 0; c < channels[s].size(); ++c) mine.push_back(&acked[slot++]);
    boost::asio::post(io[s], [&, s, mine] {
      for (int i = 0; i < kPerChannel; ++i) {
        for (size_t c = 0; c < channels[s].size(); ++c) {
          stores[s]->append(channels[s][c], NewEvent{"e", std::to_string(i), "", "", now_},
                            [&, s, out = mine[c]](AppendResult r) {
                              if (!r.ok) errors[s].push_back(r.error);
                              out->push_back(r.offset);
                              ++done;
                            });
        }
      }
    });
    threads.emplace_back([&io, &quit, s] {
      auto guard = boost::asio::make_work_guard(io[s]);
      while (!quit) {
        io[s].run_for(5ms);
        io[s].restart();
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (done < 3 * kPerChannel && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  quit = true;
  for (auto& t : threads) t.join();
  ASSERT_EQ(done.load(), 3 * kPerChannel);
  EXPECT_TRUE(errors[0].empty() && errors[1].empty());
  for (const auto& list : acked) {
    ASSERT_EQ(list.size(), static_cast<size_t>(kPerChannel));
    for (size_t i = 0; i < list.size(); ++i) ASSERT_EQ(list[i], i + 1);  // in order, contiguous
  }
}

// Compares every query shape between the sqlite engine (in several states:
// warm window, small window, cold after reopening) and the memory engine fed
// the same events at the same (fake) times.
TEST_F(SqliteEngineTest, ReadsEqualTheMemoryEngine) {
  constexpr size_t kSize = 20;
  constexpr int64_t kTtl = 10000;
  auto memory = make_memory_engine(MemoryLimits{kSize, kTtl}, [this] { return now_.load(); });
  auto mem = memory->open_shard(0, io_.get_executor());

  auto compare = [&](ShardStore& sql, const std::string& channel, const std::string& what) {
    const std::vector<std::optional<uint64_t>> marks = {std::nullopt, 0,  1,  5,  10, 11, 12,
                                                        15,           20, 24, 29, 30, 31, 100};
    for (size_t limit : {0, 1, 3, 7, 25}) {
      for (const auto& after : marks) {
        for (const auto& before : marks) {
          SCOPED_TRACE(what + " limit=" + std::to_string(limit) +
                       " after=" + (after ? std::to_string(*after) : "-") +
                       " before=" + (before ? std::to_string(*before) : "-"));
          const HistoryResult a = read(*mem, channel, limit, after, before);
          const HistoryResult b = read(sql, channel, limit, after, before);
          ASSERT_TRUE(b.ok) << b.error;
          EXPECT_EQ(a.last_offset, b.last_offset);
          EXPECT_EQ(a.first_offset, b.first_offset);
          ASSERT_EQ(offsets(a), offsets(b));
          for (size_t i = 0; i < a.events.size(); ++i) {
            EXPECT_EQ(a.events[i].data, b.events[i].data);
            EXPECT_EQ(a.events[i].ts_ms, b.events[i].ts_ms);
          }
        }
      }
    }
  };

  {
    auto engine = make(kSize, kTtl, 6);  // a window smaller than the history
    auto sql = open(*engine);
    for (int i = 1; i <= 30; ++i) {
      now_ += 100;
      append(*mem, "c", std::to_string(i));
      append(*sql, "c", std::to_string(i));
    }
    compare(*sql, "c", "warm");
    compare(*sql, "missing", "missing");
    now_ += kTtl - 1000;  // the oldest events (11..20) expire
    compare(*sql, "c", "expired");
  }
  {
    auto engine = make(kSize, kTtl, 6);
    auto sql = open(*engine);
    compare(*sql, "c", "cold");
  }
  {
    auto engine = make(kSize, kTtl, 0);  // no window: every read goes to the database
    auto sql = open(*engine);
    compare(*sql, "c", "no window");
  }
  {
    auto engine = make(kSize, kTtl, 1000);  // the window holds everything
    auto sql = open(*engine);
    compare(*sql, "c", "whole window");
    now_ += 5000;  // everything expired
    compare(*sql, "c", "all expired");
  }
}

// Reads and appends of a channel complete in one sequence: when a read's
// callback runs, its result holds exactly the events whose append callbacks
// already ran (see "The subscribe race" in sqlite_engine.cpp). Node relies on
// this: the events it delivered to a worker before the `subscribed` reply
// must be in that reply, and the later ones must come after it.
TEST_F(SqliteEngineTest, AsyncReadSeesExactlyTheAppendsAlreadyCompleted) {
  auto engine = make(1000, 0, 2);  // tiny window: reads from the database
  auto store = open(*engine);
  for (int i = 1; i <= 10; ++i) append(*store, "c");

  uint64_t acked = 10;  // highest offset whose callback ran
  int reads_checked = 0;
  bool failed = false;
  int outstanding = 0;
  const auto on_append = [&](AppendResult r) {
    --outstanding;
    if (!r.ok || r.offset != acked + 1) failed = true;
    acked = r.offset;
  };
  for (int round = 0; round < 20; ++round) {
    // Appends queued before the read, the read (recovery from offset 1, so
    // it needs events outside the window), then appends queued after it.
    for (int i = 0; i < round % 4; ++i, ++outstanding)
      store->append("c", NewEvent{"e", "x", "", "", now_}, on_append);
    HistoryQuery q;
    q.after = 1;
    q.limit = 100000;
    ++outstanding;
    store->read("c", q, [&](HistoryResult h) {
      --outstanding;
      ++reads_checked;
      EXPECT_TRUE(h.ok);
      EXPECT_EQ(h.last_offset, acked);
      ASSERT_FALSE(h.events.empty());
      EXPECT_EQ(h.events.front().offset, 2u);
      EXPECT_EQ(h.events.back().offset, acked);
      EXPECT_EQ(h.events.size(), acked - 1);
    });
    for (int i = 0; i < 3; ++i, ++outstanding)
      store->append("c", NewEvent{"e", "y", "", "", now_}, on_append);
  }
  run_until([&] { return outstanding == 0; });
  EXPECT_FALSE(failed);
  EXPECT_EQ(reads_checked, 20);
  // A read answered from the window right away also matches what was acked.
  const HistoryResult h = read(*store, "c", 2);
  EXPECT_EQ(h.last_offset, acked);
  EXPECT_EQ(offsets(h), (std::vector<uint64_t>{acked - 1, acked}));
}

TEST_F(SqliteEngineTest, HotWindowAnswersRecentReadsSynchronously) {
  const auto sync_read = [&](ShardStore& store, size_t limit, std::optional<uint64_t> after) {
    bool done = false;
    HistoryQuery q;
    q.limit = limit;
    q.after = after;
    store.read("c", q, [&](HistoryResult) { done = true; });
    const bool was_sync = done;
    run_until([&] { return done; });
    return was_sync;
  };
  {
    auto engine = make(1000, 0, 8);
    auto store = open(*engine);
    for (int i = 0; i < 20; ++i) append(*store, "c");
    EXPECT_TRUE(sync_read(*store, 8, std::nullopt));   // newest 8: in the window
    EXPECT_TRUE(sync_read(*store, 100, 12));           // 13..20: in the window
    EXPECT_FALSE(sync_read(*store, 9, std::nullopt));  // 12..20: 12 is not
    EXPECT_FALSE(sync_read(*store, 100, 0));
  }
  auto engine = make(1000, 0, 8);
  auto store = open(*engine);
  EXPECT_FALSE(sync_read(*store, 1, std::nullopt));  // cold: loads the channel
  EXPECT_TRUE(sync_read(*store, 8, std::nullopt));   // the window came with the load
  EXPECT_TRUE(sync_read(*store, 100, 12));
}

TEST_F(SqliteEngineTest, RetentionByCountAndAgeDeletesRows) {
  {
    auto engine = make(5, 0);
    auto store = open(*engine);
    for (int i = 1; i <= 12; ++i) append(*store, "count");
    EXPECT_EQ(rows_in_db("count"), 5);
    EXPECT_EQ(offsets(read(*store, "count", 100)), (std::vector<uint64_t>{8, 9, 10, 11, 12}));
  }
  {
    // Beyond history.size rows go in steps of size / 16: at most 1063 rows
    // for 1000, and reads still see exactly the newest 1000 (also cold).
    auto engine = make(1000, 0);
    auto store = open(*engine);
    for (int i = 1; i <= 1500; ++i) {
      append(*store, "steps");
      EXPECT_LE(rows_in_db("steps"), 1000 + 62) << i;
    }
    EXPECT_GE(rows_in_db("steps"), 1000);
    auto cold = open(*engine);
    const HistoryResult h = read(*cold, "steps", 1000, 0);
    ASSERT_EQ(h.events.size(), 1000u);
    EXPECT_EQ(h.first_offset, 501u);
    EXPECT_EQ(h.events.front().offset, 501u);
  }
  {
    auto engine = make(100, 1000);
    auto store = open(*engine);
    for (int i = 0; i < 3; ++i) append(*store, "age");
    for (int i = 0; i < 4; ++i) append(*store, "idle");
    now_ += 2000;  // all 7 expire
    const AppendResult r = append(*store, "age");
    EXPECT_EQ(r.offset, 4u);
    EXPECT_EQ(offsets(read(*store, "age", 100)), (std::vector<uint64_t>{4}));
    // The periodic sweep (about every second) deletes expired rows, also
    // of "idle", which gets no new events.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while ((rows_in_db("idle") != 0 || rows_in_db("age") != 1) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    EXPECT_EQ(rows_in_db("age"), 1);
    EXPECT_EQ(rows_in_db("idle"), 0);
    const HistoryResult h = read(*store, "idle", 10);
    EXPECT_EQ(h.last_offset, 4u);  // offsets are kept, only events go
    EXPECT_EQ(h.first_offset, 0u);
    EXPECT_TRUE(h.events.empty());
    EXPECT_EQ(append(*store, "idle").offset, 5u);
  }
}

// The per-namespace retention tests of the memory engine, on the sqlite
// engine: hot (the window) and cold (a new store, from the database).
TEST_F(SqliteEngineTest, AChannelsRetentionOverridesTheEngineLimits) {
  using Offsets = std::vector<uint64_t>;
  auto engine = make(1000, 0);
  auto store = open(*engine);
  for (int i = 1; i <= 5; ++i) append(*store, "small", std::to_string(i), {}, Retention{2, 0});
  EXPECT_EQ(offsets(read(*store, "small", 100, {}, {}, Retention{2, 0})), (Offsets{4, 5}));
  auto cold = open(*engine);
  const HistoryResult h = read(*cold, "small", 100, {}, {}, Retention{2, 0});
  EXPECT_EQ(offsets(h), (Offsets{4, 5}));
  EXPECT_EQ(h.first_offset, 4u);
  for (int i = 1; i <= 3; ++i) append(*store, "default");  // no retention: the engine's
  EXPECT_EQ(offsets(read(*cold, "default", 100)), (Offsets{1, 2, 3}));

  EXPECT_EQ(append(*store, "none", "x", {}, Retention{0, 0}).offset, 1u);
  const HistoryResult none = read(*store, "none", 10, {}, {}, Retention{0, 0});
  EXPECT_EQ(none.last_offset, 1u);
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(rows_in_db("none"), 0);
}

TEST_F(SqliteEngineTest, ARetentionThatShrinksIsAppliedOnTheNextReadOrAppend) {
  using Offsets = std::vector<uint64_t>;
  auto engine = make(1000, 0);
  auto store = open(*engine);
  for (int i = 1; i <= 6; ++i) append(*store, "c", std::to_string(i));
  EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{3, 0})), (Offsets{4, 5, 6}));
  auto cold = open(*engine);
  EXPECT_EQ(offsets(read(*cold, "c", 100, {}, {}, Retention{3, 0})), (Offsets{4, 5, 6}));
  append(*store, "c", "7", {}, Retention{2, 0});
  EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{2, 0})), (Offsets{6, 7}));
  EXPECT_LE(rows_in_db("c"), 2);  // a sixteenth of 2 rounds up to a step of one row
}

TEST_F(SqliteEngineTest, AChannelsAgeLimitHidesThenSweepsOldEventsAlsoAfterARestart) {
  using Offsets = std::vector<uint64_t>;
  {
    auto engine = make(1000, 0);  // no engine-wide age limit
    auto store = open(*engine);
    append(*store, "c", "old", now_ - 5000, Retention{100, 1000});
    append(*store, "c", "new", now_.load(), Retention{100, 1000});
    EXPECT_EQ(offsets(read(*store, "c", 100, {}, {}, Retention{100, 1000})), (Offsets{2}));
    auto cold = open(*engine);
    EXPECT_EQ(offsets(read(*cold, "c", 100, {}, {}, Retention{100, 1000})), (Offsets{2}));
    append(*store, "keep", "x", now_ - 5000);  // the engine's limits: kept
  }
  now_ += 2000;  // "new" expires too; nothing reads or writes "c" any more
  auto engine = make(1000, 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (rows_in_db("c") != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rows_in_db("c"), 0);
  EXPECT_EQ(rows_in_db("keep"), 1);
}

TEST_F(SqliteEngineTest, DatabaseWithoutRetentionColumnsGetsThem) {
  {
    auto engine = make();
    auto store = open(*engine);
    append(*store, "c");
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "data" / kSqliteFileName).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "ALTER TABLE channels DROP COLUMN history_size; "
                         "ALTER TABLE channels DROP COLUMN history_ttl_ms;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto engine = make();
  auto store = open(*engine);
  EXPECT_EQ(append(*store, "c", "2", {}, Retention{1, 0}).offset, 2u);
  EXPECT_EQ(offsets(read(*store, "c", 10, {}, {}, Retention{1, 0})), std::vector<uint64_t>{2});
}

TEST_F(SqliteEngineTest, SizeZeroKeepsOffsetsButNoEvents) {
  auto engine = make(0);
  auto store = open(*engine);
  EXPECT_EQ(append(*store, "c").offset, 1u);
  EXPECT_EQ(append(*store, "c").offset, 2u);
  const HistoryResult h = read(*store, "c", 10);
  EXPECT_EQ(h.last_offset, 2u);
  EXPECT_EQ(h.first_offset, 0u);
  EXPECT_TRUE(h.events.empty());
  EXPECT_EQ(rows_in_db("c"), 0);
}

TEST_F(SqliteEngineTest, FullQueueFailsAppendsAndTheEngineRecovers) {
  SqliteOptions o = options();
  o.queue_limit = 1;
  auto engine = make_sqlite_engine(o);
  auto store = open(*engine);
  int ok = 0;
  int failed = 0;
  int unavailable = 0;
  std::string error;
  for (int i = 0; i < 500; ++i) {
    store->append("c", NewEvent{"e", "1", "", "", now_}, [&](AppendResult r) {
      if (r.ok) {
        ++ok;
      } else {
        ++failed;
        unavailable += r.unavailable;
        error = r.error;
      }
    });
  }
  run_until([&] { return ok + failed == 500; });
  EXPECT_GT(failed, 0);
  EXPECT_EQ(unavailable, failed);  // a full queue is `unavailable` (retryable), not `internal`
  EXPECT_NE(error.find("engine.queue_limit"), std::string::npos) << error;
  const HistoryResult h = read(*store, "c", 1000);
  EXPECT_EQ(h.last_offset, static_cast<uint64_t>(ok));  // no gap from failed appends
  EXPECT_EQ(h.events.size(), static_cast<size_t>(ok));
}

TEST_F(SqliteEngineTest, FailedCommitFailsAppendsWithoutGapsAndTheEngineGoesOn) {
  SqliteOptions o = options();
  o.max_page_count = 24;  // a "disk" of 24 pages (4 KiB each) fills up quickly
  auto engine = make_sqlite_engine(o);
  auto store = open(*engine);
  const std::string big(3000, 'x');
  uint64_t stored = 0;
  std::string error;
  for (int i = 0; i < 100 && error.empty(); ++i) {
    const AppendResult r = append(*store, "c", big);
    if (r.ok) {
      EXPECT_EQ(r.offset, ++stored);
    } else {
      EXPECT_FALSE(r.unavailable) << "a failed commit is `internal`";
      error = r.error;
    }
  }
  ASSERT_FALSE(error.empty()) << "the database never filled up";
  EXPECT_NE(error.find("full"), std::string::npos) << error;
  EXPECT_GT(stored, 0u);
  // Still failing, and failing again does not consume offsets.
  EXPECT_FALSE(append(*store, "c", big).ok);
  const HistoryResult h = read(*store, "c", 1000, 0);
  ASSERT_TRUE(h.ok) << h.error;
  EXPECT_EQ(h.last_offset, stored);
  EXPECT_EQ(h.events.size(), stored);
  // Small events on an existing channel may still fit; either way the
  // offsets stay contiguous.
  const AppendResult small = append(*store, "c", "1");
  if (small.ok) {
    EXPECT_EQ(small.offset, stored + 1);
  }
}

TEST_F(SqliteEngineTest, StopPostsPendingResultsThenNothing) {
  auto engine = make();
  auto store = open(*engine);
  int completed = 0;
  for (int i = 0; i < 50; ++i)
    store->append("c", NewEvent{"e", "1", "", "", now_}, [&](AppendResult r) {
      EXPECT_TRUE(r.ok);
      ++completed;
    });
  engine->stop();  // waits for the commit; its results are already posted
  io_.restart();
  io_.poll();
  EXPECT_EQ(completed, 50);
  bool called = false;
  store->append("c", NewEvent{"e", "1", "", "", now_}, [&](AppendResult) { called = true; });
  std::this_thread::sleep_for(50ms);
  io_.restart();
  io_.poll();
  EXPECT_FALSE(called);  // after stop() nothing is posted any more
}

TEST_F(SqliteEngineTest, DurabilityFullWorks) {
  SqliteOptions o = options();
  o.full_sync = true;
  auto engine = make_sqlite_engine(o);
  auto store = open(*engine);
  EXPECT_EQ(append(*store, "c").offset, 1u);
}

// With durability "normal" the owners commit and the storage thread
// checkpoints the WAL on its own connection, also while an owner commits
// without pause: the events must reach the database file, and the WAL must
// restart rather than hold every page written (without checkpoints herald.db
// stays at its first few pages; with checkpoints that never finish, or that
// never get the runner lock from a busy owner, the WAL ends up about twice
// the data written). Margins are wide: the storage thread may run late on a
// busy machine.
TEST_F(SqliteEngineTest, TheWalIsCheckpointedIntoTheDatabaseFile) {
  auto engine = make(100000);
  auto store = open(*engine);
  constexpr int kEvents = 3000;
  const std::string data = "\"" + std::string(6000, 'x') + "\"";  // ~2 pages a row
  int completed = 0;
  for (int i = 0; i < kEvents; ++i) {
    store->append("c", NewEvent{"e", data, "", "", now_}, [&](AppendResult r) {
      EXPECT_TRUE(r.ok) << r.error;
      ++completed;
    });
    if (i % 10 == 9) run_until([&] { return completed == i + 1; });  // many commits
  }
  run_until([&] { return completed == kEvents; });
  const fs::path db = dir_ / "data" / "herald.db";
  const fs::path wal = dir_ / "data" / "herald.db-wal";
  const uintmax_t stored = uintmax_t{kEvents} * data.size();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fs::file_size(db) < stored / 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_GE(fs::file_size(db), stored / 2);
  EXPECT_LT(fs::file_size(wal), stored);  // restarted after checkpoints, not one long log
  EXPECT_EQ(read(*store, "c", 1).last_offset, static_cast<uint64_t>(kEvents));
}

TEST_F(SqliteEngineTest, CorruptDatabaseIsAClearError) {
  fs::create_directories(dir_ / "data");
  std::ofstream(dir_ / "data" / kSqliteFileName)
      << std::string(4096, 'x') << "this is not a database";
  const std::string error = start_error(options());
  EXPECT_NE(error.find((dir_ / "data" / kSqliteFileName).string()), std::string::npos) << error;
  EXPECT_NE(error.find("not a database"), std::string::npos) << error;
}

TEST_F(SqliteEngineTest, UnusableDataDirIsAClearError) {
  std::ofstream(dir_ / "file") << "a regular file";
  SqliteOptions o = options();
  o.data_dir = (dir_ / "file" / "data").string();
  std::string error = start_error(o);
  EXPECT_NE(error.find(o.data_dir), std::string::npos) << error;
  EXPECT_NE(error.find("engine.data_dir"), std::string::npos) << error;

  o.data_dir = (dir_ / "file").string();  // exists, not a directory
  error = start_error(o);
  EXPECT_NE(error.find(o.data_dir), std::string::npos) << error;
}

TEST_F(SqliteEngineTest, ChannelsDroppedFromTheBoundedCacheContinueTheirOffsets) {
  SqliteOptions o = options();
  o.channel_cache = 16;
  auto engine = make_sqlite_engine(o);
  auto store = open(*engine);
  std::string epoch;
  for (uint64_t round = 1; round <= 3; ++round) {
    for (int c = 0; c < 100; ++c) {
      const AppendResult r = append(*store, "ch" + std::to_string(c), std::to_string(round));
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.offset, round);
      if (epoch.empty()) epoch = r.epoch;
      EXPECT_EQ(r.epoch, epoch);
    }
  }
  // Cold reads (a fresh store has no hot window) see every channel whole.
  auto fresh = open(*engine);
  for (int c = 0; c < 100; ++c) {
    const HistoryResult h = read(*fresh, "ch" + std::to_string(c), 10);
    EXPECT_EQ(offsets(h), (std::vector<uint64_t>{1, 2, 3}));
  }
}

TEST_F(SqliteEngineTest, RestoredOlderDatabaseGetsANewEpochAndKeepsIt) {
  const fs::path db = dir_ / "data" / kSqliteFileName;
  const fs::path saved = dir_ / "backup.db";
  std::string epoch;
  {
    auto engine = make();
    EXPECT_FALSE(engine->epoch_renewed());  // a new database
    auto store = open(*engine);
    for (int i = 0; i < 5; ++i) epoch = append(*store, "a").epoch;
  }  // closed: everything is in herald.db
  fs::copy_file(db, saved);
  {
    auto engine = make();
    EXPECT_FALSE(engine->epoch_renewed());  // the same database
    auto store = open(*engine);
    EXPECT_EQ(append(*store, "a").offset, 6u);
    EXPECT_EQ(append(*store, "b").offset, 1u);
  }
  fs::remove(db.string() + "-wal");
  fs::remove(db.string() + "-shm");
  fs::copy_file(saved, db, fs::copy_options::overwrite_existing);
  std::string renewed;
  {
    auto engine = make();
    EXPECT_TRUE(engine->epoch_renewed());
    auto store = open(*engine);
    const HistoryResult h = read(*store, "a", 10);
    EXPECT_NE(h.epoch, epoch);
    EXPECT_EQ(h.last_offset, 5u);
    renewed = h.epoch;
    EXPECT_EQ(read(*store, "b", 10).epoch, renewed);  // also channels the backup lacks
    const AppendResult r = append(*store, "a");
    EXPECT_EQ(r.offset, 6u);
    EXPECT_EQ(r.epoch, renewed);
  }
  {
    auto engine = make();
    EXPECT_FALSE(engine->epoch_renewed());
    auto store = open(*engine);
    EXPECT_EQ(append(*store, "a").epoch, renewed);
  }
}

TEST_F(SqliteEngineTest, MissingOrDamagedOffsetsFileGivesANewEpoch) {
  const fs::path file = dir_ / "data" / kSqliteOffsetsName;
  std::string epoch;
  {
    auto engine = make();
    auto store = open(*engine);
    epoch = append(*store, "a").epoch;
  }
  fs::remove(file);
  std::string second;
  {
    auto engine = make();
    EXPECT_TRUE(engine->epoch_renewed());
    auto store = open(*engine);
    second = append(*store, "a").epoch;
    EXPECT_NE(second, epoch);
  }
  std::ofstream(file, std::ios::trunc) << "garbage";
  {
    auto engine = make();
    EXPECT_TRUE(engine->epoch_renewed());
    auto store = open(*engine);
    const AppendResult r = append(*store, "a");
    EXPECT_NE(r.epoch, second);
    EXPECT_EQ(r.offset, 3u);
  }
}

TEST_F(SqliteEngineTest, DatabaseWithARowidEventsTableStillWorks) {
  // The layout of databases created before `events` became WITHOUT ROWID.
  fs::create_directories(dir_ / "data");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "data" / kSqliteFileName).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                         "CREATE TABLE channels (id INTEGER PRIMARY KEY, name TEXT NOT NULL "
                         "UNIQUE, epoch TEXT NOT NULL, last_offset INTEGER NOT NULL);"
                         "CREATE TABLE events (channel INTEGER NOT NULL, \"offset\" INTEGER NOT "
                         "NULL, ts INTEGER NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL, "
                         "from_client TEXT NOT NULL, from_user TEXT NOT NULL, PRIMARY KEY "
                         "(channel, \"offset\"));"
                         "INSERT INTO meta VALUES ('schema_version', '1'), ('epoch', 'old-epoch');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto engine = make(3);
  auto store = open(*engine);
  for (uint64_t i = 1; i <= 5; ++i) {
    const AppendResult r = append(*store, "c", std::to_string(i));
    EXPECT_EQ(r.offset, i);
    EXPECT_EQ(r.epoch, "old-epoch");
  }
  EXPECT_EQ(rows_in_db("c"), 3);
  EXPECT_EQ(offsets(read(*open(*engine), "c", 10)), (std::vector<uint64_t>{3, 4, 5}));
}

TEST_F(SqliteEngineTest, SecondEngineOnTheSameDirectoryIsRefused) {
  auto engine = make();
  const std::string error = start_error(options());
  EXPECT_NE(error.find("in use by another herald process"), std::string::npos) << error;
}

// remove() -------------------------------------------------------------------

TEST_F(SqliteEngineTest, RemoveEmptiesTheChannelAndStartsANewEpoch) {
  using Offsets = std::vector<uint64_t>;
  auto engine = make();
  auto store = open(*engine);
  std::string old_epoch;
  for (int i = 1; i <= 3; ++i) old_epoch = append(*store, "c", std::to_string(i)).epoch;
  append(*store, "other");
  const RemoveResult removed = remove(*store, "c");
  ASSERT_TRUE(removed.ok) << removed.error;
  EXPECT_EQ(removed.epoch.size(), 8u);
  EXPECT_NE(removed.epoch, old_epoch);
  EXPECT_EQ(rows_in_db("c"), 0);
  for (const bool cold : {false, true}) {  // the window, then the database
    SCOPED_TRACE(cold ? "cold" : "hot");
    auto fresh = open(*engine);
    const HistoryResult r = read(cold ? *fresh : *store, "c", 10, 0);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.epoch, removed.epoch);
    EXPECT_EQ(r.last_offset, 0u);
    EXPECT_EQ(r.first_offset, 0u);
    EXPECT_EQ(r.created_ms, 0);
    EXPECT_TRUE(r.events.empty());
  }
  const AppendResult next = append(*store, "c", "new");
  ASSERT_TRUE(next.ok) << next.error;
  EXPECT_EQ(next.offset, 1u);
  EXPECT_EQ(next.epoch, removed.epoch);
  EXPECT_EQ(append(*store, "c", "newer").offset, 2u);
  HistoryResult r = read(*store, "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{1, 2}));
  EXPECT_EQ(r.events[0].data, "new");
  r = read(*open(*engine), "c", 10);
  EXPECT_EQ(offsets(r), (Offsets{1, 2}));
  EXPECT_EQ(r.epoch, removed.epoch);
  // Other channels keep their events and the database's epoch.
  const HistoryResult other = read(*open(*engine), "other", 10);
  EXPECT_EQ(other.epoch, old_epoch);
  EXPECT_EQ(offsets(other), (Offsets{1}));
  // A channel never used gets a row with its own epoch.
  const RemoveResult never = remove(*store, "never");
  ASSERT_TRUE(never.ok) << never.error;
  EXPECT_NE(never.epoch, old_epoch);
  EXPECT_EQ(read(*open(*engine), "never", 10).epoch, never.epoch);
  EXPECT_EQ(append(*store, "never").epoch, never.epoch);
}

TEST_F(SqliteEngineTest, CreatedIsTheFirstEventsTimeAndOutlivesItsRetentionAndRestarts) {
  {
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
    EXPECT_EQ(offsets(r), (std::vector<uint64_t>{3, 4}));  // the first event is gone
    EXPECT_EQ(r.created_ms, kT0 - 100);
    EXPECT_EQ(read(*open(*engine), "c", 10).created_ms, kT0 - 100);
    now_ += 5000;  // and the age limit drops the others
    r = read(*store, "c", 10);
    EXPECT_TRUE(r.events.empty());
    EXPECT_EQ(r.created_ms, kT0 - 100);
  }
  auto engine = make(2, 1000);
  auto store = open(*engine);
  EXPECT_EQ(read(*store, "c", 10).created_ms, kT0 - 100);  // cold, after a restart
  EXPECT_EQ(read(*store, "c", 10).created_ms, kT0 - 100);  // from the loaded window
  EXPECT_EQ(append(*store, "c").created_ms, kT0 - 100);

  ASSERT_TRUE(remove(*store, "c").ok);
  EXPECT_EQ(read(*store, "c", 10).created_ms, 0);
  EXPECT_EQ(read(*open(*engine), "c", 10).created_ms, 0);
  const int64_t t = now_.load();
  EXPECT_EQ(append(*store, "c", "x", t).created_ms, t);
  EXPECT_EQ(append(*store, "c", "y", t + 5).created_ms, t);
  EXPECT_EQ(read(*store, "c", 10).created_ms, t);
  EXPECT_EQ(read(*open(*engine), "c", 10).created_ms, t);
}

// The ordering contract with remove (see engine.hpp), with the channel's
// window loaded, not loaded yet, and with no window at all: nothing is awaited
// between the calls.
TEST_F(SqliteEngineTest, RemoveIsOrderedWithAppendsAndReads) {
  for (const size_t window : {size_t{256}, size_t{0}}) {
    for (const bool cold : {false, true}) {
      const std::string channel = "c" + std::to_string(window) + (cold ? "cold" : "hot");
      SCOPED_TRACE(channel);
      auto engine = make(1000, 0, window);
      {
        auto writer = open(*engine);
        for (int i = 1; i <= 2; ++i) append(*writer, channel);
      }
      auto store = open(*engine);
      if (!cold) read(*store, channel, 10);  // loads the window
      std::vector<std::string> order;
      std::optional<HistoryResult> before;
      std::optional<HistoryResult> after;
      std::optional<RemoveResult> removed;
      std::optional<AppendResult> next;
      HistoryQuery q;
      q.after = 0;
      store->append(channel, NewEvent{"e", "3", "", "", now_},
                    [&](AppendResult r) { order.push_back("append " + std::to_string(r.offset)); });
      store->append(channel, NewEvent{"e", "4", "", "", now_},
                    [&](AppendResult r) { order.push_back("append " + std::to_string(r.offset)); });
      store->read(channel, q, [&](HistoryResult r) {
        order.push_back("read before");
        before = std::move(r);
      });
      store->remove(channel, [&](RemoveResult r) {
        order.push_back("remove");
        removed = std::move(r);
      });
      store->read(channel, q, [&](HistoryResult r) {
        order.push_back("read after");
        after = std::move(r);
      });
      store->append(channel, NewEvent{"e", "new", "", "", now_}, [&](AppendResult r) {
        order.push_back("append new");
        next = std::move(r);
      });
      run_until([&] { return next.has_value(); });
      ASSERT_TRUE(before && after && removed && next);
      ASSERT_TRUE(removed->ok) << removed->error;
      // The read made before remove() sees the old epoch (with or without
      // the appends made before it, as their callbacks ran or not).
      const auto read_before = std::find(order.begin(), order.end(), "read before");
      const size_t appends_seen =
          static_cast<size_t>(std::count_if(order.begin(), read_before, [](const std::string& s) {
            return s.starts_with("append ");
          }));
      EXPECT_EQ(before->last_offset, 2u + appends_seen);
      EXPECT_EQ(before->events.size(), 2u + appends_seen);
      EXPECT_NE(before->epoch, removed->epoch);
      // Then remove, after both appends made before it; the read made after
      // it sees the new epoch, empty; the append made after it gets offset 1.
      const auto tail = std::find(order.begin(), order.end(), "remove");
      EXPECT_EQ(std::vector<std::string>(tail, order.end()),
                (std::vector<std::string>{"remove", "read after", "append new"}));
      EXPECT_EQ(std::count(order.begin(), tail, "append 3"), 1);
      EXPECT_EQ(std::count(order.begin(), tail, "append 4"), 1);
      EXPECT_EQ(after->epoch, removed->epoch);
      EXPECT_EQ(after->last_offset, 0u);
      EXPECT_EQ(after->first_offset, 0u);
      EXPECT_TRUE(after->events.empty());
      EXPECT_EQ(next->offset, 1u);
      EXPECT_EQ(next->epoch, removed->epoch);
      EXPECT_EQ(offsets(read(*store, channel, 10)), (std::vector<uint64_t>{1}));
    }
  }
}

// A read made while a remove is queued must not be answered from the window
// of the old epoch; once remove's callback ran, the window answers again,
// from the new epoch.
TEST_F(SqliteEngineTest, ReadsFromTheHotWindowAfterRemoveShowNoOldEvents) {
  auto engine = make(1000, 0, 8);
  auto store = open(*engine);
  for (int i = 1; i <= 5; ++i) append(*store, "c");
  const auto sync_read = [&](std::optional<HistoryResult>& out) {
    store->read("c", HistoryQuery{}, [&](HistoryResult r) { out = std::move(r); });
    return out.has_value();
  };
  std::optional<HistoryResult> warm;
  ASSERT_TRUE(sync_read(warm));  // the window answers
  EXPECT_EQ(warm->events.size(), 5u);

  std::optional<RemoveResult> removed;
  std::optional<HistoryResult> after;
  bool removed_first = false;
  store->remove("c", [&](RemoveResult r) { removed = std::move(r); });
  store->read("c", HistoryQuery{}, [&](HistoryResult r) {
    removed_first = removed.has_value();
    after = std::move(r);
  });
  EXPECT_FALSE(after.has_value());  // not from the window: queued behind the remove
  run_until([&] { return after.has_value(); });
  ASSERT_TRUE(removed.has_value());
  EXPECT_TRUE(removed_first);
  EXPECT_EQ(after->epoch, removed->epoch);
  EXPECT_EQ(after->last_offset, 0u);
  EXPECT_TRUE(after->events.empty());

  std::optional<HistoryResult> later;
  EXPECT_TRUE(sync_read(later));  // the window again, now the new epoch's
  EXPECT_EQ(later->epoch, removed->epoch);
  EXPECT_EQ(later->last_offset, 0u);
  EXPECT_TRUE(later->events.empty());
  EXPECT_EQ(append(*store, "c", "new").offset, 1u);
  std::optional<HistoryResult> newest;
  EXPECT_TRUE(sync_read(newest));
  EXPECT_EQ(offsets(*newest), (std::vector<uint64_t>{1}));
  EXPECT_EQ(newest->events[0].data, "new");
}

// A remove lowers the channel's last offset, which must not make the next
// start take the database for a restored backup (see "Restored backups").
TEST_F(SqliteEngineTest, RemoveSurvivesReopeningWithoutRenewingTheEpoch) {
  std::string db_epoch;
  std::string a_epoch;
  std::string c_epoch;
  {
    auto engine = make();
    auto store = open(*engine);
    for (int i = 0; i < 5; ++i) db_epoch = append(*store, "a").epoch;
    for (int i = 0; i < 3; ++i) append(*store, "b");
    for (int i = 0; i < 4; ++i) append(*store, "c");
    a_epoch = remove(*store, "a").epoch;
    EXPECT_EQ(append(*store, "a", "1", kT0 + 1).offset, 1u);
    EXPECT_EQ(append(*store, "a", "2", kT0 + 2).offset, 2u);
    c_epoch = remove(*store, "c").epoch;  // the last thing done before stopping
  }
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    auto engine = make();
    EXPECT_FALSE(engine->epoch_renewed());
    auto store = open(*engine);
    HistoryResult h = read(*store, "a", 10);
    EXPECT_EQ(h.epoch, a_epoch);
    EXPECT_EQ(h.last_offset, 2u + round);
    EXPECT_EQ(h.created_ms, kT0 + 1);
    EXPECT_EQ(h.events.front().data, "1");
    const AppendResult r = append(*store, "a");
    EXPECT_EQ(r.offset, 3u + round);
    EXPECT_EQ(r.epoch, a_epoch);
    EXPECT_EQ(r.created_ms, kT0 + 1);
    h = read(*store, "c", 10);
    EXPECT_EQ(h.epoch, c_epoch);
    EXPECT_EQ(h.last_offset, 0u);
    EXPECT_TRUE(h.events.empty());
    EXPECT_EQ(h.created_ms, 0);
    h = read(*store, "b", 10);
    EXPECT_EQ(h.epoch, db_epoch);
    EXPECT_EQ(h.last_offset, 3u);
  }
}

// Removes count as offsets handed out: a backup from before a remove and
// the appends after it is still recognised when restored.
TEST_F(SqliteEngineTest, RestoredBackupFromBeforeARemoveGetsANewEpoch) {
  const fs::path db = dir_ / "data" / kSqliteFileName;
  std::string old_epoch;
  std::string removed_epoch;
  {
    auto engine = make();
    auto store = open(*engine);
    for (int i = 0; i < 5; ++i) old_epoch = append(*store, "a").epoch;
  }
  fs::copy_file(db, dir_ / "backup.db");
  {
    auto engine = make();
    auto store = open(*engine);
    removed_epoch = remove(*store, "a").epoch;
    append(*store, "a");
  }
  fs::remove(db.string() + "-wal");
  fs::remove(db.string() + "-shm");
  fs::copy_file(dir_ / "backup.db", db, fs::copy_options::overwrite_existing);
  auto engine = make();
  EXPECT_TRUE(engine->epoch_renewed());
  auto store = open(*engine);
  const HistoryResult h = read(*store, "a", 10);
  EXPECT_NE(h.epoch, old_epoch);
  EXPECT_NE(h.epoch, removed_epoch);
  EXPECT_EQ(h.last_offset, 5u);
}

// Rows from before the created_ms column report their oldest held event
// until their next append, which keeps that time.
TEST_F(SqliteEngineTest, DatabaseWithoutTheCreatedColumnGetsIt) {
  {
    auto engine = make(3);
    auto store = open(*engine);
    for (int i = 1; i <= 5; ++i) append(*store, "c", std::to_string(i), kT0 + i);
    append(*store, "empty", "x", kT0, Retention{0, 0});
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "data" / kSqliteFileName).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "ALTER TABLE channels DROP COLUMN created_ms;", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto engine = make(3);
  EXPECT_FALSE(engine->epoch_renewed());
  EXPECT_EQ(read(*open(*engine), "c", 10).created_ms, kT0 + 3);  // cold: holds 3..5
  auto store = open(*engine);
  read(*store, "c", 10);                                 // loads the window
  EXPECT_EQ(read(*store, "c", 10).created_ms, kT0 + 3);  // from the window
  EXPECT_EQ(read(*store, "empty", 10, {}, {}, Retention{0, 0}).created_ms, 0);
  EXPECT_EQ(append(*store, "c", "6", kT0 + 6).created_ms, kT0 + 3);
  EXPECT_EQ(append(*store, "c", "7", kT0 + 7).created_ms, kT0 + 3);  // 3 is gone, kept
  EXPECT_EQ(read(*open(*engine), "c", 10).created_ms, kT0 + 3);
  EXPECT_EQ(append(*store, "empty", "y", kT0 + 9, Retention{0, 0}).created_ms, kT0 + 9);
}

}  // namespace
}  // namespace herald::engine

namespace herald::engine {
namespace {

using Offsets = std::vector<uint64_t>;

TEST_F(SqliteEngineTest, IdempotentReplayReturnsTheOriginalOffsetAndStoresNothing) {
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
  // Nothing stored: the window, the database and the next offset agree.
  EXPECT_EQ(rows_in_db("c"), 2);
  EXPECT_EQ(keys_in_db("c"), 1);
  HistoryResult h = read(*store, "c", 10);
  EXPECT_EQ(h.last_offset, 2u);
  EXPECT_EQ(offsets(h), (Offsets{1, 2}));
  EXPECT_EQ(append(*store, "c").offset, 3u);
  // The same key on another channel is another key.
  const AppendResult other = keyed(*store, "d", "key-1", 42);
  EXPECT_FALSE(other.replayed);
  EXPECT_EQ(other.offset, 1u);
  // A cold store sees the same.
  auto cold = open(*engine);
  EXPECT_EQ(keyed(*cold, "c", "key-1", 42).offset, 2u);
  h = read(*cold, "c", 10);
  EXPECT_EQ(offsets(h), (Offsets{1, 2, 3}));
}

TEST_F(SqliteEngineTest, IdempotencyKeyWithAnotherFingerprintIsAConflict) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(keyed(*store, "c", "k", 1).offset, 1u);
  const AppendResult r = keyed(*store, "c", "k", 2);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.conflict);
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(r.offset, 1u);
  EXPECT_NE(r.error.find("idempotency key conflict"), std::string::npos) << r.error;
  EXPECT_EQ(r.idempotency_key, "k");  // given back for the client's error message
  EXPECT_EQ(rows_in_db("c"), 1);
  EXPECT_EQ(append(*store, "c").offset, 2u);
  // The key still holds the first fingerprint.
  EXPECT_TRUE(keyed(*store, "c", "k", 1).replayed);
}

TEST_F(SqliteEngineTest, IdempotencyKeyIsNewAgainAfterItsWindow) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(keyed(*store, "c", "k", 1, now_.load(), 1000).offset, 1u);
  EXPECT_TRUE(keyed(*store, "c", "k", 1, now_ + 999, 1000).replayed);
  const AppendResult later = keyed(*store, "c", "k", 2, now_ + 1000, 1000);
  ASSERT_TRUE(later.ok) << later.error;
  EXPECT_FALSE(later.replayed);
  EXPECT_EQ(later.offset, 2u);
  // The key now points at the new event, for a new window.
  const AppendResult replay = keyed(*store, "c", "k", 2, now_ + 1500, 1000);
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.offset, 2u);
  EXPECT_EQ(keys_in_db("c"), 1);
}

// Appends queued while the storage thread waits for a write lock held by
// another connection are all handled in its next batch.
TEST_F(SqliteEngineTest, IdempotentReplayWithinOneBatch) {
  auto engine = make();
  auto store = open(*engine);
  append(*store, "c");  // loads the window
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir_ / "data" / kSqliteFileName).c_str(), &db, SQLITE_OPEN_READWRITE,
                            nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::vector<std::string> order;
  std::vector<AppendResult> results;
  const auto record = [&](std::string what) {
    return [&, what](AppendResult r) {
      order.push_back(what);
      results.push_back(std::move(r));
    };
  };
  store->append("c", NewEvent{"e", "blocker", "", "", now_}, record("blocker"));
  std::this_thread::sleep_for(100ms);  // the storage thread waits in BEGIN
  store->append("c", keyed_event("k", 7), record("first"));
  store->append("c", keyed_event("k", 7), record("replay"));
  store->append("c", keyed_event("k", 8), record("conflict"));
  store->append("c", NewEvent{"e", "plain", "", "", now_}, record("plain"));
  store->append("c", keyed_event("k", 7), record("replay again"));
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  run_until([&] { return results.size() == 6; });
  EXPECT_EQ(order, (std::vector<std::string>{"blocker", "first", "replay", "conflict", "plain",
                                             "replay again"}));
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].offset, 2u);
  EXPECT_EQ(results[1].offset, 3u);
  EXPECT_FALSE(results[1].replayed);
  EXPECT_TRUE(results[2].ok && results[2].replayed);
  EXPECT_EQ(results[2].offset, 3u);
  EXPECT_TRUE(results[3].conflict);
  EXPECT_EQ(results[3].offset, 3u);
  EXPECT_EQ(results[4].offset, 4u);
  EXPECT_TRUE(results[5].replayed);
  EXPECT_EQ(results[5].offset, 3u);
  const HistoryResult h = read(*store, "c", 10);  // from the window
  EXPECT_EQ(h.last_offset, 4u);
  EXPECT_EQ(offsets(h), (Offsets{1, 2, 3, 4}));
  EXPECT_EQ(rows_in_db("c"), 4);
  EXPECT_EQ(append(*store, "c").offset, 5u);
}

TEST_F(SqliteEngineTest, IdempotencyKeysSurviveReopening) {
  std::string epoch;
  {
    auto engine = make();
    auto store = open(*engine);
    epoch = keyed(*store, "c", "k", 5).epoch;
    append(*store, "c");
  }
  auto engine = make();
  auto store = open(*engine);
  const AppendResult r = keyed(*store, "c", "k", 5);
  EXPECT_TRUE(r.replayed);
  EXPECT_EQ(r.offset, 1u);
  EXPECT_EQ(r.epoch, epoch);
  EXPECT_TRUE(keyed(*store, "c", "k", 6).conflict);
  EXPECT_EQ(append(*store, "c").offset, 3u);
}

TEST_F(SqliteEngineTest, RemoveForgetsIdempotencyKeys) {
  auto engine = make();
  auto store = open(*engine);
  ASSERT_EQ(keyed(*store, "c", "k", 1).offset, 1u);
  ASSERT_EQ(keyed(*store, "c", "j", 1).offset, 2u);
  ASSERT_TRUE(remove(*store, "c").ok);
  EXPECT_EQ(keys_in_db("c"), 0);
  const AppendResult r = keyed(*store, "c", "k", 2);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.replayed);
  EXPECT_FALSE(r.conflict);
  EXPECT_EQ(r.offset, 1u);
}

TEST_F(SqliteEngineTest, IdempotencyKeysBeyondTheMaxDropTheOldest) {
  auto engine = make();
  auto store = open(*engine);
  for (int i = 1; i <= 5; ++i) {
    const AppendResult r = keyed(*store, "c", "k" + std::to_string(i), 1, now_ + i, 120000, 3);
    ASSERT_EQ(r.offset, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(keys_in_db("c"), 3);
  // k1 and k2 are forgotten, k3..k5 remembered.
  EXPECT_TRUE(keyed(*store, "c", "k5", 1, now_ + 10, 120000, 3).replayed);
  EXPECT_TRUE(keyed(*store, "c", "k3", 1, now_ + 10, 120000, 3).replayed);
  const AppendResult k1 = keyed(*store, "c", "k1", 1, now_ + 10, 120000, 3);
  EXPECT_FALSE(k1.replayed);
  EXPECT_EQ(k1.offset, 6u);  // and now k3 is the oldest: forgotten
  EXPECT_EQ(keys_in_db("c"), 3);
  EXPECT_FALSE(keyed(*store, "c", "k3", 1, now_ + 11, 120000, 3).replayed);
  // The bound holds after a restart too (the count is read again).
  store.reset();
  engine.reset();
  engine = make();
  store = open(*engine);
  keyed(*store, "c", "k9", 1, now_ + 20, 120000, 3);
  EXPECT_EQ(keys_in_db("c"), 3);
}

TEST_F(SqliteEngineTest, ExpiredIdempotencyKeysAreNotReadBackAtStart) {
  {
    auto engine = make();
    auto store = open(*engine);
    keyed(*store, "c", "old", 1, now_.load(), 1000);
    keyed(*store, "c", "new", 1, now_ + 1500, 1000);
  }
  now_ += 2000;  // "old" expired at +1000, "new" expires at +2500
  auto engine = make();
  EXPECT_EQ(keys_in_db("c"), 1);
  auto store = open(*engine);
  EXPECT_TRUE(keyed(*store, "c", "new", 1).replayed);
  const AppendResult old = keyed(*store, "c", "old", 2);
  EXPECT_FALSE(old.replayed);
  EXPECT_FALSE(old.conflict);
  EXPECT_EQ(old.offset, 3u);
}

// Keys live in their events' rows: retention keeps the rows of remembered
// keys (invisible to reads), so a retry after a restart is still a replay;
// once the keys expire, the sweep lets retention delete them.
TEST_F(SqliteEngineTest, RowsOfRememberedKeysOutliveHistoryUntilTheKeysExpire) {
  const Retention one{1, 0};
  const auto keyed_one = [&](ShardStore& store, const std::string& key, uint64_t fp) {
    NewEvent ev = keyed_event(key, fp, std::nullopt, 1000);
    ev.retention = one;
    std::optional<AppendResult> out;
    store.append("c", std::move(ev), [&](AppendResult r) { out = std::move(r); });
    run_until([&] { return out.has_value(); });
    return out.value_or(AppendResult{});
  };
  {
    auto engine = make();
    auto store = open(*engine);
    for (int i = 1; i <= 3; ++i) ASSERT_EQ(keyed_one(*store, "k" + std::to_string(i), 7).offset, i);
    EXPECT_EQ(offsets(read(*store, "c", 10, {}, {}, one)), (Offsets{3}));
    EXPECT_EQ(rows_in_db("c"), 3);
    EXPECT_EQ(keys_in_db("c"), 3);
  }
  auto engine = make();  // the keys are read back from the rows
  auto store = open(*engine);
  for (int i = 1; i <= 3; ++i) {
    const AppendResult r = keyed_one(*store, "k" + std::to_string(i), 7);
    EXPECT_TRUE(r.replayed) << i;
    EXPECT_EQ(r.offset, static_cast<uint64_t>(i));
  }
  EXPECT_TRUE(keyed_one(*store, "k1", 8).conflict);
  EXPECT_EQ(offsets(read(*open(*engine), "c", 10, {}, {}, one)), (Offsets{3}));  // cold
  // Expired: the sweep (a second apart with a 1 s window) forgets the keys
  // and the rows go; the last event stays as history.
  now_ += 1500;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (rows_in_db("c") != 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rows_in_db("c"), 1);
  EXPECT_EQ(keys_in_db("c"), 0);
  EXPECT_EQ(offsets(read(*open(*engine), "c", 10, {}, {}, one)), (Offsets{3}));
  const AppendResult again = keyed_one(*store, "k1", 7);
  EXPECT_FALSE(again.replayed);
  EXPECT_EQ(again.offset, 4u);
}

TEST_F(SqliteEngineTest, FailedCommitKeepsNeitherTheEventNorItsKey) {
  SqliteOptions o = options();
  o.max_page_count = 24;
  auto engine = make_sqlite_engine(o);
  auto store = open(*engine);
  const std::string big(3000, 'x');
  uint64_t stored = 0;
  std::string error;
  std::string failed_key;
  for (int i = 0; i < 100 && error.empty(); ++i) {
    const std::string key = "k" + std::to_string(i);
    const AppendResult r = keyed(*store, "c", key, 1, std::nullopt, 120000, 10000, big);
    if (r.ok) {
      EXPECT_EQ(r.offset, ++stored);
    } else {
      EXPECT_FALSE(r.conflict);
      error = r.error;
      failed_key = key;
    }
  }
  ASSERT_FALSE(error.empty()) << "the database never filled up";
  EXPECT_NE(error.find("full"), std::string::npos) << error;
  EXPECT_EQ(keys_in_db("c"), static_cast<int64_t>(stored));
  EXPECT_EQ(rows_in_db("c"), static_cast<int64_t>(stored));
  // The failed key was not kept: another event with it is no conflict
  // (and, when it fits, gets the next offset).
  const AppendResult small = keyed(*store, "c", failed_key, 2);
  EXPECT_FALSE(small.conflict);
  EXPECT_FALSE(small.replayed);
  if (small.ok) {
    EXPECT_EQ(small.offset, stored + 1);
  }
  // Keys stored before still replay.
  const AppendResult replay = keyed(*store, "c", "k0", 1, std::nullopt, 120000, 10000, big);
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.offset, 1u);
}

}  // namespace
}  // namespace herald::engine
