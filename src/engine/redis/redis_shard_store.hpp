// RedisShardStore: the redis engine's ShardStore (one per worker), declared
// here for its two halves: redis_shard_store.cpp (the ops FIFO: calls,
// replies, retries, callbacks in call order) and redis_shard_sequencing.cpp
// (several nodes: watches, pub/sub messages, the channel sequencers' fills
// and checks). redis_engine.cpp makes the engine that opens them.
//
// Every append, read and remove of one worker is one Lua script call
// (publish.lua, read.lua, remove.lua: atomic in Redis, whichever node runs
// them) on the worker's own RedisConnection; the engine's one pub/sub
// connection (FanoutHub) brings the channels this node watches the events
// other nodes store.
//
// Ordering (engine.hpp's contract). All of a shard's calls go through its one
// pipelined connection in call order; Redis runs a connection's commands in
// the order they arrive and answers them in that order. So a read issued
// after appends of the same channel runs after them in Redis and answers from
// the state after them, and a remove likewise. Callbacks run in call order
// too: results are kept in one FIFO of operations (`ops_`), and only its
// head is ever handed to its callback, so an answer that must be retried
// (below), or an op its channel's sequencer holds, holds back the callbacks
// of everything called after it.
//
// Several nodes (engine.hpp "Several nodes", LAYOUT.md "Cross-node fan-out").
// Appends always publish an H2 (with this engine's random origin) on the
// channel's <prefix>:{<tag>}:events; broadcast() is a PUBLISH op in the same
// FIFO. For each watched channel a ChannelSequencer (channel_sequencer.hpp,
// pure logic) decides what is handed over when: the store tells it about
// every reply of the channel as it arrives (an own append is registered
// then, so that a later fill never takes it for another node's), asks it
// before running the head op's callback (held: it stays at the head), tells
// it after, feeds it pub/sub messages, and sends the fills (MULTI, HGET
// epoch, XRANGE, EXEC) and checks (HMGET epoch last, once the subscription
// is confirmed) it asks for on the command connection, where their replies
// come after those of the appends sent before them. A held op always has a
// fill in flight, so it blocks the FIFO for one round trip at most; a fill
// that gets no answer fails the op it held with `unavailable`. A check (or
// an own append) that finds the channel below what was already handed over
// under its epoch means Redis lost writes: the channel gets a new epoch
// (renew_epoch), so clients reload instead of skipping reused offsets.
//
// The pub/sub connection runs on a thread of the engine's own (FanoutHub,
// fanout_hub.hpp), not on a shard's executor: its life is then the engine's, independent of
// the order in which the core stops workers and destroys stores, and no
// worker pays for decoding and routing the others' messages. Stores and the
// hub share a small map (pub/sub channel -> owner store, under a mutex)
// that stores change from their threads and the hub reads for each message;
// everything else crosses threads by posts (subscribe/unsubscribe to the
// hub, messages and confirmations to the store's executor, where a weak
// token tells whether the store still lives).
//
// Retries, and why they cannot overtake. Two replies mean "nothing ran, send
// it again": NOSCRIPT (Redis lost its script cache: restart, failover,
// SCRIPT FLUSH) and remove.lua's `same_epoch` (the random candidate equalled
// the current epoch). The commands sent after it are already on their way
// and may run before the retry could, so on such a reply the store stops
// sending (new calls wait in `ops_`) until every command in flight has
// answered. Then, for each operation to retry: if a later operation of the
// same channel ran meanwhile (answered anything else than a retry, e.g.
// because another node loaded the script in between, or a broadcast of the
// channel went out), retrying would reorder the channel, so it fails
// instead (it did not run: nothing is stored); otherwise it is sent again,
// NOSCRIPT ones with EVAL and the full text (which also loads the script),
// followed by the calls that waited, in order. Almost always every later
// command got NOSCRIPT too, and all are retried in order.
//
// Failures. A connection that is down, breaks, or is full fails the call with
// an error starting "redis unavailable" (a publish whose connection broke
// after sending may have been stored: it is still reported as failed, never
// as a success that no script reply confirmed; watching nodes, this one
// included, then get it as another node's event, through the fill of the gap the next
// event or check shows). Script
// errors are reported as "redis: <error>".
//
// Redis Cluster (options.cluster; cluster_router.hpp). The one connection
// becomes a ClusterRouter: each op, fill and check goes to the master of its
// channel's slot (every key of a channel shares its hash tag), so a
// channel's commands still share one connection and the reasoning above
// holds per channel; callbacks still run in call order across masters (the
// FIFO's head waits for its reply whichever master answers). MOVED, ASK,
// TRYAGAIN and CLUSTERDOWN on an op take the NOSCRIPT path above: nothing
// is sent until everything in flight answered, then the retries go again
// in call order (MOVED: to the new master, the map updated; ASK: once, after
// ASKING, to the importing node; TRYAGAIN/CLUSTERDOWN, and redirections
// after the first few: after a pause), so an op of a channel never reaches
// the new master before the channel's earlier ops; and a channel's first
// retry is resent alone, its later ops in the next round, since sent
// together a later one could run where the first is refused again (the
// slot switched between them), and the first would then have to fail as
// not stored, as above. A fill refused because its
// slot is moving (EXECABORT after MOVED/ASK/TRYAGAIN) is sent again after a
// pause (must_refill); a redirected check is dropped (the resubscription
// that follows a slot's move checks again); both update the map.
//
// Destroying a store drops the callbacks of calls not yet answered (the
// core destroys stores only when it stops), and its watches.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/engine.hpp"
#include "engine/redis/channel_sequencer.hpp"
#include "engine/redis/cluster_router.hpp"
#include "engine/redis/cluster_slots.hpp"
#include "engine/redis/fanout_hub.hpp"
#include "engine/redis/redis_connection.hpp"
#include "engine/redis/redis_engine.hpp"
#include "engine/redis/redis_presence.hpp"
#include "engine/redis/redis_scripts.hpp"

