// RedisShardStore's ops FIFO (redis_shard_store.hpp): calls become script
// calls in one FIFO, replies complete them, NOSCRIPT / same_epoch / cluster
// redirections are retried without reordering a channel, and callbacks run
// in call order once the channel's sequencer lets the head go.
#include "engine/redis/redis_shard_store.hpp"

#include <unordered_set>
#include <utility>

#include "engine/clock_and_epoch.hpp"
#include "engine/key_index.hpp"
#include "engine/redis/fanout_payload.hpp"
#include "engine/redis/redis_replies.hpp"

namespace herald::engine::redis {

ConnectionOptions loading_scripts(ConnectionOptions options) {
  for (Script s : {Script::publish, Script::read, Script::remove})
    options.on_connect.push_back({"SCRIPT", "LOAD", std::string(redis_script(s))});
  return options;
}

RedisShardStore::RedisShardStore(const RedisEngineOptions& options, std::string key_seed,
                                 std::string origin, std::shared_ptr<FanoutHub> hub,
                                 boost::asio::any_io_executor executor, const SlotMap* slots)
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

RedisShardStore::~RedisShardStore() {
  closing_ = true;
  alive_.reset();  // what the hub posted for this store finds it gone
  for (const auto& [channel, w] : watched_) hub_->unwatch(pubsub_channel(channel), mailbox_);
  retry_timer_.cancel();
  conn_.reset();  // runs the pending callbacks, which now return at once
  router_.reset();
}

void RedisShardStore::broadcast(const RemoteMessage& message) {
  auto payload = encode_fanout(origin_, message);
  if (!payload) return;
  Op op;
  op.channel = message.channel;
  op.kind = Kind::broadcast;
  op.args = {options_.sharded ? "SPUBLISH" : "PUBLISH", pubsub_channel(message.channel),
             std::move(*payload)};
  submit(std::move(op));
}

void RedisShardStore::presence_add(const std::string& channel, const PresenceMember& member) {
  presence_.add(channel, member);
}

void RedisShardStore::presence_remove(const std::string& channel, const std::string& client) {
  presence_.remove(channel, client);
}

void RedisShardStore::presence_read(const std::string& channel, PresenceHandler done) {
  Op op;
  op.channel = channel;
  op.kind = Kind::presence_read;
  op.args = presence_.read_command(channel);
  op.presence_done = std::move(done);
  submit(std::move(op));
}

void RedisShardStore::append(const std::string& channel, NewEvent ev, AppendHandler done) {
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

void RedisShardStore::read(const std::string& channel, const HistoryQuery& query,
                           HistoryHandler done) {
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

void RedisShardStore::remove(const std::string& channel, RemoveHandler done) {
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

void RedisShardStore::side_command(const std::string& channel, std::vector<std::string> args,
                                   Callback done) {
  conn_for(slot_of(channel)).command(args, [this, done = std::move(done)](Result&& r) mutable {
    if (closing_) return;
    note_redirect(r);
    done(std::move(r));
  });
}

void RedisShardStore::note_redirect(const Result& r) {
  if (!router_) return;
  if (const Reply* reply = std::get_if<Reply>(&r); reply && reply->is_error()) {
    if (auto redirect = parse_redirect(reply->str); redirect && !redirect->ask)
      router_->moved(*redirect);
  } else if (std::holds_alternative<Failure>(r)) {
    router_->refresh();  // a master gone: maybe failed over
  }
}

void RedisShardStore::submit(Op op) {
  op.slot = slot_of(op.channel);
  ops_.push_back(std::move(op));
  if (!holding_) send(ops_.size() - 1);
}

void RedisShardStore::send(size_t index) {
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

void RedisShardStore::answered(uint64_t id, Result&& result) {
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

void RedisShardStore::complete(Op& op, Result&& result) {
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

bool RedisShardStore::must_retry(Op& op, const Reply& reply) {
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

std::optional<std::string> RedisShardStore::must_redirect(Op& op, const Result& result) {
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

void RedisShardStore::resend() {
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

void RedisShardStore::deliver() {
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

bool RedisShardStore::release(Op& op) {
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

void RedisShardStore::finish(Op& op) {
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

}  // namespace herald::engine::redis
