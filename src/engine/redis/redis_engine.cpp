// The redis engine's ShardStore: every append, read and remove of one worker
// is one Lua script call (publish.lua, read.lua, remove.lua: atomic in Redis,
// whichever node runs them) on the worker's own RedisConnection; and the
// engine's one pub/sub connection (FanoutHub) that brings the channels this
// node watches the events other nodes store.
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
// The idempotency key seed (KeyIndex::hash) is the deployment's, stored in
// Redis as <prefix>:key_seed (SET NX, then GET) by make_redis_engine, so every
// node hashes a key the same way.
//
// Destroying a store drops the callbacks of calls not yet answered (the
// core destroys stores only when it stops), and its watches.
#include "engine/redis/redis_engine.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/clock_and_epoch.hpp"
#include "engine/key_index.hpp"
#include "engine/redis/channel_sequencer.hpp"
#include "engine/redis/cluster_router.hpp"
#include "engine/redis/cluster_slots.hpp"
#include "engine/redis/fanout_hub.hpp"
#include "engine/redis/fanout_payload.hpp"
#include "engine/redis/redis_presence.hpp"
#include "engine/redis/redis_replies.hpp"
#include "engine/redis/redis_scripts.hpp"
#include "engine/redis/redis_subscriber.hpp"

namespace herald::engine::redis {
namespace {

// Arguments of a script call: EVALSHA <sha> 4 <meta> <stream> <keys> <keyq>,
// then the script's ARGV.
constexpr size_t kFirstArg = 7;

// Redis Cluster: an op redirected (MOVED, ASK) or told TRYAGAIN /
// CLUSTERDOWN is sent again, so many times at most, then fails. TRYAGAIN
// and CLUSTERDOWN resend after a pause, and so do redirections after the
// first kFreeRedirects of an op (nodes that disagree must not make it spin).
// While a slot migrates, a script whose optional keys (keys, keyq) do not
// exist gets TRYAGAIN until the migration ends (Redis refuses a command over
// several keys of a migrating slot when some are missing), and an ASK on
// every other try: about 5 s of it are allowed.
constexpr unsigned kFreeRedirects = 3;
constexpr unsigned kMaxClusterTries = 50;
constexpr std::chrono::milliseconds kClusterRetryPause{100};

// Every (re)connection of a store loads the scripts before its first call
// (SCRIPT LOAD in the handshake), so EVALSHA after a Redis restart finds them
// instead of answering NOSCRIPT; the NOSCRIPT path below remains for a
// SCRIPT FLUSH or a failover while connected. Without it, nodes that start
// on a fresh Redis, or come back after its restart, race on NOSCRIPT and a
// retried call may have to fail (see the opening comment).
ConnectionOptions loading_scripts(ConnectionOptions options) {
  for (Script s : {Script::publish, Script::read, Script::remove})
    options.on_connect.push_back({"SCRIPT", "LOAD", std::string(redis_script(s))});
  return options;
}

class RedisShardStore final : public ShardStore, public FanoutListener {
 public:
  RedisShardStore(const RedisEngineOptions& options, std::string key_seed, std::string origin,
                  std::shared_ptr<FanoutHub> hub, boost::asio::any_io_executor executor,
                  const SlotMap* slots)
      : options_(options),
        defaults_{options.max_events_per_channel, options.max_age_ms},
        key_seed_(std::stoull(key_seed)),
        origin_(std::move(origin)),
        now_ms_(options.now_ms ? options.now_ms : system_now_ms),
        hub_(std::move(hub)),
        mailbox_(std::make_shared<Mailbox>(Mailbox{executor, alive_, this})),
        presence_(options.prefix, options.presence_ttl_ms, now_ms_, executor,
                  [this](const std::string& channel, std::vector<std::string> command) {
                    Op op;
                    op.channel = channel;
                    op.kind = Kind::write;
                    op.args = std::move(command);
                    submit(std::move(op));
                  }),
        retry_timer_(executor) {
    if (slots) {
      router_ = std::make_unique<ClusterRouter>(executor, options.url,
                                                loading_scripts(options.connection), *slots);
    } else {
      conn_ = std::make_unique<RedisConnection>(executor, options.url,
                                                loading_scripts(options.connection));
    }
  }

