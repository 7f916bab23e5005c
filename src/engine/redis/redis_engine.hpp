// The redis engine (issue 13): channels' offsets, history, epochs and
// idempotency keys kept in Redis by the Lua scripts of scripts/ (LAYOUT.md),
// so that several Herald nodes share them, and cross-node fan-out: every
// stored event is published on its channel's pub/sub channel, and a node
// hands the events of the channels it watches to its core in offset order,
// exactly once (engine.hpp "Several nodes"; how: redis_engine.cpp and
// LAYOUT.md "Cross-node fan-out"). server.cpp builds it for
// engine.type = "redis".
//
// Owns make_redis_engine() and its options; the store itself is in
// redis_engine.cpp, the ordering rules in channel_sequencer.hpp, Redis
// Cluster's routing in cluster_router.hpp and cluster_slots.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/engine.hpp"
#include "engine/redis/redis_connection.hpp"
#include "engine/redis/redis_url.hpp"

namespace herald::engine::redis {

struct RedisEngineOptions {
  RedisUrl url;
  ConnectionOptions connection;
  // The engine's retention, for appends and reads given none (NewEvent::retention).
  size_t max_events_per_channel = 1000;
  int64_t max_age_ms = 0;  // 0: no age limit
  // Every key of a channel expires after this long without a publish (its
  // meta also when not read); 0: never (LAYOUT.md, "Expiry").
  int64_t idle_ttl_ms = 24LL * 3600 * 1000;
  std::string prefix = "herald";  // keys are <prefix>:{<channel>}:...
  bool sharded = false;           // SPUBLISH / SSUBSCRIBE (a cluster needs them)
  // `url` is a seed node of a Redis Cluster (its db 0): each channel goes to
  // its slot's master (cluster_router.hpp); set `sharded` with it.
  bool cluster = false;
  // Cross-node fan-out: the keep-alive PING of the pub/sub connection, and
  // how many messages a watched channel may hold while it waits for a gap
  // to be filled (beyond: reset "resubscribe").
  std::chrono::milliseconds pubsub_ping_interval{5000};
  size_t max_held_per_channel = 10000;
  // Presence across nodes: how long a node's members stay in Redis without
  // its refresh (every third of it); see redis_presence.hpp.
  int64_t presence_ttl_ms = 30000;
  // The clock reads measure ages against; unset: the system clock. For tests.
  std::function<int64_t()> now_ms = {};
};

// Reads (or creates) the deployment's idempotency key seed in Redis
// (<prefix>:key_seed) before returning, on a short-lived connection of its
// own; throws std::runtime_error naming the redacted URL when Redis cannot
// be reached or answers with an error within the connect and command timeouts.
// With `cluster`, first reads the slot map from the seed (and throws when it
// is not a cluster node, or its URL selects a db other than 0).
std::unique_ptr<Engine> make_redis_engine(const RedisEngineOptions& options);

// The Redis key of one of a channel's keys (`what`: meta, stream, keys,
// keyq): <prefix>:{<tag>}:<what>, the tag being the channel with `%` written
// `%25` and `}` written `%7D` (LAYOUT.md). For tests and tools.
std::string channel_key(const std::string& prefix, const std::string& channel,
                        const std::string& what);

}  // namespace herald::engine::redis
