// The storage engine interface: where a channel's events get their offsets
// and are kept for history and recovery.
//
// The core never knows which engine runs. Each worker thread owns a shard of
// the channels and talks to the engine only through its own ShardStore,
// created for that worker's executor; every callback of a ShardStore runs on
// that executor, and append and remove callbacks for one channel run in the
// order the calls were made (reads follow the contract on ShardStore below). So
// engines may complete synchronously (memory), on a storage thread with
// group commit (sqlite), or on a network reply (redis), and the channel
// owner still sees appends complete in offset order.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::engine {

// How much of one channel's history to keep: its namespace's history_size
// and history_ttl_ms (config [namespaces.<name>]).
struct Retention {
  size_t max_events = 1000;  // 0: none
  int64_t max_age_ms = 0;    // 0: no age limit
};

struct NewEvent {
  std::string event;        // e.g. "chat.message"
  std::string data;         // raw JSON
  std::string from_client;  // empty when published by the server API
  std::string from_user;
  int64_t ts_ms = 0;
  // The channel's retention; unset: the engine's own limits. Engines apply
  // the latest one given for a channel (by an append or a read).
  std::optional<Retention> retention = std::nullopt;
  std::string from_info = {};  // raw JSON of the publisher's token `info`, "" for none
  // Exactly-once publish (docs/protocol.md, idempotency_key): with a key,
  // the engine remembers (channel, key) -> (offset, fingerprint) until
  // ts_ms + idempotency_window_ms, and while the event is one of the
  // channel's last idempotency_max_keys (engine/key_index.hpp), written in
  // the same transaction (state) as the event. A later append with a remembered key stores nothing:
  // it answers `replayed` with the original offset when its fingerprint is the same, else
  // `conflict`. remove() forgets the channel's keys.
  std::string idempotency_key = {};  // "" for none
  uint64_t fingerprint = 0;          // of the publisher, event and data (core::fingerprint)
  int64_t idempotency_window_ms = 120000;
  size_t idempotency_max_keys = 1000;
};

struct StoredEvent {
  uint64_t offset = 0;
  int64_t ts_ms = 0;
  std::string event;
  std::string data;
  std::string from_client;
  std::string from_user;
  std::string from_info;
};

struct AppendResult {
  bool ok = false;
  std::string error;    // when !ok: why (logged; clients see `internal`)
  uint64_t offset = 0;  // offset given to the event
  std::string epoch;
  int64_t created_ms = 0;  // as HistoryResult::created_ms, this event included
  // With an idempotency key already remembered: `replayed` (ok, `offset` is
  // the original one, nothing was stored) or `conflict` (not ok, `offset` is
  // the original one; another event or data used the key).
  bool replayed = false;
  bool conflict = false;
  std::string idempotency_key = {};  // conflict: the key, given back for the error message
  // When !ok: the storage cannot take it now (down, or its queue is full);
  // nothing was stored, a retry may succeed (clients see `unavailable`).
  bool unavailable = false;
};

struct HistoryQuery {
  size_t limit = 100;
  std::optional<uint64_t> before;                     // only offsets < before
  std::optional<uint64_t> after;                      // only offsets > after; with `after`, the
                                                      // oldest `limit` such events, else the newest
  std::optional<Retention> retention = std::nullopt;  // as NewEvent::retention
};

struct HistoryResult {
  bool ok = false;
  std::string error;
  std::string epoch;
  uint64_t last_offset = 0;         // last offset ever given in this epoch (0: none)
  uint64_t first_offset = 0;        // oldest offset still held (0: none held)
  std::vector<StoredEvent> events;  // oldest first
  // When the channel's current epoch began: the ts_ms of the event that got
  // offset 1 in it, kept when retention drops that event; 0 while the epoch
  // has no event (never published, or removed since).
  int64_t created_ms = 0;
  bool unavailable = false;  // when !ok: as AppendResult::unavailable
};

struct RemoveResult {
  bool ok = false;
  std::string error;         // when !ok
  std::string epoch;         // the channel's new epoch
  bool unavailable = false;  // when !ok: as AppendResult::unavailable
};

// One presence member of a channel as a shared engine keeps it (one per
// subscribed connection, on whichever node it is connected).
struct PresenceMember {
  std::string client;  // the connection's id (random per process: unique across nodes)
  std::string user;    // "" for anonymous connections
  std::string info;    // raw JSON of the token's info, "" for none
};

struct PresenceReadResult {
  bool ok = false;
  std::string error;                    // when !ok
  bool unavailable = false;             // when !ok: as AppendResult::unavailable
  std::vector<PresenceMember> members;  // every node's, in no particular order
};

// What another Herald node sharing the engine's channels (redis) did, handed
// to the channel's owner through ShardStore::on_remote: see "Several nodes"
// on ShardStore.
struct RemoteMessage {
  enum class Kind {
    event,      // a stored event published on another node: deliver it like an append's
    ephemeral,  // an event another node delivered without storing (offset 0)
    reset,      // subscribers must be ended with `reason` (see below)
    join,       // a member joined the channel on another node (namespaces with join_leave)
    leave,      // a member left it there
  };
  Kind kind = Kind::event;
  std::string channel;
  std::string epoch;  // event: the channel's epoch it was stored in
  StoredEvent event;  // event and ephemeral
  // reset: "destroyed" or "expired" (another node removed the channel; its
  // final event, if any, came just before as an ephemeral), or "resubscribe"
  // (this node cannot prove its subscribers missed nothing: a gap the stream
  // no longer holds, or events of another epoch; they must subscribe again
  // with recovery).
  std::string reason;
  // join and leave: who, and whether it was the user's first (join) or last
  // (leave) connection to the channel *on that node* (user edges are per node).
  PresenceMember member = {};
  bool user_edge = false;
};

