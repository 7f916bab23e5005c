// The redis engine's ShardStore: every append, read and remove of one worker
// is one Lua script call (publish.lua, read.lua, remove.lua: atomic in Redis,
// whichever node runs them) on the worker's own RedisConnection.
//
// Ordering (engine.hpp's contract). All of a shard's calls go through its one
// pipelined connection in call order; Redis runs a connection's commands in
// the order they arrive and answers them in that order. So a read issued
// after appends of the same channel runs after them in Redis and answers from
// the state after them, and a remove likewise. Callbacks run in call order
// too: results are kept in one FIFO of operations (`ops_`), and only its
// head is ever handed to its callback, so an answer that must be retried
// (below) holds back the callbacks of everything called after it.
//
// Retries, and why they cannot overtake. Two replies mean "nothing ran, send
// it again": NOSCRIPT (Redis lost its script cache: restart, failover,
// SCRIPT FLUSH) and remove.lua's `same_epoch` (the random candidate equalled
// the current epoch). The commands sent after it are already on their way
// and may run before the retry could, so on such a reply the store stops
// sending (new calls wait in `ops_`) until every command in flight has
// answered. Then, for each operation to retry: if a later operation of the
// same channel ran meanwhile (answered anything else than a retry, e.g.
// because another node loaded the script in between), retrying would reorder
// the channel, so it fails instead (it did not run: nothing is stored);
// otherwise it is sent again, NOSCRIPT ones with EVAL and the full text
// (which also loads the script), followed by the calls that waited, in
// order. Almost always every later command got NOSCRIPT too, and all are
// retried in order.
//
// Failures. A connection that is down, breaks, or is full fails the call with
// an error starting "redis unavailable" (a publish whose connection broke
// after sending may have been stored: it is still reported as failed, never
// as a success that no script reply confirmed). Script errors are reported as
// "redis: <error>".
//
// The idempotency key seed (KeyIndex::hash) is the deployment's, stored in
// Redis as <prefix>:key_seed (SET NX, then GET) by make_redis_engine, so every
// node hashes a key the same way.
//
// Destroying a store drops the callbacks of calls not yet answered (the
// core destroys stores only when it stops).
#include "engine/redis/redis_engine.hpp"

#include <boost/asio/io_context.hpp>
#include <charconv>
#include <deque>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/clock_and_epoch.hpp"
#include "engine/key_index.hpp"
#include "engine/redis/redis_scripts.hpp"

