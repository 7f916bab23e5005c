// ClusterRouter: see cluster_router.hpp.
#include "engine/redis/cluster_router.hpp"

#include <boost/asio/io_context.hpp>
#include <optional>
#include <stdexcept>

namespace herald::engine::redis {

RedisUrl node_url(const RedisUrl& seed, const ClusterNode& node) {
  RedisUrl url = seed;
  url.host = node.host;
  url.port = node.port;
  return url;
}

ClusterRouter::ClusterRouter(boost::asio::any_io_executor executor, RedisUrl seed,
                             ConnectionOptions options, SlotMap map)
    : executor_(executor),
      seed_(std::move(seed)),
      options_(std::move(options)),
      map_(std::move(map)),
      gap_timer_(executor) {}

ClusterRouter::~ClusterRouter() {
  alive_.reset();
  gap_timer_.cancel();
  conns_.clear();  // runs the pending callbacks (ours return at once)
}

RedisConnection& ClusterRouter::for_slot(uint16_t slot) {
  if (const ClusterNode* node = map_.master(slot)) return for_node(*node);
  return for_node(ClusterNode{seed_.host, seed_.port});
}

RedisConnection& ClusterRouter::for_node(const ClusterNode& node) {
  auto& conn = conns_[node.name()];
  if (!conn) {
    conn = std::make_unique<RedisConnection>(executor_, node_url(seed_, node), options_);
    // A master that went away may have been replaced by a replica: ask
    // the others.
    conn->on_state([this, alive = std::weak_ptr<int>(alive_)](bool up) {
      if (!up && !alive.expired()) refresh();
    });
  }
  return *conn;
}

void ClusterRouter::moved(const Redirect& redirect) {
  map_.assign(redirect.slot, redirect.node);
  refresh();
}

void ClusterRouter::refresh() {
  if (fetching_ || waiting_) {
    again_ = true;
    return;
  }
  fetch();
}

void ClusterRouter::fetch() {
  fetching_ = true;
  again_ = false;
  // Any connection that is up answers; else, in turn, the masters of the
  // map and the seed (one of them may be gone for good: a failover).
  RedisConnection* conn = nullptr;
  std::string host = seed_.host;
  for (auto& [name, c] : conns_) {
    if (c->up()) {
      conn = c.get();
      host = name.substr(0, name.rfind(':'));
      break;
    }
  }
  if (!conn) {
    std::vector<ClusterNode> candidates = map_.nodes();
    candidates.push_back(ClusterNode{seed_.host, seed_.port});
    const ClusterNode& node = candidates[next_candidate_++ % candidates.size()];
    conn = &for_node(node);
    host = node.host;
  }
  conn->command({"CLUSTER", "SLOTS"}, [this, host, alive = std::weak_ptr<int>(alive_)](Result&& r) {
    if (!alive.expired()) fetched(host, std::move(r));
  });
}

void ClusterRouter::fetched(const std::string& host, Result&& r) {
  fetching_ = false;
  bool ok = false;
  if (const Reply* reply = std::get_if<Reply>(&r)) {
    if (auto map = SlotMap::parse(*reply, host)) {
      map_ = std::move(*map);
      ok = true;
    }
  }
  // Failed: try again after the gap (another connection may be up then).
  if (again_ || !ok) {
    again_ = false;
    waiting_ = true;
    gap_timer_.expires_after(kRefreshGap);
    gap_timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
      if (ec || alive.expired()) return;
      waiting_ = false;
      fetch();
    });
  }
  if (ok && on_map_) on_map_();
}

SlotMap read_slot_map(const RedisUrl& seed, const ConnectionOptions& options) {
  const std::string where = redacted(seed);
  if (seed.unix_socket)
    throw std::runtime_error("engine.redis_cluster: " + where +
                             " is a unix socket; a cluster's nodes are host:port");
  if (seed.db != 0)
    throw std::runtime_error("engine.redis_cluster: " + where + " selects db " +
                             std::to_string(seed.db) + "; Redis Cluster has db 0 only");
  boost::asio::io_context io;
  ConnectionOptions once = options;
  once.on_connect.clear();
  once.reconnect_min = once.reconnect_max = std::chrono::hours(1);  // fail, do not retry
  RedisConnection conn(io.get_executor(), seed, once);
  std::optional<Result> out;
  conn.command({"CLUSTER", "SLOTS"}, [&](Result&& r) { out = std::move(r); });
  while (!out && io.run_one() > 0) {
  }
  if (!out) throw std::runtime_error("redis unavailable at " + where + ": no answer");
  if (auto* f = std::get_if<Failure>(&*out))
    throw std::runtime_error("redis unavailable at " + where + ": " + f->message);
  const Reply& reply = std::get<Reply>(*out);
  if (reply.is_error())
    throw std::runtime_error("engine.redis_cluster: " + where +
                             " is not a Redis Cluster node (CLUSTER SLOTS: " + reply.str + ")");
  auto map = SlotMap::parse(reply, seed.host);
  if (!map || map->nodes().empty())
    throw std::runtime_error("engine.redis_cluster: " + where +
                             " answered CLUSTER SLOTS without any slot served");
  return std::move(*map);
}

}  // namespace herald::engine::redis