// The ordering contract the core relies on (so that history-subscribe and
// recovery have no gap and no duplicate against live delivery): for one
// channel, a read's callback sees exactly the appends whose callbacks already
// ran on this executor, no more and no fewer. Its result's last_offset (and
// newest event) is that of the last successful append whose `done` ran before
// the read's `done`; every append whose `done` runs after it has a larger
// offset. So an engine that answers a read asynchronously must queue it
// behind the appends still pending for that channel, answer it from the state
// after them, and run its callback after theirs; an engine that answers
// synchronously must answer from the appends already completed only.
// A remove counts as an append here: a read sees it exactly when remove's
// callback already ran.
class ShardStore {
 public:
  virtual ~ShardStore() = default;
  using AppendHandler = std::function<void(AppendResult)>;
  using HistoryHandler = std::function<void(HistoryResult)>;
  using RemoveHandler = std::function<void(RemoveResult)>;

  // Stores `ev` as the channel's next event. `done` runs once the event is
  // stored (durably, for engines that persist).
  virtual void append(const std::string& channel, NewEvent ev, AppendHandler done) = 0;

  // Reads events of a channel (see HistoryQuery), plus its epoch and offsets.
  virtual void read(const std::string& channel, const HistoryQuery& query, HistoryHandler done) = 0;

  // Deletes every event of `channel` and starts a new epoch for it: a fresh
  // random epoch (random_epoch()), offsets start again at 1 with the next
  // append, created_ms is 0 until then. Ordered with the channel's appends and
  // reads exactly like an append (see the ordering contract): a read whose
  // callback runs before remove's callback sees the old state, one whose
  // callback runs after sees the new epoch with last_offset 0 and no events;
  // appends made before remove() complete (and their callbacks run) before
  // remove's callback; appends made after get offsets 1, 2, ... of the new epoch.
  virtual void remove(const std::string& channel, RemoveHandler done) = 0;

  // Several nodes. Engines whose channels other Herald processes share (redis)
  // deliver what those nodes publish to this node's subscribers through the
  // channel's owner; the others keep the no-op defaults. The owner calls
  // watch(channel, true) when the channel gets its first local subscriber
  // (before that subscribe's read) and watch(channel, false) after its last
  // one left. For a watched channel the store hands remote messages to the
  // handler given to on_remote() (once, before any watch), on this executor,
  // and extends the ordering contract above to them: it hands over each
  // stored event of the channel exactly once, through either an append's
  // callback (this node's publishes) or the handler (the others'), in offset
  // order, holding an append's callback until the offsets before it were
  // handed over; and a read's callback sees exactly the events handed over
  // before it runs. An event it can no longer hand over in order (gone from
  // the stream) becomes a reset ("resubscribe").
  using RemoteHandler = std::function<void(RemoteMessage)>;
  virtual bool shared() const { return false; }
  virtual void watch(const std::string& /*channel*/, bool /*on*/) {}
  virtual void on_remote(RemoteHandler /*handler*/) {}
  // Sends an ephemeral event, a reset ("destroyed", "expired"), a join or a
  // leave of a channel to the other nodes' owners of it (not to this node's handler); in call
  // order with this store's appends and removes of the channel. Best effort:
  // a node cut from the engine at that moment misses it.
  virtual void broadcast(const RemoteMessage& /*message*/) {}

  // Presence across nodes: a shared store keeps this node's members of a channel in the engine and
  // reads every node's. The owner adds a member once admitted and removes it when it leaves
  // (presence_add/presence_remove: best effort, no answer; the store
  // refreshes its own members so that those of a node that stopped
  // disappear after a while), forgets them without removing when the
  // channel was destroyed (the engine's remove() dropped every node's, and
  // another node's destroy arrives as a reset), and reads the merged list
  // (presence_read: `done` on this executor, in call order with the other
  // calls' callbacks). The defaults keep nothing and read nothing (ok with no
  // member): one node's presence is the core's own.
  using PresenceHandler = std::function<void(PresenceReadResult)>;
  virtual void presence_add(const std::string& /*channel*/, const PresenceMember& /*member*/) {}
  virtual void presence_remove(const std::string& /*channel*/, const std::string& /*client*/) {}
  virtual void presence_forget(const std::string& /*channel*/) {}
  virtual void presence_read(const std::string& /*channel*/, PresenceHandler done) {
    PresenceReadResult r;
    r.ok = true;
    done(std::move(r));
  }
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string_view name() const = 0;
  // The store used by worker `shard`; callbacks are dispatched to `executor`.
  virtual std::unique_ptr<ShardStore> open_shard(unsigned shard,
                                                 boost::asio::any_io_executor executor) = 0;
  // Stops the engine's own threads from posting to the shards' executors
  // (sqlite's storage thread, redis' pub/sub thread). Called once the workers
  // stopped running and before their io_contexts are destroyed.
  virtual void stop() {}
};

struct MemoryLimits {
  size_t max_events_per_channel = 1000;
  int64_t max_age_ms = 0;  // 0: no age limit
};

// History in RAM, bounded by count and age; a new random epoch per process
// (and a channel's own new one when it is removed). Each shard keeps its own
// channels, so no locks are taken.
std::unique_ptr<Engine> make_memory_engine(const MemoryLimits& limits);

}  // namespace herald::engine
