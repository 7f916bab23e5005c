// The sqlite engine: durable history in one SQLite database (WAL mode) under
// a data directory, written with group commit by the channel owners' threads
// (durability "normal") or a storage thread ("full"), with a hot in-memory
// window of each active channel's newest events on the channel owners' side.
// See sqlite_engine.cpp for the design.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/engine.hpp"

namespace herald::engine {

inline constexpr const char* kSqliteFileName = "herald.db";
inline constexpr const char* kSqliteLockName = "herald.lock";
// Beside the database, deliberately outside it: the number of offsets ever
// handed out (see "Restored backups" in sqlite_engine.cpp).
inline constexpr const char* kSqliteOffsetsName = "herald.offsets";

struct SqliteOptions {
  std::string data_dir = "data";  // created when missing; holds herald.db
  bool full_sync = false;         // synchronous=FULL (power loss) instead of NORMAL
  size_t queue_limit = 100000;    // operations waiting for the storage thread
  size_t max_events_per_channel = 1000;
  int64_t max_age_ms = 0;           // 0: no age limit
  size_t hot_window = 256;          // newest events per active channel kept in RAM
  size_t channel_cache = 100000;    // channel rows cached by the storage thread (LRU beyond)
  size_t page_cache_kib = 32768;    // SQLite's page cache (PRAGMA cache_size)
  std::function<int64_t()> now_ms;  // empty: the system clock (tests inject one)
  size_t max_page_count = 0;        // tests: a small cap simulates a full disk (0: none)
};

class SqliteEngine : public Engine {
 public:
  // Stops posting results to the shards' executors. Call it once the workers
  // stopped running and before their io_contexts are destroyed; work already
  // queued is still committed (by the destructor at the latest).
  void stop() override = 0;
  // Whether this start gave every channel a new epoch because the database
  // holds fewer offsets than were already handed out (a restored backup).
  virtual bool epoch_renewed() const = 0;
};

// Opens (creating when needed) `data_dir/herald.db` and starts the storage
// thread. Throws std::runtime_error naming the path when the directory cannot
// be created or is used by another herald process, or when the file cannot be
// opened as a Herald database (e.g. it is corrupt or not a database).
std::unique_ptr<SqliteEngine> make_sqlite_engine(const SqliteOptions& options);

}  // namespace herald::engine