  ~RedisShardStore() override {
    closing_ = true;
    alive_.reset();  // what the hub posted for this store finds it gone
    for (const auto& [channel, w] : watched_) hub_->unwatch(pubsub_channel(channel), mailbox_);
    retry_timer_.cancel();
    conn_.reset();  // runs the pending callbacks, which now return at once
    router_.reset();
  }

  bool shared() const override { return true; }

  void on_remote(RemoteHandler handler) override { remote_ = std::move(handler); }

  void watch(const std::string& channel, bool on) override {
    if (on) {
      if (watched_.contains(channel)) return;
      watched_.try_emplace(channel, ++next_watch_id_, channel, options_.max_held_per_channel);
      hub_->watch(pubsub_channel(channel), channel, mailbox_);
    } else {
      if (watched_.erase(channel) == 0) return;
      hub_->unwatch(pubsub_channel(channel), mailbox_);
      deliver();  // an op of it held at the head goes now
    }
  }

  void broadcast(const RemoteMessage& message) override {
    auto payload = encode_fanout(origin_, message);
    if (!payload) return;
    Op op;
    op.channel = message.channel;
    op.kind = Kind::broadcast;
    op.args = {options_.sharded ? "SPUBLISH" : "PUBLISH", pubsub_channel(message.channel),
               std::move(*payload)};
    submit(std::move(op));
  }

  void presence_add(const std::string& channel, const PresenceMember& member) override {
    presence_.add(channel, member);
  }
  void presence_remove(const std::string& channel, const std::string& client) override {
    presence_.remove(channel, client);
  }
  void presence_forget(const std::string& channel) override { presence_.forget(channel); }
  void presence_read(const std::string& channel, PresenceHandler done) override {
    Op op;
    op.channel = channel;
    op.kind = Kind::presence_read;
    op.args = presence_.read_command(channel);
    op.presence_done = std::move(done);
    submit(std::move(op));
  }

  void append(const std::string& channel, NewEvent ev, AppendHandler done) override {
    const Retention keep = ev.retention.value_or(defaults_);
    const bool keyed = !ev.idempotency_key.empty();
    Op op;
    op.channel = channel;
    op.kind = Kind::append;
    op.script = Script::publish;
    op.args = call(Script::publish, channel);
    auto& args = op.args;
    args.reserve(kFirstArg + 17);
    args.push_back(random_epoch());
    args.push_back(decimal(ev.ts_ms));
    args.push_back(std::move(ev.event));
    args.push_back(std::move(ev.data));
    args.push_back(std::move(ev.from_client));
    args.push_back(std::move(ev.from_user));
    args.push_back(std::move(ev.from_info));
    args.push_back(decimal(uint64_t{keep.max_events}));
    args.push_back(decimal(keep.max_age_ms));
    args.push_back(keyed ? decimal(KeyIndex::hash(ev.idempotency_key, key_seed_)) : "");
    args.push_back(decimal(ev.fingerprint));
    args.push_back(decimal(ev.idempotency_window_ms));
    args.push_back(decimal(uint64_t{ev.idempotency_max_keys}));
    args.push_back(pubsub_channel(channel));  // always: other nodes may watch it
    args.push_back(options_.sharded ? "SPUBLISH" : "PUBLISH");
    args.push_back(decimal(options_.idle_ttl_ms));
    args.push_back(origin_);
    op.key = std::move(ev.idempotency_key);
    op.append_done = std::move(done);
    submit(std::move(op));
  }

  void read(const std::string& channel, const HistoryQuery& query, HistoryHandler done) override {
    const Retention keep = query.retention.value_or(defaults_);
    Op op;
    op.channel = channel;
    op.kind = Kind::read;
    op.script = Script::read;
    op.args = call(Script::read, channel);
    auto& args = op.args;
    args.push_back(random_epoch());
    args.push_back(decimal(now_ms_()));
    args.push_back(decimal(uint64_t{query.limit}));
    args.push_back(query.before ? decimal(*query.before) : "");
    args.push_back(query.after ? decimal(*query.after) : "");
    args.push_back(decimal(uint64_t{keep.max_events}));
    args.push_back(decimal(keep.max_age_ms));
    args.push_back(decimal(options_.idle_ttl_ms));
    op.read_done = std::move(done);
    if (auto it = watched_.find(channel); it != watched_.end()) {
      it->second.seq.read_sent();
      op.watch_id = it->second.id;
    }
    submit(std::move(op));
  }