namespace herald::engine::redis {

// Arguments of a script call: EVALSHA <sha> 4 <meta> <stream> <keys> <keyq>,
// then the script's ARGV.
inline constexpr size_t kFirstArg = 7;

// Redis Cluster: an op redirected (MOVED, ASK) or told TRYAGAIN /
// CLUSTERDOWN is sent again, so many times at most, then fails. TRYAGAIN
// and CLUSTERDOWN resend after a pause, and so do redirections after the
// first kFreeRedirects of an op (nodes that disagree must not make it spin).
// While a slot migrates, a script whose optional keys (keys, keyq) do not
// exist gets TRYAGAIN until the migration ends (Redis refuses a command over
// several keys of a migrating slot when some are missing), and an ASK on
// every other try: about 5 s of it are allowed.
inline constexpr unsigned kFreeRedirects = 3;
inline constexpr unsigned kMaxClusterTries = 50;
inline constexpr std::chrono::milliseconds kClusterRetryPause{100};

// Every (re)connection of a store loads the scripts before its first call
// (SCRIPT LOAD in the handshake), so EVALSHA after a Redis restart finds them
// instead of answering NOSCRIPT; the NOSCRIPT path below remains for a
// SCRIPT FLUSH or a failover while connected. Without it, nodes that start
// on a fresh Redis, or come back after its restart, race on NOSCRIPT and a
// retried call may have to fail (see the opening comment).
ConnectionOptions loading_scripts(ConnectionOptions options);

class RedisShardStore final : public ShardStore, public FanoutListener {
 public:
  RedisShardStore(const RedisEngineOptions& options, std::string key_seed, std::string origin,
                  std::shared_ptr<FanoutHub> hub, boost::asio::any_io_executor executor,
                  const SlotMap* slots);

  ~RedisShardStore() override;

  bool shared() const override { return true; }

  void on_remote(RemoteHandler handler) override { remote_ = std::move(handler); }

  void watch(const std::string& channel, bool on) override;

  void broadcast(const RemoteMessage& message) override;

  void presence_add(const std::string& channel, const PresenceMember& member) override;
  void presence_remove(const std::string& channel, const std::string& client) override;
  void presence_forget(const std::string& channel) override { presence_.forget(channel); }
  void presence_read(const std::string& channel, PresenceHandler done) override;

  void append(const std::string& channel, NewEvent ev, AppendHandler done) override;

  void read(const std::string& channel, const HistoryQuery& query, HistoryHandler done) override;

  void remove(const std::string& channel, RemoveHandler done) override;

