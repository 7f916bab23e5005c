// The sqlite engine: each channel's offsets, epoch and recent events in one
// SQLite database (`<data_dir>/herald.db`, WAL mode), so that acknowledged
// events survive a process crash (synchronous=NORMAL) or a power loss (FULL),
// and offsets and epochs continue after a restart.
//
// Threads. The engine has one sqlite3 connection and an in-memory cache of
// the channels table (id, epoch, last offset), used by one thread at a time
// (the runner lock, Storage::run_mu_). Channel owners' ShardStores enqueue
// operations (append, read, load, remove) on one FIFO queue, bounded by
// queue_limit. Whoever holds the runner lock takes everything queued and
// handles it in ONE transaction (group commit): appends get the channel's
// next offsets and are inserted, removes delete a channel's events and give
// it a new epoch, reads and loads see the state at their place in the queue,
// retention deletes old rows. After COMMIT the results go back to each
// shard's executor in one posted handler per shard, in queue order; if the
// transaction fails, every operation of the batch fails (appends are not
// acknowledged and their offsets are given again later: they were never
// visible to anyone).
//
// Who commits. With durability "normal" (synchronous=NORMAL: a commit is a
// write to the WAL, no fsync) the owner commits on its own thread: a shard
// that queued operations posts one commit to its own executor, which runs
// after the other handlers ready in that loop turn, so a turn's operations
// share one transaction; it takes the runner lock if it is free and runs the
// batch there, and its own results come back in the same loop without any
// thread waking up. A publish then costs no hop to another thread and back,
// which on a machine whose cores are busy costs far more than the commit
// (bench/RESULTS.md, "Seventh session"). If the lock is taken (the other
// worker or the storage thread is committing), the storage thread is woken
// and commits what is queued once the lock is free. The storage thread also
// runs the retention sweeps and the WAL checkpoints: the writing connection
// does not checkpoint by itself (the checkpoint's fsyncs would stall a
// worker's loop); a WAL hook asks the storage thread to, on a second
// connection of its own, once the WAL holds kCheckpointPages pages (the bulk
// while writers go on, then the rest while they wait; see checkpoint()).
// With durability "full" every commit is an fsync, too slow for a worker's
// loop: the storage thread makes every commit, and the connection
// checkpoints as SQLite does by default.
//
// Hot window. Each ShardStore keeps, per active channel and on its worker's
// thread only (no locks), the channel's epoch, creation time, last committed
// offset, the timestamps of every event still held (for count and age limits)
// and the newest `hot_window` committed events. A channel is loaded from the
// database on first use; afterwards every committed append extends the window,
// so reads whose answer lies in the window are answered synchronously and
// everything else goes to the storage thread. While a remove of the channel is
// queued, its reads go to the storage thread too (behind the remove, so they
// see the new epoch and their callbacks run after remove's); remove's result
// then replaces the window with the new, empty epoch.
//
// The subscribe race. Node::subscribe counts the new subscriber on the owner
// (so events are posted to its worker from then on), then reads history, and
// the subscriber is added to its worker's local table only when the reply
// arrives there. If a read completed later than appends that were committed
// and delivered meanwhile, those events would reach the worker before the
// reply (and be dropped there) without being in the older read result: a gap
// in history-subscribe and recovery. This engine rules it out by keeping reads
// and appends of a channel in one sequence: an asynchronous read is queued
// behind the appends already queued and is answered from the database state at
// that point, and its result is posted to the owner after the results of those
// appends and before the results of later ones. So when a read's callback runs
// on the owner, the result's last_offset is exactly the last offset whose
// append callback already ran there (every event delivered before the reply is
// in it, every later one is delivered after the reply). Synchronous reads
// answer from the window, which holds exactly the committed events whose
// callbacks already ran. Hence a read callback always sees the channel as of
// the moment it runs, like the memory engine. (A read's callback can run
// before the callbacks of appends made earlier but not committed yet; those
// events have larger offsets than the result's last_offset and are delivered
// after the reply.)
//
// Epochs. The database gets a random epoch when it is created; a channel takes
// it when its first event is stored (and keeps it in the channels table), and
// a channel that has no row yet reads as that epoch with offset 0, so a client
// that subscribed before the first event can recover. Removing a channel
// deletes its events and gives its row a new random epoch of its own with
// last_offset 0 (a channel that had no row gets one, so the epoch is
// remembered); its offsets start again at 1 under that epoch. Channel rows are
// never deleted, so offsets are never reused within an epoch; a deleted
// database gives a new epoch.
//
// Creation time. The channels table keeps created_ms, the ts of the event that
// got offset 1 in the channel's current epoch (NULL while it has none, e.g.
// after a remove), so that it outlives the retention of that event and a
// restart. Rows written before the column existed hold NULL with offsets
// already given: they report the ts of their oldest held event (0 if none)
// until their next append, which stores that value (or its own ts when
// nothing is held). A renewed epoch (below) keeps created_ms.
//
// Restored backups. A database copied back from a backup (sqlite3 .backup)
// may hold fewer offsets than the server already handed out; continuing its
// channels under the same epoch would give those offsets again to other
// events, and a client recovering with the old epoch would silently get
// them. The number of offsets a database has handed out is the sum of all
// channels' last offsets plus `removed_offsets` in table meta: a remove adds
// the channel's last offset there in the same transaction that sets it to 0,
// so the number never shrinks and grows with every committed append (a remove
// alone leaves it as it was). The storage thread writes that number to
// `herald.offsets` beside the database after every commit that appended,
// before any result of the batch is posted (one small write, not flushed: it
// survives a crash of the process, not necessarily a power loss). At start, a
// database whose number is below the recorded one (or, with a non-empty
// database, a missing or unreadable file) gets a new epoch for every channel
// and for the database; offsets go on from the database's own, and clients
// that recover with the old epoch get `recovered: false`. (A backup taken
// before a remove and restored with nothing appended since holds the same
// number: the channel comes back under its old epoch, whose offsets beyond
// the backup's were never handed out.)
//
// Retention. Every append and read carries its channel's Retention (its
// namespace's history_size and history_ttl_ms; unset: the engine's limits).
// Both sides apply the latest one they saw: the owner to its hot window, the
// storage thread to reads and trimming. Each append also stores it in the
// channel's row (NULL: the engine's limits), so the age sweep applies it to
// channels that are no longer cached or were written before a restart.
//
// Idempotency keys. A keyed append is decided on the storage thread at its
// place in the batch, from a KeyIndex per channel (engine/key_index.hpp: key
// -> offset, fingerprint, expiry, in RAM): a key it holds answers `replayed`
// with its offset when the fingerprint is the same, `conflict` otherwise;
// either way nothing is inserted and no offset is used, and the result goes
// back in queue order like any append's. A new key is stored in the event's
// own row (columns key_hash and fingerprint: the key's 64-bit hash under
// the database's key_seed in table meta, see key_index.hpp; its expiry is
// the row's ts + the channel's keys_window_ms, the window of its latest
// keyed append: 18 bytes a row, as every byte of a row is written to the
// WAL and again by the checkpoint), so the key
// and its event are one write: a failed batch keeps neither, and a keyed
// publish costs no second row or index. The index follows the rows:
//  - it holds the keys of the channel's last idempotency_max_keys events
//    that have not expired, and channels.keys_from records the oldest
//    offset it holds at each commit (keys_expire_ms the latest expiry);
//  - retention never deletes a row from keys_from on (trim and sweep stop
//    at the oldest held key), so rows outlive the history limits while
//    their keys are remembered; reads never see them (they start at the
//    count and age limits);
//  - at start, every channel whose keys_expire_ms lies ahead gets its index
//    back from its rows from keys_from on (expiring at ts + keys_window_ms); after a failed batch,
//    the channels it touched get theirs back from the database the same way;
//  - remove() deletes the rows and forgets the index; the age sweep forgets
//    expired keys (and then trims the rows they held), a tenth of the
//    shortest window apart.
// Cost per key remembered: about 25 bytes in its event's row on disk, and
// about 50 bytes of RAM while remembered, whatever the key's length.
// (Development builds before this kept keys in a table `idempotency`,
// dropped on open: their keys are forgotten once.)
//
// Cache. The storage thread keeps the rows of recently used channels (id,
// epoch, last offset, creation time) so that appends need no lookup; beyond
// options.channel_cache rows, the least recently used quarter is dropped
// after a batch and read again from the database when needed.
#include "engine/sqlite/sqlite_engine.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/clock_and_epoch.hpp"
#include "engine/key_index.hpp"