  void remove(const std::string& channel, RemoveHandler done) override {
    Op op;
    op.channel = channel;
    op.kind = Kind::remove;
    op.script = Script::remove;
    op.args = call(Script::remove, channel);
    // KEYS[5]: the presence hash goes with the channel (LAYOUT.md).
    op.args[2] = "5";
    op.args.push_back(channel_key(options_.prefix, channel, "presence"));
    op.args.push_back(random_epoch());
    op.args.push_back(decimal(options_.idle_ttl_ms));
    op.remove_done = std::move(done);
    submit(std::move(op));
  }

  // From the hub, on this executor: a message on a watched channel's
  // pub/sub channel, and the confirmation that it is subscribed.
  void pubsub_message(const std::string& channel, const std::string& payload) override {
    auto it = watched_.find(channel);
    if (it == watched_.end()) return;  // unwatched since
    auto m = decode_fanout(payload);
    if (!m || m->origin == origin_) return;  // own echo: its reply hands it over
    m->message.channel = channel;
    // Neither stored nor ordered with the stream: handed over as they come.
    if (m->message.kind == RemoteMessage::Kind::ephemeral ||
        m->message.kind == RemoteMessage::Kind::join ||
        m->message.kind == RemoteMessage::Kind::leave) {
      hand_over(std::move(m->message));
      return;
    }
    ChannelSequencer::Out out;
    if (m->message.kind == RemoteMessage::Kind::reset)
      it->second.seq.remote_reset(m->message.reason, out);
    else
      it->second.seq.remote_event(m->message.epoch, std::move(m->message.event), out);
    std::weak_ptr<int> alive = alive_;
    act(channel, it->second.id, out);
    if (!alive.expired()) deliver();  // an op it held may go now
  }

  void pubsub_subscribed(const std::string& channel) override {
    auto it = watched_.find(channel);
    if (it == watched_.end()) return;
    send_check(channel, it->second.id, 0);
  }

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
  void side_command(const std::string& channel, std::vector<std::string> args, Callback done) {
    conn_for(slot_of(channel)).command(args, [this, done = std::move(done)](Result&& r) mutable {
      if (closing_) return;
      note_redirect(r);
      done(std::move(r));
    });
  }
  void note_redirect(const Result& r) {
    if (!router_) return;
    if (const Reply* reply = std::get_if<Reply>(&r); reply && reply->is_error()) {
      if (auto redirect = parse_redirect(reply->str); redirect && !redirect->ask)
        router_->moved(*redirect);
    } else if (std::holds_alternative<Failure>(r)) {
      router_->refresh();  // a master gone: maybe failed over
    }
  }

  void submit(Op op) {
    op.slot = slot_of(op.channel);
    ops_.push_back(std::move(op));
    if (!holding_) send(ops_.size() - 1);
  }

  // Sends ops_[index]: the operation numbered id.
  void send(size_t index) {
    Op& op = ops_[index];
    const uint64_t id = front_id_ + index;
    op.state = State::sent;
    ++in_flight_;
    if (op.ask) {  // ASK: this command only, on the importing node, after ASKING
      RedisConnection& conn = router_->for_node(*op.ask);
      op.ask.reset();
      conn.command({"ASKING"}, [](Result&&) {});
      conn.command(op.args, [this, id](Result&& r) { answered(id, std::move(r)); });
      return;
    }
    conn_for(op.slot).command(op.args, [this, id](Result&& r) { answered(id, std::move(r)); });
  }

  void answered(uint64_t id, Result&& result) {
    if (closing_) return;
    --in_flight_;
    Op& op = ops_[id - front_id_];
    if (const Reply* r = std::get_if<Reply>(&result);
        r && (op.kind == Kind::append || op.kind == Kind::read || op.kind == Kind::remove) &&
        must_retry(op, *r)) {
      op.state = State::retry;
      holding_ = true;
    } else if (auto why = router_ ? must_redirect(op, result) : std::nullopt; why && why->empty()) {
      op.state = State::retry;
      holding_ = true;
    } else if (why) {
      complete(op, Failure{"redis unavailable: " + *why});
    } else {
      note_redirect(result);
      complete(op, std::move(result));
    }
    if (holding_ && in_flight_ == 0 && !retry_armed_) resend();
    deliver();
  }