  // From the hub, on this executor: a message on a watched channel's
  // pub/sub channel, and the confirmation that it is subscribed.
  void pubsub_message(const std::string& channel, const std::string& payload) override;

  void pubsub_subscribed(const std::string& channel) override;

 private:
  enum class State { waiting, sent, retry, done };
  // broadcast and write: best effort, nobody waits for them (a PUBLISH, or
  // a presence HSET/HDEL/PEXPIRE).
  enum class Kind { append, read, remove, broadcast, write, presence_read };

  struct Op {
    std::string channel;
    Kind kind = Kind::broadcast;
    Script script = Script::publish;  // append, read, remove
    std::vector<std::string> args;
    State state = State::waiting;
    std::optional<Result> raw;  // a retried script's reply, until resent
    // Redis Cluster: the channel's slot, where an ASK sends it next (once),
    // and how often it was redirected or told to try again.
    uint16_t slot = 0;
    std::optional<ClusterNode> ask;
    unsigned tries = 0;
    bool backoff = false;  // TRYAGAIN / CLUSTERDOWN: resent after a pause
    // When done, one of these (by kind):
    AppendResult append;
    HistoryResult history;
    RemoveResult removal;
    PresenceReadResult presence;
    AppendHandler append_done;
    HistoryHandler read_done;
    RemoveHandler remove_done;
    PresenceHandler presence_done;
    std::string key;          // append: the idempotency key, for a conflict's message
    uint64_t watch_id = 0;    // read: counted by that watch's sequencer; append: registered in it
    uint64_t own_offset = 0;  // append registered: its offset and epoch
    std::string own_epoch;
    bool held = false;  // at the head, its callback waits for the sequencer
  };

  struct Watched {
    Watched(uint64_t id, const std::string& channel, size_t max_held)
        : id(id), seq(channel, max_held) {}
    uint64_t id;
    ChannelSequencer seq;
  };

  std::string pubsub_channel(const std::string& channel) const {
    return channel_key(options_.prefix, channel, "events");
  }

  Watched* watched(const std::string& channel, uint64_t id = 0) {
    auto it = watched_.find(channel);
    if (it == watched_.end() || (id != 0 && it->second.id != id)) return nullptr;
    return &it->second;
  }

  std::vector<std::string> call(Script script, const std::string& channel) const {
    std::vector<std::string> args;
    args.reserve(kFirstArg + 8);
    args.emplace_back("EVALSHA");
    args.emplace_back(redis_script_sha1(script));
    args.emplace_back("4");
    for (const char* what : {"meta", "stream", "keys", "keyq"})
      args.push_back(channel_key(options_.prefix, channel, what));
    return args;
  }

  // The connection a channel's commands go to: the one, or its slot's
  // master's (cluster).
  RedisConnection& conn_for(uint16_t slot) { return router_ ? router_->for_slot(slot) : *conn_; }
  uint16_t slot_of(const std::string& channel) const {
    return router_ ? key_slot(channel_key(options_.prefix, channel, "meta")) : 0;
  }

  // A command outside the ops FIFO (a check, a fill): to its channel's
  // master; a redirection it gets updates the map (its caller treats the
  // error like any other: a check is dropped, a fill fails).
  void side_command(const std::string& channel, std::vector<std::string> args, Callback done);
  void note_redirect(const Result& r);

  void submit(Op op);

  // Sends ops_[index]: the operation numbered id.
  void send(size_t index);

  void answered(uint64_t id, Result&& result);

  // The op's reply (or failure) as its caller's result. A stored append of
  // a watched channel is registered with its sequencer now, in reply order,
  // so that a fill sent after it never mistakes it for another node's.
  void complete(Op& op, Result&& result);

  // True (with op's arguments changed for the retry) when `reply` says that
  // the script did not run and may be sent again.
  static bool must_retry(Op& op, const Reply& reply);

  // Redis Cluster: "" when `result` says the command did not run and must go
  // elsewhere (MOVED: the map is updated; ASK: op.ask is set) or again
  // later (TRYAGAIN, CLUSTERDOWN: op.backoff is set); why it must fail
  // instead when it was redirected or refused too often; nullopt otherwise.
  std::optional<std::string> must_redirect(Op& op, const Result& result);