namespace herald::engine::redis {
namespace {

std::string unavailable(const std::string& why) {
  static constexpr std::string_view kPrefix = "redis unavailable";
  return why.starts_with(kPrefix) ? why : std::string(kPrefix) + ": " + why;
}

std::string decimal(uint64_t n) {
  return std::to_string(n);
}

std::string decimal(int64_t n) {
  return std::to_string(n);
}

const Reply* element(const Reply& r, size_t i, Reply::Kind kind) {
  if (r.kind != Reply::Kind::array || i >= r.elements.size()) return nullptr;
  const Reply& e = r.elements[i];
  return e.kind == kind ? &e : nullptr;
}

// A reply as the caller sees it: ok, or the error to report.
std::optional<std::string> error_of(const Result& result) {
  if (const auto* f = std::get_if<Failure>(&result)) return unavailable(f->message);
  const Reply& r = std::get<Reply>(result);
  if (r.is_error()) return "redis: " + r.str;
  return std::nullopt;
}

// Fills `out` (any engine result) with the error of a failed call: a
// connection failure is `unavailable` (nothing stored), an error reply not.
template <typename Out>
bool failed(const Result& result, Out& out) {
  auto e = error_of(result);
  if (!e) return false;
  out.error = std::move(*e);
  out.unavailable = std::holds_alternative<Failure>(result);
  return true;
}

AppendResult to_append_result(Result&& result, std::string& key) {
  AppendResult out;
  if (failed(result, out)) return out;
  const Reply& r = std::get<Reply>(result);
  const Reply* status = element(r, 0, Reply::Kind::string);
  const Reply* offset = element(r, 1, Reply::Kind::integer);
  const Reply* epoch = element(r, 2, Reply::Kind::string);
  const Reply* created = element(r, 3, Reply::Kind::integer);
  if (!status || !offset || !epoch || !created) {
    out.error = "redis: unexpected publish.lua reply " + to_string(r);
    return out;
  }
  out.offset = static_cast<uint64_t>(offset->integer);
  out.epoch = epoch->str;
  out.created_ms = created->integer;
  if (status->str == "ok") {
    out.ok = true;
  } else if (status->str == "replayed") {
    out.ok = true;
    out.replayed = true;
  } else if (status->str == "conflict") {
    out.conflict = true;
    out.error = "idempotency key conflict";
    out.idempotency_key = std::move(key);
  } else {
    out.error = "redis: unexpected publish.lua status " + status->str;
  }
  return out;
}

HistoryResult to_history_result(Result&& result) {
  HistoryResult out;
  if (failed(result, out)) return out;
  Reply& r = std::get<Reply>(result);
  const Reply* epoch = element(r, 0, Reply::Kind::string);
  const Reply* last = element(r, 1, Reply::Kind::integer);
  const Reply* first = element(r, 2, Reply::Kind::integer);
  const Reply* created = element(r, 3, Reply::Kind::integer);
  const Reply* events = element(r, 4, Reply::Kind::array);
  const auto bad = [&] {
    out = HistoryResult{};
    out.error = "redis: unexpected read.lua reply";
    return out;
  };
  if (!epoch || !last || !first || !created || !events) return bad();
  out.epoch = epoch->str;
  out.last_offset = static_cast<uint64_t>(last->integer);
  out.first_offset = static_cast<uint64_t>(first->integer);
  out.created_ms = created->integer;
  out.events.reserve(events->elements.size());
  for (size_t i = 0; i < events->elements.size(); ++i) {
    Reply& e = r.elements[4].elements[i];
    const Reply* offset = element(e, 0, Reply::Kind::integer);
    const Reply* ts = element(e, 1, Reply::Kind::integer);
    if (!offset || !ts || e.elements.size() != 7) return bad();
    for (size_t f = 2; f < 7; ++f)
      if (e.elements[f].kind != Reply::Kind::string) return bad();
    out.events.push_back(StoredEvent{static_cast<uint64_t>(offset->integer), ts->integer,
                                     std::move(e.elements[2].str), std::move(e.elements[3].str),
                                     std::move(e.elements[4].str), std::move(e.elements[5].str),
                                     std::move(e.elements[6].str)});
  }
  out.ok = true;
  return out;
}

RemoveResult to_remove_result(Result&& result) {
  RemoveResult out;
  if (failed(result, out)) return out;
  const Reply& r = std::get<Reply>(result);
  const Reply* status = element(r, 0, Reply::Kind::string);
  const Reply* epoch = element(r, 1, Reply::Kind::string);
  if (!status || !epoch || status->str != "ok") {
    out.error = "redis: unexpected remove.lua reply " + to_string(r);
    return out;
  }
  out.ok = true;
  out.epoch = epoch->str;
  return out;
}

// Arguments of a script call: EVALSHA <sha> 4 <meta> <stream> <keys> <keyq>,
// then the script's ARGV.
constexpr size_t kFirstArg = 7;

class RedisShardStore final : public ShardStore {
 public:
  RedisShardStore(const RedisEngineOptions& options, std::string key_seed,
                  boost::asio::any_io_executor executor)
      : options_(options),
        defaults_{options.max_events_per_channel, options.max_age_ms},
        key_seed_(std::stoull(key_seed)),
        now_ms_(options.now_ms ? options.now_ms : system_now_ms),
        conn_(std::make_unique<RedisConnection>(executor, options.url, options.connection)) {}

  ~RedisShardStore() override {
    closing_ = true;
    conn_.reset();  // runs the pending callbacks, which now return at once
  }

  void append(const std::string& channel, NewEvent ev, AppendHandler done) override {
    const Retention keep = ev.retention.value_or(defaults_);
    const bool keyed = !ev.idempotency_key.empty();
    auto args = call(Script::publish, channel);
    args.reserve(kFirstArg + 16);
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
    args.push_back("");  // no PUBLISH yet: cross-node fan-out is a later step
    args.push_back(options_.sharded ? "SPUBLISH" : "PUBLISH");
    args.push_back(decimal(options_.idle_ttl_ms));
    submit(channel, Script::publish, std::move(args),
           [done = std::move(done), key = std::move(ev.idempotency_key)](Result&& r) mutable {
             done(to_append_result(std::move(r), key));
           });
  }

  void read(const std::string& channel, const HistoryQuery& query, HistoryHandler done) override {
    const Retention keep = query.retention.value_or(defaults_);
    auto args = call(Script::read, channel);
    args.push_back(random_epoch());
    args.push_back(decimal(now_ms_()));
    args.push_back(decimal(uint64_t{query.limit}));
    args.push_back(query.before ? decimal(*query.before) : "");
    args.push_back(query.after ? decimal(*query.after) : "");
    args.push_back(decimal(uint64_t{keep.max_events}));
    args.push_back(decimal(keep.max_age_ms));
    args.push_back(decimal(options_.idle_ttl_ms));
    submit(channel, Script::read, std::move(args),
           [done = std::move(done)](Result&& r) { done(to_history_result(std::move(r))); });
  }