namespace herald::engine {
namespace {

namespace fs = std::filesystem;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Which events a query returns when the held offsets are [first, last]
// (first >= 1): the same rules as the memory engine.
struct Range {
  uint64_t from = 0;
  uint64_t count = 0;
};

Range select_range(uint64_t first, uint64_t last, const HistoryQuery& q) {
  uint64_t lo = first;
  uint64_t hi = last;
  if (q.after) {
    if (*q.after >= hi) return {};
    lo = std::max(lo, *q.after + 1);
  }
  if (q.before) {
    if (*q.before <= lo) return {};
    hi = std::min(hi, *q.before - 1);
  }
  const uint64_t count = std::min<uint64_t>(q.limit, hi - lo + 1);
  if (count == 0) return {};
  return {q.after ? lo : hi - count + 1, count};
}

// --- SQLite wrappers ---------------------------------------------------------

struct DbError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw DbError(what + ": " + sqlite3_errmsg(db));
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw DbError(msg);
  }
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
      fail(db, "prepare");
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binds parameters 1..n; the statement is reset when the Use ends.
  class Use {
   public:
    explicit Use(Stmt& s) : s_(s) {}
    ~Use() {
      sqlite3_reset(s_.stmt_);
      sqlite3_clear_bindings(s_.stmt_);
    }
    Use& bind(int i, int64_t v) {
      check(sqlite3_bind_int64(s_.stmt_, i, v));
      return *this;
    }
    Use& bind(int i, uint64_t v) { return bind(i, static_cast<int64_t>(v)); }
    Use& bind_null(int i) {
      check(sqlite3_bind_null(s_.stmt_, i));
      return *this;
    }
    // Binds without copying: `v` must outlive the Use.
    Use& bind(int i, const std::string& v) {
      check(sqlite3_bind_text(s_.stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
      return *this;
    }
    // A temporary is copied by SQLite.
    Use& bind(int i, std::string&& v) {
      check(sqlite3_bind_text(s_.stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
      return *this;
    }
    // True while there is a row.
    bool step() {
      const int rc = sqlite3_step(s_.stmt_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      fail(s_.db_, "step");
    }
    void run() {
      while (step()) {
      }
    }
    int64_t i64(int col) const { return sqlite3_column_int64(s_.stmt_, col); }
    uint64_t u64(int col) const { return static_cast<uint64_t>(i64(col)); }
    bool is_null(int col) const { return sqlite3_column_type(s_.stmt_, col) == SQLITE_NULL; }
    std::string text(int col) const {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_.stmt_, col));
      return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_.stmt_, col)))
               : std::string();
    }

   private:
    void check(int rc) {
      if (rc != SQLITE_OK) fail(s_.db_, "bind");
    }
    Stmt& s_;
  };

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// `events` is a WITHOUT ROWID table: its rows live in the primary key's
// B-tree, so an insert updates one B-tree instead of a table and an index
// (half the pages written per commit). Databases created before keep their
// rowid table; every statement works on both.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS channels (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  epoch TEXT NOT NULL,
  last_offset INTEGER NOT NULL,
  history_size INTEGER,
  history_ttl_ms INTEGER,
  created_ms INTEGER,
  keys_expire_ms INTEGER,
  keys_from INTEGER,
  keys_window_ms INTEGER
);
CREATE TABLE IF NOT EXISTS events (
  channel INTEGER NOT NULL,
  "offset" INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  event TEXT NOT NULL,
  data TEXT NOT NULL,
  from_client TEXT NOT NULL,
  from_user TEXT NOT NULL,
  from_info TEXT NOT NULL DEFAULT '',
  key_hash INTEGER,
  fingerprint INTEGER,
  PRIMARY KEY (channel, "offset")
) WITHOUT ROWID;
DROP TABLE IF EXISTS idempotency;
)sql";

constexpr const char* kSchemaVersion = "1";

// Databases created before per-channel retention lack its two columns (both
// nullable: NULL means the engine's limits); they are added on open.
// Columns added after the first release of schema version 1, added to older
// databases on open (table, column, type). created_ms is NULL in the rows
// that existed before (see "Creation time").
constexpr const char* kAddedColumns[][3] = {{"channels", "history_size", "INTEGER"},
                                            {"channels", "history_ttl_ms", "INTEGER"},
                                            {"events", "from_info", "TEXT NOT NULL DEFAULT ''"},
                                            {"channels", "created_ms", "INTEGER"},
                                            {"events", "key_hash", "INTEGER"},
                                            {"events", "fingerprint", "INTEGER"},
                                            {"channels", "keys_expire_ms", "INTEGER"},
                                            {"channels", "keys_from", "INTEGER"},
                                            {"channels", "keys_window_ms", "INTEGER"}};

// --- operations between the shards and the storage thread --------------------

struct LoadResult {
  bool exists = false;
  std::string epoch;
  std::optional<int64_t> created;  // unset: NULL in the row (see "Creation time")
  uint64_t last = 0;
  uint64_t first = 0;               // offset of ts.front()
  std::vector<int64_t> ts;          // timestamps of the held events first..last
  std::vector<StoredEvent> window;  // the newest held events
};

enum class Kind : uint8_t { append, read, load, remove };

// One operation: built by a shard, filled in by the storage thread, completed
// back on the shard's executor.
struct Op {
  Kind kind = Kind::append;
  unsigned shard = 0;
  std::string channel;
  std::optional<Retention> retention;  // all kinds: the channel's, as last given
  StoredEvent event;                   // append; the storage thread sets the offset
  bool keyed = false;                  // append: with an idempotency key
  uint64_t key_hash = 0;               // append, keyed: KeyIndex::hash of the key
  std::string key;                     // append, keyed: the key (for a conflict's message)
  uint64_t fingerprint = 0;            // append, with a key
  int64_t key_window_ms = 0;           // append, with a key
  size_t max_keys = 0;                 // append, with a key
  HistoryQuery query;                  // read
  ShardStore::AppendHandler on_append;
  ShardStore::HistoryHandler on_read;
  ShardStore::RemoveHandler on_remove;
  // Results.
  bool ok = false;
  std::string error;
  std::string epoch;      // append; remove: the new one
  int64_t created = 0;    // append
  bool replayed = false;  // append: the key was remembered with this fingerprint
  bool conflict = false;  // append: the key was remembered with another one
  HistoryResult history;  // read
  LoadResult load;        // load
};

class ShardState;

// Where the storage thread posts a shard's results; closed when the shard's
// store goes away or the engine stops, after which nothing is posted.
struct ShardSink {
  std::mutex mu;
  bool open = true;
  boost::asio::any_io_executor executor;
  std::shared_ptr<ShardState> state;

  void post(std::vector<Op> ops);
  void close() {
    std::lock_guard lock(mu);
    open = false;
    state.reset();
  }
};

// --- the storage thread ------------------------------------------------------

struct ChannelRow {
  int64_t id = 0;
  std::string epoch;
  uint64_t last = 0;
  std::optional<int64_t> created;  // created_ms; unset: NULL
  uint64_t used = 0;               // number of the last batch that used it (for the cache bound)
  uint64_t trimmed_below = 0;      // count limit: rows below this offset are deleted
  std::optional<Retention> retention;  // as last given (unset: the engine's limits)
  int64_t keys_expire = 0;             // the latest expiry of a key given (0: none)
  int64_t keys_window = 0;             // the window of the latest keyed append
  uint64_t keys_from = 0;              // the oldest offset whose key is held (0: none)
};

// A channel's idempotency keys on the storage thread (see "Idempotency keys").
struct ChannelKeys {
  KeyIndex index;
  size_t max_keys = std::numeric_limits<size_t>::max();  // as the last keyed append gave
};

class Storage {
 public:
  explicit Storage(const SqliteOptions& options)
      : options_(options), now_ms_(options.now_ms ? options.now_ms : system_now_ms) {
    try {
      open_database();
    } catch (...) {
      if (db_) {  // rolls back the start-up transaction
        statements_.reset();
        sqlite3_close_v2(db_);
      }
      if (offsets_fd_ >= 0) ::close(offsets_fd_);
      if (lock_fd_ >= 0) ::close(lock_fd_);
      throw;
    }
    thread_ = std::thread([this] { run(); });
  }

