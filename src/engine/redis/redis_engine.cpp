// The redis engine: make_redis_engine reads the deployment's idempotency key
// seed (and, on Redis Cluster, the slot map), and RedisEngine opens one
// RedisShardStore per worker (redis_shard_store.hpp, whose opening comment
// is the design: ordering, several nodes, retries, failures, cluster), all
// sharing the engine's one pub/sub FanoutHub, created by the first store.
//
// The idempotency key seed (KeyIndex::hash) is the deployment's, stored in
// Redis as <prefix>:key_seed (SET NX, then GET) by make_redis_engine, so every
// node hashes a key the same way.
#include "engine/redis/redis_engine.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "engine/key_index.hpp"
#include "engine/redis/cluster_slots.hpp"
#include "engine/redis/fanout_hub.hpp"
#include "engine/redis/redis_replies.hpp"
#include "engine/redis/redis_shard_store.hpp"

namespace herald::engine::redis {
namespace {

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
