// ClusterRouter: where a worker's (or the pub/sub hub's) commands go when
// the redis engine runs on Redis Cluster (engine.redis_cluster): one
// RedisConnection per master, created when first needed, each with the
// options of the seed's (AUTH, TLS, timeouts, on_connect SCRIPT LOAD), and
// the slot map (cluster_slots.hpp), read again (CLUSTER SLOTS, from any
// connection that is up, else from each known master and the seed in turn)
// after a MOVED, a lost connection
// (a failover promotes a replica: found by asking another node) or when
// asked. Refreshes are coalesced, at most one in flight and one every
// kRefreshGap.
//
// Owns its connections and the map; single-threaded (the executor given),
// like RedisConnection. Redirections themselves (resending after MOVED or
// ASK, in order) are the caller's: redis_engine.cpp's opening comment.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/redis/cluster_slots.hpp"
#include "engine/redis/redis_connection.hpp"
#include "engine/redis/redis_url.hpp"

namespace herald::engine::redis {

class ClusterRouter {
 public:
  static constexpr std::chrono::milliseconds kRefreshGap{100};

  ClusterRouter(boost::asio::any_io_executor executor, RedisUrl seed, ConnectionOptions options,
                SlotMap map);
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  // The connection to the master of `slot` (the seed's while no master is
  // known: it answers MOVED or CLUSTERDOWN).
  RedisConnection& for_slot(uint16_t slot);
  RedisConnection& for_node(const ClusterNode& node);
  const ClusterNode* master(uint16_t slot) const { return map_.master(slot); }

  // A MOVED: the slot is the node's now; the whole map is read again too.
  void moved(const Redirect& redirect);
  // Reads the map again (soon, coalesced).
  void refresh();
  // Runs after each map read that succeeded.
  void on_map(std::function<void()> hook) { on_map_ = std::move(hook); }

 private:
  void fetch();
  void fetched(const std::string& host, Result&& r);

  boost::asio::any_io_executor executor_;
  RedisUrl seed_;
  ConnectionOptions options_;
  SlotMap map_;
  std::map<std::string, std::unique_ptr<RedisConnection>> conns_;  // by "host:port"
  boost::asio::steady_timer gap_timer_;
  bool fetching_ = false;
  bool waiting_ = false;       // gap_timer_ armed
  bool again_ = false;         // asked while fetching
  size_t next_candidate_ = 0;  // whom fetch() asks when no connection is up
  std::function<void()> on_map_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Reads CLUSTER SLOTS from the seed at start, on a short-lived connection
// on `io`'s loop (see make_redis_engine); throws std::runtime_error naming
// the redacted URL when it is not a cluster node or cannot be reached.
SlotMap read_slot_map(const RedisUrl& seed, const ConnectionOptions& options);

// The URL of `node`: the seed's with host and port changed (same user,
// password, TLS).
RedisUrl node_url(const RedisUrl& seed, const ClusterNode& node);

}  // namespace herald::engine::redis