  ~Storage() {
    shutdown();
    if (checkpoint_db_) sqlite3_close_v2(checkpoint_db_);
    if (db_) {
      statements_.reset();
      sqlite3_close_v2(db_);
    }
    if (offsets_fd_ >= 0) ::close(offsets_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  const SqliteOptions& options() const { return options_; }
  bool epoch_renewed() const { return epoch_renewed_; }
  // Whether owners commit on their own threads (see "Who commits").
  bool owners_commit() const { return !options_.full_sync; }
  uint64_t key_seed() const { return key_seed_; }
  int64_t now_ms() const { return now_ms_(); }

  unsigned add_shard(std::shared_ptr<ShardSink> sink) {
    std::lock_guard lock(mu_);
    sinks_.push_back(std::move(sink));
    return static_cast<unsigned>(sinks_.size() - 1);
  }

  // Queues `op` (moving from it) unless the queue is full or the engine is
  // stopping; then returns why, leaving `op` untouched.
  std::string enqueue(Op& op) {
    std::lock_guard lock(mu_);
    if (stopping_) return "storage engine is shutting down";
    if (queue_.size() >= options_.queue_limit)
      return "storage queue is full (engine.queue_limit = " + std::to_string(options_.queue_limit) +
             ")";
    queue_.push_back(std::move(op));
    // Owners that commit themselves posted their commit already.
    if (queue_.size() == 1 && !owners_commit()) cv_.notify_one();
    return {};
  }

  // Called by an owner on its thread (see "Who commits"): commits what is
  // queued here if no one else is committing, else leaves it to the storage
  // thread.
  void commit_here() {
    // A checkpoint waiting for the lock goes first (see checkpoint()).
    std::unique_lock run(run_mu_, std::defer_lock);
    if (checkpoint_waiting_.load(std::memory_order_acquire) || !run.try_lock()) {
      std::lock_guard lock(mu_);
      wake_ = true;
      cv_.notify_one();
      return;
    }
    std::vector<Op> batch;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
      batch.swap(queue_);
      busy_ = true;
    }
    bool sweep_done = true;
    process(batch, false, sweep_done);
    deliver(batch);
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    idle_cv_.notify_all();
  }

  // Waits until everything queued so far is committed and its results posted.
  void flush() {
    std::unique_lock lock(mu_);
    wake_ = true;  // what owners queued but have not committed
    cv_.notify_one();
    idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }

  void close_sinks() {
    std::vector<std::shared_ptr<ShardSink>> sinks;
    {
      std::lock_guard lock(mu_);
      sinks = sinks_;
    }
    for (auto& s : sinks) s->close();
  }

  // Commits what is queued, then stops the thread.
  void shutdown() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Statements {
    explicit Statements(sqlite3* db)
        : begin(db, "BEGIN IMMEDIATE"),
          commit(db, "COMMIT"),
          find_channel(db,
                       "SELECT id, epoch, last_offset, created_ms, keys_expire_ms, keys_from, "
                       "keys_window_ms "
                       "FROM channels WHERE name = ?1"),
          insert_channel(db, "INSERT INTO channels (name, epoch, last_offset) VALUES (?1, ?2, 0)"),
          update_row(db,
                     "UPDATE channels SET epoch = ?2, last_offset = ?3, history_size = ?4, "
                     "history_ttl_ms = ?5, created_ms = ?6, keys_expire_ms = ?7, keys_from = ?8, "
                     "keys_window_ms = ?9 "
                     "WHERE id = ?1"),
          insert_event(db,
                       "INSERT INTO events (channel, \"offset\", ts, event, data, from_client, "
                       "from_user, from_info, key_hash, fingerprint) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
          first_held(db,
                     "SELECT \"offset\", ts FROM events WHERE channel = ?1 AND \"offset\" >= ?2 "
                     "AND ts >= ?3 ORDER BY \"offset\" LIMIT 1"),
          read_range(db,
                     "SELECT \"offset\", ts, event, data, from_client, from_user, from_info "
                     "FROM events "
                     "WHERE channel = ?1 AND \"offset\" >= ?2 AND \"offset\" <= ?3 "
                     "ORDER BY \"offset\""),
          read_ts(db,
                  "SELECT \"offset\", ts FROM events WHERE channel = ?1 AND \"offset\" >= ?2 "
                  "ORDER BY \"offset\""),
          trim_count(db, "DELETE FROM events WHERE channel = ?1 AND \"offset\" <= ?2"),
          delete_events(db, "DELETE FROM events WHERE channel = ?1"),
          add_removed(db,
                      "INSERT INTO meta (key, value) VALUES ('removed_offsets', ?1) "
                      "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + ?1"),
          trim_age(db,
                   "DELETE FROM events WHERE channel = ?1 AND \"offset\" < MIN(COALESCE((SELECT "
                   "\"offset\" FROM events WHERE channel = ?1 AND ts >= ?2 ORDER BY \"offset\" "
                   "LIMIT 1), ?3), ?4)"),
          sweep_channels(db,
                         "SELECT id, last_offset, history_size, history_ttl_ms FROM channels "
                         "WHERE id > ?1 ORDER BY id LIMIT ?2"),
          load_keys(db,
                    "SELECT \"offset\", key_hash, fingerprint, ts FROM events "
                    "WHERE channel = ?1 AND \"offset\" >= ?2 AND key_hash IS NOT NULL AND ts > ?3 "
                    "ORDER BY \"offset\"") {}
    Stmt begin, commit, find_channel, insert_channel, update_row, insert_event, first_held,
        read_range, read_ts, trim_count, delete_events, add_removed, trim_age, sweep_channels,
        load_keys;
  };

  void open_database() {
    const fs::path dir(options_.data_dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
      throw std::runtime_error("engine.data_dir: cannot create directory '" + dir.string() +
                               "': " + ec.message());
    if (!fs::is_directory(dir, ec))
      throw std::runtime_error("engine.data_dir: '" + dir.string() + "' is not a directory");

    const fs::path lock_path = dir / kSqliteLockName;
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0)
      throw std::runtime_error("engine.data_dir: cannot create '" + lock_path.string() +
                               "': " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
      throw std::runtime_error(
          "engine.data_dir: '" + dir.string() +
          "' is in use by another herald process (locked: " + lock_path.string() + ")");

    const fs::path db_path = dir / kSqliteFileName;
    const std::string where = "sqlite engine: cannot use database '" + db_path.string() + "': ";
    if (sqlite3_open_v2(db_path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close_v2(db_);
      db_ = nullptr;
      throw std::runtime_error(where + msg);
    }
    try {
      sqlite3_busy_timeout(db_, 5000);
      Stmt mode(db_, "PRAGMA journal_mode = WAL");
      {
        Stmt::Use use(mode);
        if (!use.step() || use.text(0) != "wal")
          throw DbError("cannot switch to WAL mode (read-only file or directory?)");
      }
      exec(db_, options_.full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
      exec(db_, "PRAGMA journal_size_limit = 67108864");
      exec(db_,
           ("PRAGMA cache_size = -" + std::to_string(std::max<size_t>(options_.page_cache_kib, 1)))
               .c_str());
      if (options_.max_page_count > 0)
        exec(db_, ("PRAGMA max_page_count = " + std::to_string(options_.max_page_count)).c_str());
      exec(db_, kSchema);
      add_columns();
      exec(db_, "BEGIN IMMEDIATE");
      {
        Stmt put(db_, "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)");
        Stmt::Use(put)
            .bind(1, std::string("schema_version"))
            .bind(2, std::string(kSchemaVersion))
            .run();
        Stmt::Use(put).bind(1, std::string("epoch")).bind(2, random_epoch()).run();
        Stmt::Use(put)
            .bind(1, std::string("key_seed"))
            .bind(2, std::to_string(KeyIndex::random_seed()))
            .run();
        Stmt get(db_, "SELECT value FROM meta WHERE key = ?1");
        {
          Stmt::Use use(get);
          use.bind(1, std::string("schema_version"));
          const std::string version = use.step() ? use.text(0) : "";
          if (version != kSchemaVersion)
            throw DbError("schema version '" + version + "' is not supported (expected " +
                          kSchemaVersion + ")");
        }
        {
          Stmt::Use use(get);
          use.bind(1, std::string("epoch"));
          if (!use.step()) throw DbError("no epoch in table meta");
          db_epoch_ = use.text(0);
        }
        {
          Stmt::Use use(get);
          use.bind(1, std::string("key_seed"));
          const std::string seed = use.step() ? use.text(0) : "";
          const auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), key_seed_);
          if (ec != std::errc() || end != seed.data() + seed.size())
            throw DbError("bad key_seed in table meta");
        }
        // See "Restored backups".
        Stmt sum(db_,
                 "SELECT COALESCE(SUM(last_offset), 0) + COALESCE((SELECT CAST(value AS INTEGER) "
                 "FROM meta WHERE key = 'removed_offsets'), 0) FROM channels");
        Stmt::Use use(sum);
        handed_out_ = use.step() ? use.u64(0) : 0;
      }
      {
        Stmt min_ttl(db_, "SELECT MIN(history_ttl_ms) FROM channels WHERE history_ttl_ms > 0");
        Stmt::Use use(min_ttl);
        if (use.step() && !use.is_null(0)) note_ttl(use.i64(0));
      }
      note_ttl(options_.max_age_ms);
      const std::optional<uint64_t> recorded = open_offsets_file(dir);
      if (recorded ? *recorded > handed_out_ : handed_out_ > 0) renew_epoch();
      exec(db_, "COMMIT");
      if (!write_offsets_file(true))
        throw std::runtime_error("engine.data_dir: cannot write '" +
                                 (dir / kSqliteOffsetsName).string() +
                                 "': " + std::strerror(errno));
      statements_ = std::make_unique<Statements>(db_);
      load_all_keys();
      if (owners_commit()) open_checkpoint_connection(db_path);
    } catch (const DbError& e) {
      statements_.reset();
      sqlite3_close_v2(db_);
      db_ = nullptr;
      throw std::runtime_error(where + e.what() +
                               " (if the file is damaged, move it away to start afresh)");
    }
  }

  // Gives every channel with keys that have not expired its index back
  // (see "Idempotency keys"); they are swept (once a minute) even if no
  // keyed append comes to give the window.
  void load_all_keys() {
    struct WithKeys {
      int64_t id;
      uint64_t from;
      int64_t window;
    };
    std::vector<WithKeys> channels;
    {
      Stmt with_keys(
          db_, "SELECT id, keys_from, keys_window_ms FROM channels WHERE keys_expire_ms > ?1");
      Stmt::Use use(with_keys);
      use.bind(1, now_ms_());
      while (use.step())
        channels.push_back({use.i64(0), use.is_null(1) ? 0 : use.u64(1), use.i64(2)});
    }
    for (const auto& c : channels) load_keys(c.id, c.from, c.window);
    if (!keys_.empty()) note_ttl(kKeysSweepTtlMs);
  }

  // (Re)reads a channel's index from its rows from offset `from` on, each
  // key expiring at its row's ts + `window_ms`.
  void load_keys(int64_t id, uint64_t from, int64_t window_ms) {
    keys_.erase(id);
    if (from == 0) return;
    Stmt::Use use(statements_->load_keys);
    use.bind(1, id).bind(2, from).bind(3, now_ms_() - window_ms);
    ChannelKeys* keys = nullptr;
    while (use.step()) {
      if (!keys) keys = &keys_[id];
      keys->index.add(use.u64(1),
                      {use.u64(0), use.u64(2), KeyIndex::expiry(use.i64(3), window_ms)});
    }
  }

  // The channel's keys, if it has any.
  ChannelKeys* keys_of(int64_t id) {
    const auto it = keys_.find(id);
    return it == keys_.end() ? nullptr : &it->second;
  }

  // Forgets the channel's keys that expired or are more than its max_keys
  // events old; returns the oldest offset still held (0: none).
  uint64_t prune_keys(int64_t id, uint64_t last) {
    ChannelKeys* keys = keys_of(id);
    if (!keys) return 0;
    keys->index.prune(now_ms_(), last, keys->max_keys);
    if (keys->index.empty()) {
      keys_.erase(id);
      return 0;
    }
    return keys->index.oldest_offset();
  }

  void add_columns() {
    for (const auto& [table, column, type] : kAddedColumns) {
      Stmt info(db_, (std::string("SELECT COUNT(*) FROM pragma_table_info('") + table +
                      "') WHERE name = ?1")
                         .c_str());
      Stmt::Use use(info);
      use.bind(1, std::string(column));
      if (use.step() && use.i64(0) == 0)
        exec(db_,
             (std::string("ALTER TABLE ") + table + " ADD COLUMN " + column + " " + type).c_str());
    }
  }

  // Opens (creating) herald.offsets; returns the number it holds, nullopt
  // when it is new or empty, and the largest number when it holds something
  // else (so that a damaged file errs on the side of a new epoch).
  std::optional<uint64_t> open_offsets_file(const fs::path& dir) {
    const fs::path path = dir / kSqliteOffsetsName;
    offsets_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (offsets_fd_ < 0)
      throw std::runtime_error("engine.data_dir: cannot open '" + path.string() +
                               "': " + std::strerror(errno));
    char buf[64];
    const ssize_t n = ::pread(offsets_fd_, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(buf, buf + n, v);
    if (ec != std::errc() || end == buf || end == buf + n || *end != '\n')
      return std::numeric_limits<uint64_t>::max();
    return v;
  }

  // Records handed_out_ in herald.offsets: a fixed-width number, so that
  // each write replaces the previous one in place.
  bool write_offsets_file(bool sync) {
    char buf[32];
    const int n =
        std::snprintf(buf, sizeof buf, "%020llu\n", static_cast<unsigned long long>(handed_out_));
    if (::pwrite(offsets_fd_, buf, static_cast<size_t>(n), 0) != n) return false;
    return !sync || ::fdatasync(offsets_fd_) == 0;
  }

  // The database is older than the offsets already handed out (a restored
  // backup): every channel, and the database itself, gets a new epoch.
  void renew_epoch() {
    db_epoch_ = random_epoch();
    Stmt set_meta(db_, "UPDATE meta SET value = ?1 WHERE key = 'epoch'");
    Stmt::Use(set_meta).bind(1, db_epoch_).run();
    Stmt set_channels(db_, "UPDATE channels SET epoch = ?1");
    Stmt::Use(set_channels).bind(1, db_epoch_).run();
    epoch_renewed_ = true;
  }

  // Drops the least recently used quarter of the channel rows when there
  // are more than options_.channel_cache. No ChannelRow pointer is held
  // between batches.
  void bound_cache() {
    if (cache_.size() <= options_.channel_cache) return;
    std::vector<std::pair<uint64_t, const std::string*>> by_use;
    by_use.reserve(cache_.size());
    for (const auto& [name, row] : cache_) by_use.emplace_back(row.used, &name);
    const size_t drop = cache_.size() - options_.channel_cache * 3 / 4;
    std::nth_element(by_use.begin(), by_use.begin() + static_cast<ptrdiff_t>(drop), by_use.end());
    std::vector<std::string> names;
    names.reserve(drop);
    for (size_t i = 0; i < drop; ++i) names.push_back(*by_use[i].second);
    for (const auto& name : names) cache_.erase(name);
  }

  // The age sweep runs once some channel has an age limit or an append
  // came with an idempotency key; it comes round a tenth of the shortest
  // age limit or key window after (within 1 s .. 1 min).
  static constexpr int64_t kKeysSweepTtlMs = 600000;
  void note_ttl(int64_t ttl_ms) {
    const int64_t shortest = min_ttl_ms_.load(std::memory_order_relaxed);
    if (ttl_ms > 0 && (shortest == 0 || ttl_ms < shortest))
      min_ttl_ms_.store(ttl_ms, std::memory_order_relaxed);
  }

  int64_t sweep_interval_ms() const { return std::clamp<int64_t>(min_ttl_ms_ / 10, 1000, 60000); }

  // The storage thread's own connection for checkpoints; on success the
  // writing connection stops checkpointing by itself (its WAL hook replaces
  // SQLite's auto-checkpoint). Should it fail to open, the writing
  // connection keeps checkpointing as by default.
  void open_checkpoint_connection(const fs::path& db_path) {
    if (sqlite3_open_v2(db_path.c_str(), &checkpoint_db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK ||
        sqlite3_exec(checkpoint_db_, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr) !=
            SQLITE_OK) {
      sqlite3_close_v2(checkpoint_db_);
      checkpoint_db_ = nullptr;
      return;
    }
    sqlite3_wal_hook(db_, &Storage::on_wal_commit, this);
  }

  // The WAL holds `pages` pages after a commit (see "Who commits").
  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    auto& storage = *static_cast<Storage*>(self);
    if (pages >= kCheckpointPages) {
      std::lock_guard lock(storage.mu_);
      storage.checkpoint_due_ = true;
      storage.cv_.notify_one();
    }
    return SQLITE_OK;
  }

  // Checkpoints on the storage thread's own connection: first the bulk of
  // the WAL outside the runner lock, owners committing meanwhile; then,
  // holding the lock so that nothing is written, what they wrote during the
  // first pass, so that the whole WAL is in the database file and the next
  // commit starts the WAL again from its beginning (a WAL that is never
  // wholly checkpointed only grows). A failure leaves the WAL to the next
  // checkpoint.
  //
  // Owners that keep committing would take the free lock again before this
  // thread, woken, gets it (a mutex is not fair), and the WAL would never
  // restart: while checkpoint_waiting_ is set they leave their commits to
  // this thread instead, which commits them right after the checkpoint.
  void checkpoint() {
    if (!checkpoint_db_) return;
    sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    checkpoint_waiting_.store(true, std::memory_order_release);
    std::lock_guard run(run_mu_);
    checkpoint_waiting_.store(false, std::memory_order_release);
    sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }

  void run() {
    std::vector<Op> batch;
    std::optional<std::chrono::steady_clock::time_point> last_sweep;  // none yet: due at once
    for (;;) {
      // From the latest interval: an append may have brought a shorter one.
      const auto next_sweep = last_sweep
                                  ? *last_sweep + std::chrono::milliseconds(sweep_interval_ms())
                                  : std::chrono::steady_clock::time_point{};
      bool checkpoint_due = false;
      {
        std::unique_lock lock(mu_);
        // Owners that commit themselves wake this thread only when they
        // could not (wake_); otherwise anything queued is its to commit.
        const auto ready = [&] {
          return stopping_ || wake_ || checkpoint_due_ || (!owners_commit() && !queue_.empty());
        };
        if (min_ttl_ms_ > 0)
          cv_.wait_until(lock, next_sweep, ready);
        else
          cv_.wait(lock, ready);
        if (queue_.empty() && stopping_) break;
        wake_ = false;
        checkpoint_due = checkpoint_due_;
        checkpoint_due_ = false;
      }
      if (checkpoint_due) checkpoint();
      std::unique_lock run(run_mu_);
      {
        std::lock_guard lock(mu_);
        batch.swap(queue_);
        busy_ = true;
      }
      const bool sweep = min_ttl_ms_ > 0 && std::chrono::steady_clock::now() >= next_sweep;
      if (batch.empty() && !sweep) {
        {
          std::lock_guard lock(mu_);
          busy_ = false;
        }
        idle_cv_.notify_all();
        continue;
      }
      bool sweep_done = true;
      process(batch, sweep, sweep_done);
      if (sweep && sweep_done) last_sweep = std::chrono::steady_clock::now();
      deliver(batch);
      batch.clear();
      {
        std::lock_guard lock(mu_);
        busy_ = false;
      }
      idle_cv_.notify_all();
    }
  }

  // Finds a channel's row (cached), creating it when `create`; nullptr when
  // it does not exist and `create` is false.
  ChannelRow* channel(const std::string& name, bool create, std::vector<std::string>* created) {
    if (auto it = cache_.find(name); it != cache_.end()) {
      it->second.used = batch_no_;
      return &it->second;
    }
    ChannelRow row;
    row.used = batch_no_;
    {
      Stmt::Use use(statements_->find_channel);
      use.bind(1, name);
      if (use.step()) {
        row.id = use.i64(0);
        row.epoch = use.text(1);
        row.last = use.u64(2);
        if (!use.is_null(3)) row.created = use.i64(3);
        if (!use.is_null(4)) row.keys_expire = use.i64(4);
        if (!use.is_null(5)) row.keys_from = use.u64(5);
        if (!use.is_null(6)) row.keys_window = use.i64(6);
        return &cache_.emplace(name, std::move(row)).first->second;
      }
    }
    if (!create) return nullptr;
    Stmt::Use(statements_->insert_channel).bind(1, name).bind(2, db_epoch_).run();
    row.id = sqlite3_last_insert_rowid(db_);
    row.epoch = db_epoch_;
    if (created) created->push_back(name);
    return &cache_.emplace(name, std::move(row)).first->second;
  }

  Retention limits_of(const std::optional<Retention>& retention) const {
    return retention.value_or(Retention{options_.max_events_per_channel, options_.max_age_ms});
  }

  // Remembers the retention an operation carries as the channel's latest.
  void remember(ChannelRow& ch, const std::optional<Retention>& retention) {
    ch.retention = retention;
    note_ttl(limits_of(retention).max_age_ms);
  }

  int64_t age_cutoff(const Retention& keep) const {
    return keep.max_age_ms > 0 ? now_ms_() - keep.max_age_ms : std::numeric_limits<int64_t>::min();
  }

  // The oldest offset a channel may still hold by the count limit.
  static uint64_t count_floor(uint64_t last, const Retention& keep) {
    const uint64_t size = keep.max_events;
    return last >= size ? last - size + 1 : 1;
  }

  // The oldest offset that retention may not delete: the channel's oldest
  // held key's (see "Idempotency keys"), else last + 1.
  static uint64_t keep_from(uint64_t last, uint64_t keys_from) {
    return keys_from > 0 ? std::min(keys_from, last + 1) : last + 1;
  }

  // After appends: deletes the rows beyond the channel's count limit in
  // steps of a sixteenth of it (1 .. 256 rows), so that most commits do not
  // also rewrite the page that holds a channel's oldest rows. Reads never
  // see the extra rows (they start at count_floor), and expired rows are
  // left to the sweep, which reads skip as well.
  void trim_by_count(ChannelRow& ch) {
    const Retention k = limits_of(ch.retention);
    const uint64_t floor = std::min(count_floor(ch.last, k), keep_from(ch.last, ch.keys_from));
    if (floor < ch.trimmed_below + std::clamp<uint64_t>(k.max_events / 16, 1, 256)) return;
    Stmt::Use(statements_->trim_count).bind(1, ch.id).bind(2, floor - 1).run();
    ch.trimmed_below = floor;
  }

  // Deletes a channel's events beyond the count and age limits, keeping
  // those from `keys_from` on.
  void trim(int64_t id, uint64_t last, const Retention& keep, uint64_t keys_from) {
    const uint64_t held = keep_from(last, keys_from);
    const uint64_t floor = std::min(count_floor(last, keep), held);
    if (floor > 1) Stmt::Use(statements_->trim_count).bind(1, id).bind(2, floor - 1).run();
    if (keep.max_age_ms > 0)
      Stmt::Use(statements_->trim_age)
          .bind(1, id)
          .bind(2, age_cutoff(keep))
          .bind(3, last + 1)
          .bind(4, held)
          .run();
  }

  // The rows the operations of a batch changed, each as it was before them:
  // written back at the end of the batch, restored when it fails.
  using Touched = std::unordered_map<ChannelRow*, ChannelRow>;

  // Returns whether the event was stored (not a replay or a conflict).
  bool do_append(Op& op, std::vector<std::string>& created, Touched& touched) {
    ChannelRow* ch = channel(op.channel, true, &created);
    touched.try_emplace(ch, *ch);
    remember(*ch, op.retention);
    ChannelKeys* keys = nullptr;
    const bool keyed = op.keyed;
    if (keyed) {
      note_ttl(op.key_window_ms);
      keys = &keys_[ch->id];
      keys->max_keys = op.max_keys;
      // A key appended earlier in this batch (and not forgotten by a
      // remove since) is found here too.
      keys->index.prune(op.event.ts_ms, ch->last, op.max_keys);
      if (const KeyIndex::Record* known = keys->index.find(op.key_hash, op.event.ts_ms)) {
        op.event.offset = known->offset;
        op.epoch = ch->epoch;
        if (known->fingerprint == op.fingerprint) {
          std::optional<Held> held;
          if (!ch->created) held = first_held(*ch);
          op.created = ch->created ? *ch->created : held ? held->ts : 0;
          op.replayed = true;
          op.ok = true;
        } else {
          op.conflict = true;
          op.error = "idempotency key conflict";
        }
        return false;
      }
    }
    if (!ch->created) {
      // Offset 1 of the epoch, or a row from before created_ms (see
      // "Creation time"): its oldest held event, else this one.
      std::optional<Held> held;
      if (ch->last > 0) held = first_held(*ch);
      ch->created = held ? held->ts : op.event.ts_ms;
    }
    op.event.offset = ++ch->last;
    // A keyed event gets its row even without history: the row keeps the key.
    if (keyed || limits_of(ch->retention).max_events > 0) {
      Stmt::Use insert(statements_->insert_event);
      insert.bind(1, ch->id)
          .bind(2, op.event.offset)
          .bind(3, op.event.ts_ms)
          .bind(4, op.event.event)
          .bind(5, op.event.data)
          .bind(6, op.event.from_client)
          .bind(7, op.event.from_user)
          .bind(8, op.event.from_info);
      if (keyed) {
        const int64_t expires = KeyIndex::expiry(op.event.ts_ms, op.key_window_ms);
        insert.bind(9, op.key_hash).bind(10, op.fingerprint).run();
        keys->index.prune(op.event.ts_ms, op.event.offset, op.max_keys);
        keys->index.add(op.key_hash, {op.event.offset, op.fingerprint, expires});
        ch->keys_expire = std::max(ch->keys_expire, expires);
        ch->keys_window = op.key_window_ms;
      } else {
        insert.bind_null(9).bind_null(10).run();
      }
    }
    op.epoch = ch->epoch;
    op.created = *ch->created;
    op.ok = true;
    return true;
  }

  // Deletes the channel's events and starts its new epoch (see "Epochs"),
  // keeping the number of offsets handed out (see "Restored backups").
  void do_remove(Op& op, std::vector<std::string>& created, Touched& touched) {
    ChannelRow* ch = channel(op.channel, true, &created);
    touched.try_emplace(ch, *ch);
    if (ch->last > 0) Stmt::Use(statements_->add_removed).bind(1, ch->last).run();
    Stmt::Use(statements_->delete_events).bind(1, ch->id).run();
    keys_.erase(ch->id);
    ch->keys_expire = 0;
    ch->keys_from = 0;
    std::string epoch;
    do {
      epoch = random_epoch();
    } while (epoch == ch->epoch);
    ch->epoch = std::move(epoch);
    ch->last = 0;
    ch->created.reset();
    ch->trimmed_below = 0;
    op.epoch = ch->epoch;
    op.ok = true;
  }

  struct Held {
    uint64_t offset = 0;
    int64_t ts = 0;
  };

  // The oldest event a channel holds under its retention (none: nullopt).
  std::optional<Held> first_held(const ChannelRow& ch) {
    const Retention k = limits_of(ch.retention);
    if (ch.last == 0 || k.max_events == 0) return std::nullopt;
    Stmt::Use use(statements_->first_held);
    use.bind(1, ch.id).bind(2, count_floor(ch.last, k)).bind(3, age_cutoff(k));
    if (!use.step()) return std::nullopt;
    return Held{use.u64(0), use.i64(1)};
  }

  void read_events(int64_t id, uint64_t from, uint64_t to, std::vector<StoredEvent>& out) {
    Stmt::Use use(statements_->read_range);
    use.bind(1, id).bind(2, from).bind(3, to);
    while (use.step())
      out.push_back(StoredEvent{use.u64(0), use.i64(1), use.text(2), use.text(3), use.text(4),
                                use.text(5), use.text(6)});
  }

  void do_read(Op& op) {
    op.ok = true;
    HistoryResult& r = op.history;
    r.ok = true;
    r.epoch = db_epoch_;
    ChannelRow* ch = channel(op.channel, false, nullptr);  // reading never creates a channel
    if (!ch) return;
    remember(*ch, op.retention);
    r.epoch = ch->epoch;
    r.last_offset = ch->last;
    const std::optional<Held> first = first_held(*ch);
    r.created_ms = ch->created ? *ch->created : first ? first->ts : 0;
    if (!first) return;
    r.first_offset = first->offset;
    const Range range = select_range(first->offset, ch->last, op.query);
    if (range.count == 0) return;
    r.events.reserve(range.count);
    read_events(ch->id, range.from, range.from + range.count - 1, r.events);
  }

  void do_load(Op& op) {
    LoadResult& l = op.load;
    l.epoch = db_epoch_;
    ChannelRow* ch = channel(op.channel, false, nullptr);
    if (ch) {
      remember(*ch, op.retention);
      const Retention k = limits_of(ch->retention);
      l.exists = true;
      l.epoch = ch->epoch;
      l.created = ch->created;
      l.last = ch->last;
      if (ch->last > 0 && k.max_events > 0) {
        // Held events are contiguous and end at `last`; keep the contiguous
        // run that ends there, should the table hold anything else.
        std::vector<std::pair<uint64_t, int64_t>> rows;
        {
          Stmt::Use use(statements_->read_ts);
          use.bind(1, ch->id).bind(2, count_floor(ch->last, k));
          while (use.step()) rows.emplace_back(use.u64(0), use.i64(1));
        }
        size_t begin = rows.size();
        uint64_t expect = ch->last;
        while (begin > 0 && rows[begin - 1].first == expect) {
          --begin;
          --expect;
        }
        if (begin < rows.size()) {
          l.first = rows[begin].first;
          for (size_t i = begin; i < rows.size(); ++i) l.ts.push_back(rows[i].second);
          const uint64_t w = std::min(options_.hot_window, k.max_events);
          if (w > 0) {
            const uint64_t from = std::max<uint64_t>(l.first, ch->last >= w ? ch->last - w + 1 : 1);
            read_events(ch->id, from, ch->last, l.window);
          }
        }
      }
    }
    op.ok = true;
  }

  // One step of the age sweep: trims up to kSweepBatch channels, so channels
  // that get no new events still lose their expired ones. Returns true when
  // it went round all channels.
  bool sweep_step() {
    constexpr int64_t kSweepBatch = 256;
    struct SweepRow {
      int64_t id;
      uint64_t last;
      Retention keep;
    };
    std::vector<SweepRow> rows;
    {
      Stmt::Use use(statements_->sweep_channels);
      use.bind(1, sweep_cursor_).bind(2, kSweepBatch);
      while (use.step()) {
        std::optional<Retention> stored;
        if (!use.is_null(2)) stored = Retention{use.u64(2), use.is_null(3) ? 0 : use.i64(3)};
        rows.push_back(SweepRow{use.i64(0), use.u64(1), limits_of(stored)});
      }
    }
    for (const SweepRow& row : rows) trim(row.id, row.last, row.keep, prune_keys(row.id, row.last));
    if (static_cast<int64_t>(rows.size()) < kSweepBatch) {
      sweep_cursor_ = 0;
      return true;
    }
    sweep_cursor_ = rows.back().id;
    return false;
  }

  void process(std::vector<Op>& batch, bool sweep, bool& sweep_done) {
    ++batch_no_;
    std::vector<std::string> created;
    Touched touched;
    uint64_t appended = 0;
    try {
      Stmt::Use(statements_->begin).run();
      for (Op& op : batch) {
        switch (op.kind) {
          case Kind::append:
            if (do_append(op, created, touched)) ++appended;
            break;
          case Kind::read:
            do_read(op);
            break;
          case Kind::load:
            do_load(op);
            break;
          case Kind::remove:
            do_remove(op, created, touched);
            break;
        }
      }
      for (const auto& [ch, before] : touched) {
        if (ch->keys_from > 0 || keys_of(ch->id)) ch->keys_from = prune_keys(ch->id, ch->last);
        Stmt::Use update(statements_->update_row);
        update.bind(1, ch->id).bind(2, ch->epoch).bind(3, ch->last);
        if (ch->retention)
          update.bind(4, uint64_t{ch->retention->max_events}).bind(5, ch->retention->max_age_ms);
        else
          update.bind_null(4).bind_null(5);
        if (ch->created)
          update.bind(6, *ch->created);
        else
          update.bind_null(6);
        if (ch->keys_from > 0)
          update.bind(7, ch->keys_expire).bind(8, ch->keys_from).bind(9, ch->keys_window);
        else
          update.bind_null(7).bind_null(8).bind_null(9);
        update.run();
        trim_by_count(*ch);
      }
      if (sweep) sweep_done = sweep_step();
      Stmt::Use(statements_->commit).run();
      if (appended > 0) {
        handed_out_ += appended;
        // Committed already, so the batch succeeds either way; a failed
        // write only weakens the detection of restored backups.
        write_offsets_file(false);
      }
    } catch (const std::exception& e) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      // Every channel whose keys changed was touched: its index is read
      // again as committed (see "Idempotency keys"). Should that fail, the
      // index stays empty, which forgets keys but never invents one.
      for (auto& [ch, before] : touched) {
        *ch = std::move(before);
        try {
          load_keys(ch->id, ch->keys_from, ch->keys_window);
        } catch (const std::exception&) {
          keys_.erase(ch->id);
        }
      }
      for (const auto& name : created) cache_.erase(name);
      const std::string why = std::string("sqlite: ") + e.what();
      for (Op& op : batch) {
        op.ok = false;
        op.replayed = false;
        op.conflict = false;
        op.error = why;
        op.history = HistoryResult{};
        op.history.error = why;
        op.load = LoadResult{};
      }
      sweep_done = true;
    }
    bound_cache();
  }

  void deliver(std::vector<Op>& batch) {
    std::vector<std::shared_ptr<ShardSink>> sinks;
    {
      std::lock_guard lock(mu_);
      sinks = sinks_;
    }
    std::vector<std::vector<Op>> per_shard(sinks.size());
    for (Op& op : batch) per_shard[op.shard].push_back(std::move(op));
    for (size_t i = 0; i < sinks.size(); ++i)
      if (!per_shard[i].empty()) sinks[i]->post(std::move(per_shard[i]));
  }

  const SqliteOptions options_;
  const std::function<int64_t()> now_ms_;
  int lock_fd_ = -1;
  int offsets_fd_ = -1;      // herald.offsets
  uint64_t handed_out_ = 0;  // offsets handed out, as committed (see "Restored backups")
  bool epoch_renewed_ = false;
  uint64_t key_seed_ = 0;  // for KeyIndex::hash, kept in table meta
  uint64_t batch_no_ = 0;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Statements> statements_;
  std::string db_epoch_;
  std::unordered_map<std::string, ChannelRow> cache_;  // storage thread only
  int64_t sweep_cursor_ = 0;
  // The shortest age limit or key window seen (0: none); written by the
  // runner, read by the storage thread while it waits.
  std::atomic<int64_t> min_ttl_ms_ = 0;
  std::unordered_map<int64_t, ChannelKeys> keys_;  // by channel id (see "Idempotency keys")

  sqlite3* checkpoint_db_ = nullptr;  // the storage thread's, for checkpoints (owners_commit())
  // The WAL size (pages of 4 KiB) that asks for a checkpoint: SQLite's default.
  static constexpr int kCheckpointPages = 1000;

  std::mutex run_mu_;  // held while a batch is processed and delivered (the runner lock)
  std::atomic<bool> checkpoint_waiting_ = false;  // checkpoint() waits for run_mu_
  std::mutex mu_;                                 // the queue and the flags below
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  bool busy_ = false;  // a batch is being processed
  std::vector<Op> queue_;
  bool stopping_ = false;
  bool wake_ = false;            // the storage thread should commit what is queued
  bool checkpoint_due_ = false;  // the WAL grew past kCheckpointPages
  std::vector<std::shared_ptr<ShardSink>> sinks_;
  std::thread thread_;
};

// --- the owner side: one per worker ------------------------------------------

struct HotChannel {
  enum class State : uint8_t { unloaded, loading, loaded };
  State state = State::unloaded;
  std::string epoch;
  std::optional<int64_t> created;  // unset: NULL in the row (see "Creation time")
  uint64_t last = 0;
  uint64_t first = 0;              // offset of ts.front()
  std::deque<int64_t> ts;          // timestamps of the held events first..last
  std::deque<StoredEvent> window;  // the newest held events
  Retention keep;                  // as given by the latest append or read
  uint32_t pending = 0;            // appends, loads and removes not completed yet
  uint32_t removing = 0;           // removes not completed yet
  int64_t used_ms = 0;             // steady clock
};

class ShardState : public std::enable_shared_from_this<ShardState> {
 public:
  ShardState(std::shared_ptr<Storage> storage, unsigned shard,
             boost::asio::any_io_executor executor)
      : storage_(std::move(storage)),
        options_(storage_->options()),
        defaults_{options_.max_events_per_channel, options_.max_age_ms},
        shard_(shard),
        executor_(std::move(executor)) {}

  void append(const std::string& channel, NewEvent ev, ShardStore::AppendHandler done) {
    HotChannel& ch = touch(channel, ev.retention);
    ensure_loaded(channel, ch, ev.retention);
    Op op;
    op.kind = Kind::append;
    op.shard = shard_;
    op.channel = channel;
    op.retention = ev.retention;
    op.event = StoredEvent{0,
                           ev.ts_ms,
                           std::move(ev.event),
                           std::move(ev.data),
                           std::move(ev.from_client),
                           std::move(ev.from_user),
                           std::move(ev.from_info)};
    op.keyed = !ev.idempotency_key.empty() && ev.idempotency_max_keys > 0;
    if (op.keyed) {
      op.key_hash = KeyIndex::hash(ev.idempotency_key, storage_->key_seed());
      op.key = std::move(ev.idempotency_key);
    }
    op.fingerprint = ev.fingerprint;
    op.key_window_ms = std::max<int64_t>(ev.idempotency_window_ms, 0);
    op.max_keys = ev.idempotency_max_keys;
    op.on_append = std::move(done);
    if (std::string why = storage_->enqueue(op); !why.empty()) {
      AppendResult r;
      r.error = std::move(why);
      r.unavailable = true;  // queue full or stopping: nothing was stored
      return op.on_append(std::move(r));
    }
    ++ch.pending;
    commit_soon();
  }

  void read(const std::string& channel, const HistoryQuery& query,
            ShardStore::HistoryHandler done) {
    HotChannel& ch = touch(channel, query.retention);
    // While a remove is queued, the window is the state before it, which a
    // read made now must not see (its callback would come before remove's).
    if (ch.state == HotChannel::State::loaded && ch.removing == 0 &&
        answer_from_window(ch, query, done))
      return;
    ensure_loaded(channel, ch, query.retention);
    Op op;
    op.kind = Kind::read;
    op.shard = shard_;
    op.channel = channel;
    op.retention = query.retention;
    op.query = query;
    op.on_read = std::move(done);
    if (std::string why = storage_->enqueue(op); !why.empty()) {
      HistoryResult r;
      r.error = std::move(why);
      r.unavailable = true;  // queue full or stopping: nothing was stored
      return op.on_read(std::move(r));
    }
    commit_soon();
  }

  void remove(const std::string& channel, ShardStore::RemoveHandler done) {
    HotChannel& ch = touch(channel);
    Op op;
    op.kind = Kind::remove;
    op.shard = shard_;
    op.channel = channel;
    op.on_remove = std::move(done);
    if (std::string why = storage_->enqueue(op); !why.empty()) {
      RemoveResult r;
      r.error = std::move(why);
      r.unavailable = true;  // queue full or stopping: nothing was stored
      return op.on_remove(std::move(r));
    }
    ++ch.pending;
    ++ch.removing;
    commit_soon();
  }

  // Runs on the shard's executor: the results of one batch, in queue order.
  void complete(std::vector<Op>& ops) {
    for (Op& op : ops) {
      switch (op.kind) {
        case Kind::load: {
          HotChannel& ch = channels_[op.channel];
          --ch.pending;
          if (!op.ok) {
            reset(ch);
            break;
          }
          ch.state = HotChannel::State::loaded;
          ch.epoch = std::move(op.load.epoch);
          ch.created = op.load.created;
          ch.last = op.load.last;
          ch.first = op.load.first;
          ch.ts.assign(op.load.ts.begin(), op.load.ts.end());
          ch.window.assign(std::make_move_iterator(op.load.window.begin()),
                           std::make_move_iterator(op.load.window.end()));
          if (!window_is_tail(ch)) ch.window.clear();  // then reads go to the database
          break;
        }
        case Kind::append: {
          HotChannel& ch = channels_[op.channel];
          --ch.pending;
          AppendResult r;
          r.ok = op.ok;
          r.error = std::move(op.error);
          r.replayed = op.replayed;
          r.conflict = op.conflict;
          if (op.conflict) r.idempotency_key = std::move(op.key);
          if (op.replayed || op.conflict) {
            // Nothing was stored: the window and last offset stay as they are.
            r.offset = op.event.offset;
            r.epoch = std::move(op.epoch);
            r.created_ms = op.created;
          } else if (op.ok) {
            r.offset = op.event.offset;
            r.epoch = op.epoch;
            r.created_ms = op.created;
            if (ch.state == HotChannel::State::loaded) {
              ch.created = op.created;
              add_committed(ch, std::move(op.event));
            }
          }
          op.on_append(std::move(r));
          break;
        }
        case Kind::remove: {
          HotChannel& ch = channels_[op.channel];
          --ch.pending;
          --ch.removing;
          RemoveResult r;
          r.ok = op.ok;
          r.error = std::move(op.error);
          if (op.ok) {
            // Everything queued before the remove has completed, so the
            // window is now the new epoch's, still empty. (On failure the
            // old window is still the database's state.)
            reset(ch);
            ch.state = HotChannel::State::loaded;
            ch.epoch = op.epoch;
            ch.last = 0;
            ch.first = 0;
            r.epoch = std::move(op.epoch);
          }
          op.on_remove(std::move(r));
          break;
        }
        case Kind::read:
          op.history.ok = op.ok;
          if (!op.ok) op.history.error = op.error;
          op.on_read(std::move(op.history));
          break;
      }
    }
  }

 private:
  HotChannel& touch(const std::string& channel, const std::optional<Retention>& retention) {
    HotChannel& ch = touch(channel);
    ch.keep = retention.value_or(defaults_);
    return ch;
  }

  // As above, for an operation that carries no retention (remove).
  HotChannel& touch(const std::string& channel) {
    const int64_t now = steady_ms();
    if (++ops_ % 1024 == 0) evict_idle(now);
    const auto [it, added] = channels_.try_emplace(channel);
    if (added) it->second.keep = defaults_;
    it->second.used_ms = now;
    return it->second;
  }

  // Forgets channels not used for a minute (they are loaded again on use).
  void evict_idle(int64_t now) {
    constexpr int64_t kIdleMs = 60000;
    for (auto it = channels_.begin(); it != channels_.end();) {
      if (it->second.pending == 0 && now - it->second.used_ms > kIdleMs)
        it = channels_.erase(it);
      else
        ++it;
    }
  }

  static void reset(HotChannel& ch) {
    ch.state = HotChannel::State::unloaded;
    ch.created.reset();
    ch.ts.clear();
    ch.window.clear();
  }

  void ensure_loaded(const std::string& channel, HotChannel& ch,
                     const std::optional<Retention>& retention) {
    if (ch.state != HotChannel::State::unloaded) return;
    Op op;
    op.kind = Kind::load;
    op.shard = shard_;
    op.channel = channel;
    op.retention = retention;
    if (!storage_->enqueue(op).empty()) return;  // tried again on the next use
    ch.state = HotChannel::State::loading;
    ++ch.pending;
    commit_soon();
  }

  // After an enqueue: when owners commit (see "Who commits"), one commit per
  // loop turn, posted behind the handlers already ready so that they share it.
  void commit_soon() {
    if (commit_posted_ || !storage_->owners_commit()) return;
    commit_posted_ = true;
    boost::asio::post(executor_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->commit_posted_ = false;
        self->storage_->commit_here();
      }
    });
  }

  // Whether the window holds contiguous offsets ending at the last offset
  // and none older than the oldest held event.
  static bool window_is_tail(const HotChannel& ch) {
    if (ch.window.empty()) return true;
    if (ch.window.back().offset != ch.last || ch.ts.empty() || ch.window.front().offset < ch.first)
      return false;
    for (size_t i = 1; i < ch.window.size(); ++i)
      if (ch.window[i].offset != ch.window[i - 1].offset + 1) return false;
    return true;
  }

  void add_committed(HotChannel& ch, StoredEvent ev) {
    if (ev.offset != ch.last + 1) {  // cannot happen; reload rather than serve a gap
      reset(ch);
      return;
    }
    ch.last = ev.offset;
    if (ch.keep.max_events == 0) return drop_beyond_retention(ch);
    if (ch.ts.empty()) ch.first = ev.offset;
    ch.ts.push_back(ev.ts_ms);
    ch.window.push_back(std::move(ev));
    drop_beyond_retention(ch);
  }

  // Drops what the channel's retention no longer holds (a reload may have
  // made it smaller) and keeps the window within its size.
  void drop_beyond_retention(HotChannel& ch) {
    const int64_t cutoff = ch.keep.max_age_ms > 0 ? storage_->now_ms() - ch.keep.max_age_ms
                                                  : std::numeric_limits<int64_t>::min();
    while (!ch.ts.empty() && (ch.ts.size() > ch.keep.max_events || ch.ts.front() < cutoff)) {
      ch.ts.pop_front();
      ++ch.first;
    }
    const size_t window_size = std::min(options_.hot_window, ch.keep.max_events);
    while (!ch.window.empty() &&
           (ch.window.size() > window_size || ch.ts.empty() || ch.window.front().offset < ch.first))
      ch.window.pop_front();
  }

  // Answers `query` when the window holds the whole answer.
  bool answer_from_window(HotChannel& ch, const HistoryQuery& query,
                          ShardStore::HistoryHandler& done) {
    drop_beyond_retention(ch);
    HistoryResult r;
    r.ok = true;
    r.epoch = ch.epoch;
    r.last_offset = ch.last;
    r.created_ms = ch.created ? *ch.created : ch.ts.empty() ? 0 : ch.ts.front();
    if (ch.ts.empty()) {
      done(std::move(r));
      return true;
    }
    r.first_offset = ch.first;
    const Range range = select_range(ch.first, ch.last, query);
    if (range.count > 0) {
      if (ch.window.empty() || range.from < ch.window.front().offset) return false;
      const size_t begin = range.from - ch.window.front().offset;
      r.events.assign(ch.window.begin() + static_cast<ptrdiff_t>(begin),
                      ch.window.begin() + static_cast<ptrdiff_t>(begin + range.count));
    }
    done(std::move(r));
    return true;
  }

  const std::shared_ptr<Storage> storage_;
  const SqliteOptions& options_;
  const Retention defaults_;  // for channels given no retention
  const unsigned shard_;
  const boost::asio::any_io_executor executor_;  // this shard's worker
  bool commit_posted_ = false;                   // a commit_soon() has not run yet
  std::unordered_map<std::string, HotChannel> channels_;
  uint64_t ops_ = 0;
};

void ShardSink::post(std::vector<Op> ops) {
  std::lock_guard lock(mu);
  if (!open) return;
  boost::asio::post(executor,
                    [state = state, ops = std::move(ops)]() mutable { state->complete(ops); });
}

class SqliteShardStore final : public ShardStore {
 public:
  SqliteShardStore(std::shared_ptr<ShardState> state, std::shared_ptr<ShardSink> sink)
      : state_(std::move(state)), sink_(std::move(sink)) {}
  ~SqliteShardStore() override { sink_->close(); }