  // The op's reply (or failure) as its caller's result. A stored append of
  // a watched channel is registered with its sequencer now, in reply order,
  // so that a fill sent after it never mistakes it for another node's.
  void complete(Op& op, Result&& result) {
    op.state = State::done;
    switch (op.kind) {
      case Kind::append:
        op.append = to_append_result(std::move(result), op.key);
        if (op.append.ok && !op.append.replayed) {
          if (Watched* w = watched(op.channel)) {
            w->seq.own_stored(op.append.offset, op.append.epoch);
            op.watch_id = w->id;
            op.own_offset = op.append.offset;
            op.own_epoch = op.append.epoch;
          }
        }
        break;
      case Kind::read:
        op.history = to_history_result(std::move(result));
        break;
      case Kind::remove:
        op.removal = to_remove_result(std::move(result));
        break;
      case Kind::presence_read:
        op.presence = presence_.to_result(op.channel, std::move(result));
        break;
      case Kind::broadcast:
      case Kind::write:
        break;  // best effort: nobody waits for it
    }
  }

  // True (with op's arguments changed for the retry) when `reply` says that
  // the script did not run and may be sent again.
  static bool must_retry(Op& op, const Reply& reply) {
    if (reply.is_error() && reply.str.starts_with("NOSCRIPT")) {
      op.args[0] = "EVAL";
      op.args[1] = std::string(redis_script(op.script));
      return true;
    }
    const Reply* status = element(reply, 0, Reply::Kind::string);
    if (op.script == Script::remove && status && status->str == "same_epoch") {
      op.args[op.args.size() - 2] = random_epoch();  // ARGV 1 of 2 (5 keys: not kFirstArg)
      return true;
    }
    return false;
  }

  // Redis Cluster: "" when `result` says the command did not run and must go
  // elsewhere (MOVED: the map is updated; ASK: op.ask is set) or again
  // later (TRYAGAIN, CLUSTERDOWN: op.backoff is set); why it must fail
  // instead when it was redirected or refused too often; nullopt otherwise.
  std::optional<std::string> must_redirect(Op& op, const Result& result) {
    const Reply* r = std::get_if<Reply>(&result);
    if (!r || !r->is_error()) return std::nullopt;
    auto redirect = parse_redirect(r->str);
    if (!redirect && !is_cluster_retry(r->str)) return std::nullopt;
    if (++op.tries > kMaxClusterTries) return "the cluster kept answering " + r->str;
    if (redirect) {
      if (redirect->ask)
        op.ask = redirect->node;
      else
        router_->moved(*redirect);
      op.backoff = op.tries > kFreeRedirects;
    } else {
      op.backoff = true;
      router_->refresh();
    }
    return "";
  }

  // Nothing is in flight: retries go out again in call order, unless a later
  // operation of their channel already ran (see the opening comment), then
  // the calls that waited. Cluster retries told to wait (TRYAGAIN,
  // CLUSTERDOWN) make everything wait for kClusterRetryPause first.
  void resend() {
    bool pause = false;
    for (Op& op : ops_) {
      if (op.state == State::retry && op.backoff) {
        op.backoff = false;
        pause = true;
      }
    }
    if (pause) {
      retry_armed_ = true;
      retry_timer_.expires_after(kClusterRetryPause);
      retry_timer_.async_wait(
          [this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
            if (ec || alive.expired() || closing_) return;
            retry_armed_ = false;
            resend();
            deliver();
          });
      return;
    }
    holding_ = false;
    std::unordered_set<std::string_view> ran;  // channels with a later op that ran
    for (size_t i = ops_.size(); i-- > 0;) {
      Op& op = ops_[i];
      if (op.state == State::retry && ran.contains(op.channel)) {
        complete(op, Failure{"redis unavailable: the script had to be sent again but a later "
                             "call of the channel ran first; not stored"});
      }
      if (op.state == State::done) ran.insert(op.channel);
    }
    // Redis Cluster: a channel's first retry goes alone, its later calls in
    // the next round, once it answered. Sent together, a later one could run
    // where the first was refused again (the slot switched between them),
    // and the first would then have to fail.
    std::unordered_set<std::string_view> alone;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const State s = ops_[i].state;
      if (s != State::retry && s != State::waiting) continue;
      if (router_ && alone.contains(ops_[i].channel)) {
        holding_ = true;  // resend() again when this round answered
        continue;
      }
      send(i);
      if (router_ && s == State::retry) alone.insert(ops_[i].channel);
    }
  }

