// What the three parts of core::Node share (node.cpp: publish, subscribe,
// history; node_presence.cpp: presence and join/leave; node_lifecycle.cpp:
// destroy and expiry): the per-worker Shard with its owned channels, and a
// few helpers. Internal to src/core; nothing outside includes it.
#pragma once

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "core/node.hpp"
#include "core/worker_counts.hpp"
#include "presence/channel_presence.hpp"

namespace herald::core {

struct Node::OwnedChannel {
  // How many subscriptions each worker holds on the channel (16 bytes,
  // inline for up to 3 workers); a channel is kept while any is non-zero.
  WorkerCounts counts;
  // Kept for channels of namespaces with presence, join_leave or max_users.
  std::unique_ptr<presence::ChannelPresence> presence;
};

struct Node::Shard {
  boost::asio::io_context* io = nullptr;
  std::unique_ptr<engine::ShardStore> store;
  std::shared_ptr<const NamespaceTable> namespaces;
  LocalSubscribers local;
  // When this turn's first event was handed to `local` (to_write stage).
  std::optional<std::chrono::steady_clock::time_point> first_delivery;
  metrics::WorkerCounters* counters = nullptr;            // never null once attached
  std::unique_ptr<metrics::WorkerCounters> own_counters;  // when attached without any

  // Owner side: the owned channels that have subscribers.
  boost::unordered_flat_map<std::string, OwnedChannel> channels;
  // Channels with joins/leaves queued during this loop turn.
  std::vector<std::string> announcing;

  // Expiry (namespaces with channel_ttl_ms): each channel's deadline in ms
  // since the Unix epoch, 0 when it has no event in its epoch; absent when
  // not known yet (not used since start).
  boost::unordered_flat_map<std::string, int64_t> deadlines;
  using Due = std::pair<int64_t, std::string>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> expiry_queue;  // may hold stale
  std::unique_ptr<boost::asio::steady_timer> expiry_timer;
  int64_t timer_at = 0;  // deadline the timer is armed for, 0: idle
  // Work waiting for the first read of a channel whose deadline is unknown.
  boost::unordered_flat_map<std::string, std::vector<std::function<void()>>> probing;
};

template <class F>
void Node::post(unsigned worker, F&& f) {
  boost::asio::post(*shards_[worker]->io, std::forward<F>(f));
}

// An engine's failure as the client sees it: `unavailable` (retryable,
// nothing stored) when the engine says so, else `internal`.
Failure storage_failure(bool unavailable, const std::string& why);
// The event as a WebSocket frame, built once for every subscriber.
ws::SharedFrame event_frame(const PublishRequest& req, std::optional<uint64_t> offset, int64_t ts);
// Whether `req` may be published on its namespace `ns`: how big, and what
// its event's schema says (who may publish was checked by the session,
// auth::check). A payload with write-only properties leaves here without
// them.
std::optional<Failure> admit(const Namespace& ns, PublishRequest& req);
engine::Retention retention_of(const Namespace& ns);

// Whether the owner keeps presence for channels of `ns`.
inline bool tracks_presence(const Namespace& ns) {
  return ns.options.presence || ns.options.join_leave || ns.options.max_users > 0;
}

// Seconds since `start`, for the latency histograms.
inline double seconds_between(std::chrono::steady_clock::time_point start,
                              std::chrono::steady_clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return seconds_between(start, std::chrono::steady_clock::now());
}

inline int64_t ttl_ms(const Namespace& ns) {
  return static_cast<int64_t>(ns.options.channel_ttl.count());
}

}  // namespace herald::core