  // Nothing is in flight: retries go out again in call order, unless a later
  // operation of their channel already ran (see the opening comment), then
  // the calls that waited. Cluster retries told to wait (TRYAGAIN,
  // CLUSTERDOWN) make everything wait for kClusterRetryPause first.
  void resend();

  // Hands finished operations to their callbacks, oldest first, stopping at
  // the first one still waiting for its reply or held by its channel's
  // sequencer.
  void deliver();

  // Whether the head op's callback may run now (its channel's sequencer may
  // first hand over what comes before it).
  bool release(Op& op);

  // Runs the head op's callback, then tells its channel's sequencer.
  void finish(Op& op);

  // Does what a sequencer asked: sends its fill, then hands its messages
  // over (the handler may call this store, or destroy it).
  void act(const std::string& channel, uint64_t watch_id, ChannelSequencer::Out& out);

  // Redis lost acknowledged writes of the channel (see ChannelSequencer::
  // Out::rolled_back): a new epoch, unless another node gave one already,
  // so that clients recovering with the old one refetch instead of missing
  // the events that now reuse its offsets. Offsets go on from Redis' `last`;
  // history keeps what survived. In the FIFO, so this node's later calls of
  // the channel (the resubscribes' reads) run after it.
  void renew_epoch(const std::string& channel, const std::string& epoch);

  void hand_over(RemoteMessage&& m) {
    if (remote_) remote_(std::move(m));
  }

  // The channel's epoch and its stream entries in (after, upto], atomically
  // (MULTI), on the command connection: its reply comes after those of the
  // appends sent before it, which are then registered.
  void send_fill(const std::string& channel, uint64_t watch_id, ChannelSequencer::Fill fill,
                 unsigned tries = 0);

  // Redis Cluster: a fill whose slot is moving was refused (its commands got
  // MOVED, ASK or TRYAGAIN, so EXEC answers EXECABORT) and nothing of it
  // ran: it is sent again after a pause (to the new master after a MOVED),
  // rather than failing the op it holds, which may be a stored append.
  bool must_refill(const Result& r, unsigned tries) const;
  void refill_later(const std::string& channel, uint64_t watch_id, ChannelSequencer::Fill fill,
                    unsigned tries);

  void filled(const std::string& channel, uint64_t watch_id, uint64_t fill_id, Result&& r);

  // Everything published before the subscription became active: this
  // command runs after it, so what it finds missing is filled (and a meta
  // below what was handed over shows a rollback). Unanswered (the command
  // connection still reconnecting after Redis came back, or -LOADING while
  // it reads its data), it is sent again after a pause, while the channel
  // stays watched: else events published while pub/sub was down would wait
  // for the channel's next event to be filled.
  void send_check(const std::string& channel, uint64_t watch_id, unsigned attempt);

  void check_later(const std::string& channel, uint64_t watch_id, unsigned attempt);

  // False when `r` is not meta's answer (to be asked again).
  bool checked(const std::string& channel, uint64_t watch_id, const ChannelSequencer::Floor& floor,
               Result&& r);

  const RedisEngineOptions options_;
  const Retention defaults_;
  const uint64_t key_seed_;
  const std::string origin_;
  const std::function<int64_t()> now_ms_;
  std::shared_ptr<FanoutHub> hub_;
  std::deque<Op> ops_;     // called, callback not yet run; in call order
  uint64_t front_id_ = 0;  // number of ops_.front(); ops are numbered in call order
  size_t in_flight_ = 0;   // sent, reply not yet come
  bool holding_ = false;   // a retry waits for the commands in flight
  bool delivering_ = false;
  bool deliver_again_ = false;
  bool closing_ = false;
  RemoteHandler remote_;
  std::unordered_map<std::string, Watched> watched_;
  uint64_t next_watch_id_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with this object
  std::shared_ptr<Mailbox> mailbox_;
  RedisPresence presence_;                 // sends through submit()
  boost::asio::steady_timer retry_timer_;  // cluster: the pause before a TRYAGAIN's resend
  bool retry_armed_ = false;
  // Last: their callbacks use the above. One of them: the connection, or
  // (Redis Cluster) the router and its connection per master.
  std::unique_ptr<RedisConnection> conn_;
  std::unique_ptr<ClusterRouter> router_;
};

}  // namespace herald::engine::redis