  void append(const std::string& channel, NewEvent ev, AppendHandler done) override {
    state_->append(channel, std::move(ev), std::move(done));
  }
  void read(const std::string& channel, const HistoryQuery& query, HistoryHandler done) override {
    state_->read(channel, query, std::move(done));
  }
  void remove(const std::string& channel, RemoveHandler done) override {
    state_->remove(channel, std::move(done));
  }

 private:
  std::shared_ptr<ShardState> state_;
  std::shared_ptr<ShardSink> sink_;
};

class SqliteEngineImpl final : public SqliteEngine {
 public:
  explicit SqliteEngineImpl(const SqliteOptions& options)
      : storage_(std::make_shared<Storage>(options)) {}
  ~SqliteEngineImpl() override {
    storage_->close_sinks();
    storage_->shutdown();
  }

  std::string_view name() const override { return "sqlite"; }
  bool epoch_renewed() const override { return storage_->epoch_renewed(); }

  std::unique_ptr<ShardStore> open_shard(unsigned /*shard*/,
                                         boost::asio::any_io_executor executor) override {
    auto sink = std::make_shared<ShardSink>();
    sink->executor = std::move(executor);
    // The index is this store's position in the storage thread's sink list.
    const unsigned index = storage_->add_shard(sink);
    auto state = std::make_shared<ShardState>(storage_, index, sink->executor);
    {
      std::lock_guard lock(sink->mu);
      sink->state = state;
    }
    return std::make_unique<SqliteShardStore>(std::move(state), std::move(sink));
  }

  // Results still pending are posted (to executors that no longer run, whose
  // io_contexts destroy them with their other handlers) rather than dropped
  // here, so nothing captured by a callback is destroyed on the storage thread.
  void stop() override {
    storage_->flush();
    storage_->close_sinks();
  }

 private:
  std::shared_ptr<Storage> storage_;
};

}  // namespace

std::unique_ptr<SqliteEngine> make_sqlite_engine(const SqliteOptions& options) {
  return std::make_unique<SqliteEngineImpl>(options);
}

}  // namespace herald::engine