  // Hands finished operations to their callbacks, oldest first, stopping at
  // the first one still waiting for its reply or held by its channel's
  // sequencer.
  void deliver() {
    if (delivering_) {  // a callback's own calls never finish synchronously
      deliver_again_ = true;
      return;
    }
    delivering_ = true;
    std::weak_ptr<int> alive = alive_;
    do {
      deliver_again_ = false;
      while (!ops_.empty() && ops_.front().state == State::done) {
        if (!release(ops_.front())) break;
        if (alive.expired()) return;  // a handed-over message's handler destroyed this store
        if (ops_.empty() || ops_.front().state != State::done) break;
        Op op = std::move(ops_.front());
        ops_.pop_front();
        ++front_id_;
        finish(op);
        if (alive.expired()) return;  // the callback destroyed this store
      }
    } while (deliver_again_);
    delivering_ = false;
  }

  // Whether the head op's callback may run now (its channel's sequencer may
  // first hand over what comes before it).
  bool release(Op& op) {
    Watched* w = watched(op.channel);
    if (!w) return true;
    const uint64_t id = w->id;
    ChannelSequencer::Out out;
    bool go = true;
    if (op.kind == Kind::append && op.append.ok && op.watch_id == id) {
      go = w->seq.own_ready(op.append.offset, op.append.epoch, out);
    } else if (op.kind == Kind::read && op.history.ok && op.watch_id == id) {
      // (A read sent before watch() may be older than what went through
      // since: it sets nothing.)
      go = w->seq.read_ready(op.history.epoch, op.history.last_offset, out);
    }
    op.held = !go;
    act(op.channel, id, out);
    return go;
  }

  // Runs the head op's callback, then tells its channel's sequencer.
  void finish(Op& op) {
    std::weak_ptr<int> alive = alive_;
    const std::string channel = op.channel;
    switch (op.kind) {
      case Kind::append: {
        // Registered with the sequencer (watch_id set): it learns the
        // callback ran, even when a failed fill turned the result into a
        // failure (then the state is unknown and only the registration goes).
        const uint64_t watch_id = op.watch_id, offset = op.own_offset;
        const std::string epoch = std::move(op.own_epoch);
        op.append_done(std::move(op.append));
        if (alive.expired()) return;
        if (Watched* w = watched(channel, watch_id); watch_id != 0 && w) {
          ChannelSequencer::Out out;
          w->seq.own_delivered(offset, epoch, out);
          act(channel, watch_id, out);
        }
        break;
      }
      case Kind::read: {
        const uint64_t watch_id = op.watch_id;
        op.read_done(std::move(op.history));
        if (alive.expired()) return;
        if (Watched* w = watched(channel)) {
          ChannelSequencer::Out out;
          w->seq.read_delivered(watch_id == w->id, out);
          act(channel, w->id, out);
        }
        break;
      }
      case Kind::remove: {
        const bool ok = op.removal.ok;
        const std::string epoch = op.removal.epoch;
        op.remove_done(std::move(op.removal));
        if (alive.expired()) return;
        if (Watched* w = watched(channel); ok && w) {
          ChannelSequencer::Out out;
          w->seq.removed(epoch, out);
          act(channel, w->id, out);
        }
        break;
      }
      case Kind::presence_read:
        op.presence_done(std::move(op.presence));
        break;
      case Kind::broadcast:
      case Kind::write:
        break;
    }
  }