  void remove(const std::string& channel, RemoveHandler done) override {
    auto args = call(Script::remove, channel);
    args.push_back(random_epoch());
    args.push_back(decimal(options_.idle_ttl_ms));
    submit(channel, Script::remove, std::move(args),
           [done = std::move(done)](Result&& r) { done(to_remove_result(std::move(r))); });
  }

 private:
  enum class State { waiting, sent, retry, done };

  struct Op {
    std::string channel;
    Script script;
    std::vector<std::string> args;
    std::function<void(Result&&)> finish;  // calls the caller's callback
    State state = State::waiting;
    std::optional<Result> result;  // when done
  };

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

  void submit(const std::string& channel, Script script, std::vector<std::string> args,
              std::function<void(Result&&)> finish) {
    ops_.push_back(Op{channel, script, std::move(args), std::move(finish), State::waiting, {}});
    if (!holding_) send(ops_.size() - 1);
  }

  // Sends ops_[index]: the operation numbered id.
  void send(size_t index) {
    Op& op = ops_[index];
    const uint64_t id = front_id_ + index;
    op.state = State::sent;
    ++in_flight_;
    conn_->command(op.args, [this, id](Result&& r) { answered(id, std::move(r)); });
  }

  void answered(uint64_t id, Result&& result) {
    if (closing_) return;
    --in_flight_;
    Op& op = ops_[id - front_id_];
    if (const Reply* r = std::get_if<Reply>(&result); r && must_retry(op, *r)) {
      op.state = State::retry;
      holding_ = true;
    } else {
      op.state = State::done;
      op.result = std::move(result);
    }
    if (holding_ && in_flight_ == 0) resend();
    deliver();
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
      op.args[kFirstArg] = random_epoch();
      return true;
    }
    return false;
  }

  // Nothing is in flight: retries go out again in call order, unless a later
  // operation of their channel already ran (see the opening comment), then
  // the calls that waited.
  void resend() {
    holding_ = false;
    std::unordered_set<std::string_view> ran;  // channels with a later op that ran
    for (size_t i = ops_.size(); i-- > 0;) {
      Op& op = ops_[i];
      if (op.state == State::retry && ran.contains(op.channel)) {
        op.state = State::done;
        op.result = Failure{
            "redis unavailable: the script had to be sent again but a later call of the "
            "channel ran first; not stored"};
      }
      if (op.state == State::done) ran.insert(op.channel);
    }
    for (size_t i = 0; i < ops_.size(); ++i) {
      const State s = ops_[i].state;
      if (s == State::retry || s == State::waiting) send(i);
    }
  }

  // Hands finished operations to their callbacks, oldest first, stopping at
  // the first one still waiting for its reply.
  void deliver() {
    if (delivering_) return;  // a callback's own calls never finish synchronously
    delivering_ = true;
    std::weak_ptr<int> alive = alive_;
    while (!ops_.empty() && ops_.front().state == State::done) {
      Op op = std::move(ops_.front());
      ops_.pop_front();
      ++front_id_;
      op.finish(std::move(*op.result));
      if (alive.expired()) return;  // the callback destroyed this store
    }
    delivering_ = false;
  }

  const RedisEngineOptions options_;
  const Retention defaults_;
  const uint64_t key_seed_;
  const std::function<int64_t()> now_ms_;
  std::deque<Op> ops_;     // called, callback not yet run; in call order
  uint64_t front_id_ = 0;  // number of ops_.front(); ops are numbered in call order
  size_t in_flight_ = 0;   // sent, reply not yet come
  bool holding_ = false;   // a retry waits for the commands in flight
  bool delivering_ = false;
  bool closing_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with this object
  std::unique_ptr<RedisConnection> conn_;                  // last: its callbacks use the above
};

class RedisEngine final : public Engine {
 public:
  RedisEngine(const RedisEngineOptions& options, std::string key_seed)
      : options_(options), key_seed_(std::move(key_seed)) {}

  std::string_view name() const override { return "redis"; }

  std::unique_ptr<ShardStore> open_shard(unsigned /*shard*/,
                                         boost::asio::any_io_executor executor) override {
    return std::make_unique<RedisShardStore>(options_, key_seed_, executor);
  }

 private:
  const RedisEngineOptions options_;
  const std::string key_seed_;  // decimal u64
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
// node then uses the stored one.
std::string read_or_create_seed(const RedisEngineOptions& options) {
  const std::string where = redacted(options.url);
  boost::asio::io_context io;
  ConnectionOptions once = options.connection;
  once.reconnect_min = once.reconnect_max = std::chrono::hours(1);  // fail, do not retry
  RedisConnection conn(io.get_executor(), options.url, once);
  const std::string key = options.prefix + ":key_seed";
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
  return std::make_unique<RedisEngine>(options, read_or_create_seed(options));
}

}  // namespace herald::engine::redis