  // Does what a sequencer asked: sends its fill, then hands its messages
  // over (the handler may call this store, or destroy it).
  void act(const std::string& channel, uint64_t watch_id, ChannelSequencer::Out& out) {
    if (out.rolled_back) renew_epoch(channel, *out.rolled_back);
    if (out.fill) send_fill(channel, watch_id, *out.fill);
    std::weak_ptr<int> alive = alive_;
    for (RemoteMessage& m : out.handed) {
      hand_over(std::move(m));
      if (alive.expired()) return;
    }
  }

  // Redis lost acknowledged writes of the channel (see ChannelSequencer::
  // Out::rolled_back): a new epoch, unless another node gave one already,
  // so that clients recovering with the old one refetch instead of missing
  // the events that now reuse its offsets. Offsets go on from Redis' `last`;
  // history keeps what survived. In the FIFO, so this node's later calls of
  // the channel (the resubscribes' reads) run after it.
  void renew_epoch(const std::string& channel, const std::string& epoch) {
    spdlog::warn(
        "redis engine: channel '{}' went back to fewer events than were already delivered "
        "under its epoch (Redis restarted from an older snapshot, or failed over to a replica "
        "that lagged): it starts a new epoch",
        channel);
    Op op;
    op.channel = channel;
    op.kind = Kind::write;
    op.args = {"EVAL",
               "if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then "
               "redis.call('HSET', KEYS[1], 'epoch', ARGV[2]) return 1 end return 0",
               "1",
               channel_key(options_.prefix, channel, "meta"),
               epoch,
               random_epoch()};
    submit(std::move(op));
  }

  void hand_over(RemoteMessage&& m) {
    if (remote_) remote_(std::move(m));
  }

  // The channel's epoch and its stream entries in (after, upto], atomically
  // (MULTI), on the command connection: its reply comes after those of the
  // appends sent before it, which are then registered.
  void send_fill(const std::string& channel, uint64_t watch_id, ChannelSequencer::Fill fill,
                 unsigned tries = 0) {
    const auto ignore = [](Result&&) {};
    side_command(channel, {"MULTI"}, ignore);
    side_command(channel, {"HGET", channel_key(options_.prefix, channel, "meta"), "epoch"}, ignore);
    side_command(channel,
                 {"XRANGE", channel_key(options_.prefix, channel, "stream"),
                  "(" + decimal(fill.after), decimal(fill.upto)},
                 ignore);
    side_command(channel, {"EXEC"}, [this, channel, watch_id, fill, tries](Result&& r) {
      if (closing_) return;
      if (must_refill(r, tries)) {
        refill_later(channel, watch_id, fill, tries + 1);
        return;
      }
      filled(channel, watch_id, fill.id, std::move(r));
    });
  }

  // Redis Cluster: a fill whose slot is moving was refused (its commands got
  // MOVED, ASK or TRYAGAIN, so EXEC answers EXECABORT) and nothing of it
  // ran: it is sent again after a pause (to the new master after a MOVED),
  // rather than failing the op it holds, which may be a stored append.
  bool must_refill(const Result& r, unsigned tries) const {
    const Reply* reply = std::get_if<Reply>(&r);
    return router_ && reply && reply->is_error() && reply->str.starts_with("EXECABORT") &&
           tries < kMaxClusterTries;
  }
  void refill_later(const std::string& channel, uint64_t watch_id, ChannelSequencer::Fill fill,
                    unsigned tries) {
    auto timer = std::make_shared<boost::asio::steady_timer>(retry_timer_.get_executor());
    timer->expires_after(kClusterRetryPause);
    timer->async_wait([this, timer, channel, watch_id, fill, tries,
                       alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
      if (ec || alive.expired() || closing_ || !watched(channel, watch_id)) return;
      send_fill(channel, watch_id, fill, tries);
    });
  }

  void filled(const std::string& channel, uint64_t watch_id, uint64_t fill_id, Result&& r) {
    Watched* w = watched(channel, watch_id);
    if (!w) return;
    ChannelSequencer::Out out;
    Reply* reply = std::get_if<Reply>(&r);
    std::optional<std::vector<StoredEvent>> entries;
    std::optional<std::string> epoch;
    if (reply && reply->kind == Reply::Kind::array && reply->elements.size() == 2) {
      const Reply& e = reply->elements[0];
      if (e.kind == Reply::Kind::string) epoch = e.str;
      if (e.kind == Reply::Kind::string || e.is_nil()) entries = to_entries(reply->elements[1]);
    }
    if (entries) {
      w->seq.fill_answered(fill_id, epoch, std::move(*entries), out);
    } else {
      // The op it held gives up: never an ack the node could not order.
      if (w->seq.fill_failed(fill_id, out) && !ops_.empty() && ops_.front().held &&
          ops_.front().channel == channel) {
        Op& op = ops_.front();
        const std::string why =
            unavailable(std::holds_alternative<Failure>(r)
                            ? std::get<Failure>(r).message
                            : "unexpected reply to the gap fill " + to_string(std::get<Reply>(r)));
        if (op.kind == Kind::append) {
          op.append = AppendResult{};
          op.append.error = why;
          op.append.unavailable = true;
        } else if (op.kind == Kind::read) {
          op.history = HistoryResult{};
          op.history.error = why;
          op.history.unavailable = true;
        }
      }
    }
    std::weak_ptr<int> alive = alive_;
    act(channel, watch_id, out);
    if (!alive.expired()) deliver();
  }

  // Everything published before the subscription became active: this
  // command runs after it, so what it finds missing is filled (and a meta
  // below what was handed over shows a rollback). Unanswered (the command
  // connection still reconnecting after Redis came back, or -LOADING while
  // it reads its data), it is sent again after a pause, while the channel
  // stays watched: else events published while pub/sub was down would wait
  // for the channel's next event to be filled.
  void send_check(const std::string& channel, uint64_t watch_id, unsigned attempt) {
    Watched* w = watched(channel, watch_id);
    if (!w) return;
    side_command(channel, {"HMGET", channel_key(options_.prefix, channel, "meta"), "epoch", "last"},
                 [this, channel, watch_id, attempt, floor = w->seq.floor()](Result&& r) {
                   if (!checked(channel, watch_id, floor, std::move(r)))
                     check_later(channel, watch_id, attempt + 1);
                 });
  }

  void check_later(const std::string& channel, uint64_t watch_id, unsigned attempt) {
    const auto pause = std::min(std::chrono::milliseconds(50L << std::min(attempt, 5u)),
                                options_.connection.reconnect_max);
    auto timer = std::make_shared<boost::asio::steady_timer>(mailbox_->executor, pause);
    timer->async_wait([this, timer, alive = std::weak_ptr<int>(alive_), channel, watch_id,
                       attempt](const boost::system::error_code&) {
      if (alive.expired() || closing_) return;
      send_check(channel, watch_id, attempt);
    });
  }

  // False when `r` is not meta's answer (to be asked again).
  bool checked(const std::string& channel, uint64_t watch_id, const ChannelSequencer::Floor& floor,
               Result&& r) {
    Watched* w = watched(channel, watch_id);
    if (!w) return true;
    const Reply* reply = std::get_if<Reply>(&r);
    if (!reply || reply->kind != Reply::Kind::array || reply->elements.size() != 2) return false;
    const Reply& epoch = reply->elements[0];
    const Reply& last = reply->elements[1];
    ChannelSequencer::Out out;
    if (epoch.is_nil()) {
      w->seq.check_answered(std::nullopt, 0, floor, out);
    } else if (epoch.kind == Reply::Kind::string && last.kind == Reply::Kind::string) {
      uint64_t n = 0;
      if (std::from_chars(last.str.data(), last.str.data() + last.str.size(), n).ec != std::errc())
        return true;  // not a number: nothing to learn from it, now or later
      w->seq.check_answered(epoch.str, n, floor, out);
    }
    std::weak_ptr<int> alive = alive_;
    act(channel, watch_id, out);
    if (!alive.expired()) deliver();
    return true;
  }

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

// A node's id in the pub/sub payloads: 16 hex digits from the system's
// random source, one per engine (so per process).
std::string random_origin() {
  std::random_device rd;
  const uint64_t n = (uint64_t{rd()} << 32) | rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(n));
  return buf;
}

class RedisEngine final : public Engine {
 public:
  RedisEngine(const RedisEngineOptions& options, std::string key_seed, std::optional<SlotMap> slots)
      : options_(options),
        key_seed_(std::move(key_seed)),
        origin_(random_origin()),
        slots_(std::move(slots)) {}

  std::string_view name() const override { return "redis"; }

  void stop() override {
    std::lock_guard lock(mu_);
    if (hub_) hub_->stop();
  }

  std::unique_ptr<ShardStore> open_shard(unsigned /*shard*/,
                                         boost::asio::any_io_executor executor) override {
    std::shared_ptr<FanoutHub> hub;
    {
      std::lock_guard lock(mu_);
      if (!hub_) hub_ = std::make_shared<FanoutHub>(options_, slots_ ? &*slots_ : nullptr);
      hub = hub_;
    }
    return std::make_unique<RedisShardStore>(options_, key_seed_, origin_, std::move(hub), executor,
                                             slots_ ? &*slots_ : nullptr);
  }

 private:
  const RedisEngineOptions options_;
  const std::string key_seed_;  // decimal u64
  const std::string origin_;
  // Redis Cluster: the slot map read at start, each store's and the hub's
  // first (each then follows redirections and refreshes its own).
  const std::optional<SlotMap> slots_;
  std::mutex mu_;
  std::shared_ptr<FanoutHub> hub_;  // created by the first open_shard
};

// One command on `conn`, run to its end on `io`; throws with `what` on failure.
Reply run_command(boost::asio::io_context& io, RedisConnection& conn,
                  const std::vector<std::string>& args, const std::string& where) {
  std::optional<Result> out;
  conn.command(args, [&](Result&& r) { out = std::move(r); });
  while (!out && io.run_one() > 0) {
  }
  if (!out) throw std::runtime_error("redis unavailable at " + where + ": no answer");
  if (auto* f = std::get_if<Failure>(&*out))
    throw std::runtime_error("redis unavailable at " + where + ": " + f->message);
  Reply r = std::get<Reply>(std::move(*out));
  if (r.is_error()) throw std::runtime_error("redis at " + where + ": " + r.str);
  return r;
}

bool canonical_u64(const std::string& s) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && end == s.data() + s.size() && std::to_string(n) == s;
}

// The deployment's seed: the first node to start stores a random one, every
// node then uses the stored one. On a cluster, on the master of its slot.
std::string read_or_create_seed(const RedisEngineOptions& options, const SlotMap* slots) {
  const std::string key = options.prefix + ":key_seed";
  RedisUrl url = options.url;
  if (slots) {
    if (const ClusterNode* master = slots->master(key_slot(key))) url = node_url(url, *master);
  }
  const std::string where = redacted(url);
  boost::asio::io_context io;
  ConnectionOptions once = options.connection;
  once.reconnect_min = once.reconnect_max = std::chrono::hours(1);  // fail, do not retry
  RedisConnection conn(io.get_executor(), url, once);
  run_command(io, conn, {"SET", key, decimal(KeyIndex::random_seed()), "NX"}, where);
  const Reply seed = run_command(io, conn, {"GET", key}, where);
  if (seed.kind != Reply::Kind::string || !canonical_u64(seed.str))
    throw std::runtime_error("redis at " + where + ": " + key + " is not a decimal 64-bit seed");
  return seed.str;
}

}  // namespace

std::string channel_key(const std::string& prefix, const std::string& channel,
                        const std::string& what) {
  std::string key = prefix + ":{";
  for (char c : channel) {
    if (c == '%')
      key += "%25";
    else if (c == '}')
      key += "%7D";
    else
      key += c;
  }
  key += "}:";
  key += what;
  return key;
}

std::unique_ptr<Engine> make_redis_engine(const RedisEngineOptions& options) {
  RedisEngineOptions o = options;
  std::optional<SlotMap> slots;
  if (o.cluster) {
    o.sharded = true;  // a cluster's pub/sub must be sharded: SPUBLISH goes to the slot's master
    slots = read_slot_map(o.url, o.connection);
  }
  std::string seed = read_or_create_seed(o, slots ? &*slots : nullptr);
  return std::make_unique<RedisEngine>(o, std::move(seed), std::move(slots));
}

}  // namespace herald::engine::redis
