// The node: channels sharded over the worker threads, and the publish,
// subscribe and history pipelines between them.
//
// A channel belongs to worker `owner_of(name)`. The owner alone appends to
// its history (through that worker's engine ShardStore), builds each event
// once as a shared WebSocket frame, and knows how many subscriptions every
// worker holds on it. Requests from any worker are posted to the owner and
// their results posted back; the owner posts events and replies to a worker
// in one FIFO stream, so a subscriber sees the `subscribed` reply (with its
// history or recovered events) before any live event published after it,
// and events in offset order. No locks: threads only exchange posted work.
//
// Channel namespaces (NamespaceTable) are checked by the worker that
// received a request: unknown channels, namespace limits, and for a publish
// the JSON Schema of its event, so validation runs in parallel on every
// worker and a rejected publish never reaches the owner.
//
// Several nodes (engine::ShardStore::shared(), the redis engine): the owner
// tells its store which channels have local subscribers (watch), and the
// store hands it what other nodes published on them (node_remote.cpp), which
// the owner delivers exactly like its own appends' events.
//
// Presence and channel lifecycle (docs/protocol.md section 13) live with the
// owner too: node_presence.cpp keeps each channel's presence::ChannelPresence
// from the same subscribe/unsubscribe stream and sends join/leave once per
// loop turn; node_lifecycle.cpp destroys channels (on request, or when their
// namespace's channel_ttl_ms runs out) through the engine's ordered
// ShardStore::remove, then tells every worker with subscribers to end them.
//
// Every call below is made on worker `from`'s thread; `done` runs there too.
// Each subscribe() sent to an owner must be matched by exactly one
// unsubscribe() for the same worker and client (on unsubscribe, on error, on
// close).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/namespace_table.hpp"
#include "core/subscribers.hpp"
#include "engine/engine.hpp"
#include "metrics/metrics.hpp"
#include "protocol/command.hpp"
#include "protocol/errors.hpp"

namespace herald::core {

struct Failure {
  protocol::ErrorCode code = protocol::ErrorCode::internal;
  std::string message;
  std::string details;  // JSON for the error's `details` ("" for none)
};

struct PublishRequest {
  std::string channel;
  std::string event;
  std::string data;         // raw JSON
  std::string from_client;  // empty when published by the server API
  std::string from_user;
  bool ephemeral = false;
  std::string from_info = {};        // raw JSON of the publisher's token `info`
  std::string idempotency_key = {};  // "" for none (never with ephemeral)
};

struct PublishResult {
  std::optional<Failure> failure;
  std::optional<uint64_t> offset;  // absent for ephemeral events
  bool replayed = false;           // the key's original offset; nothing stored or delivered
};

// What an idempotency key is bound to: the publisher's user, the event and
// its data (XXH3-64 of each, chained through the seed: stable across builds
// and versions of libxxhash, as sqlite keeps it on disk).
uint64_t fingerprint(std::string_view user, std::string_view event, std::string_view data);

struct SubscribeRequest {
  std::string channel;
  std::optional<uint64_t> history;
  std::optional<protocol::RecoverPosition> recover;
  std::string client;  // the subscriber, as a presence member
  std::string user;    // "" for anonymous
  std::string info;    // raw JSON of its token's info, "" for none
};

struct SubscribeResult {
  std::optional<Failure> failure;
  std::string epoch;
  uint64_t offset = 0;
  std::optional<bool> recovered;  // set when recovery was asked
  std::string events_json;        // "[...]"
};

// Events a `history` request returns when it names no `limit` (WebSocket
// and HTTP alike; docs/protocol.md).
inline constexpr size_t kDefaultHistoryLimit = 100;

struct HistoryRequest {
  std::string channel;
  engine::HistoryQuery query;
};

struct HistoryResult {
  std::optional<Failure> failure;
  std::string epoch;
  uint64_t offset = 0;
  std::string events_json;  // "[...]"
};

struct PresenceResult {
  std::optional<Failure> failure;
  std::string members_json;  // "[...]" of {"client","user","info"}
  bool complete = true;
  uint64_t clients = 0;
  std::optional<uint64_t> users;  // unknown over the member limit
};

struct DestroyRequest {
  std::string channel;
  std::string event;  // final event, "" for none
  std::string data;   // its raw JSON ("" is null)
};

struct DestroyResult {
  std::optional<Failure> failure;
  std::string epoch;  // the channel's new epoch
};

struct ChannelCount {
  std::string channel;
  uint64_t subscribers = 0;
};

struct ChannelsResult {
  std::vector<ChannelCount> channels;  // sorted by name, at most the limit
  uint64_t total = 0;                  // matching channels before the limit
};

struct NodeStats {
  uint64_t channels = 0;       // channels with subscribers
  uint64_t subscriptions = 0;  // over every channel
};

struct NodeOptions {
  size_t max_history_request = 1000;  // cap on history N, limit and recovery size
};

class Node {
 public:
  Node(unsigned workers, engine::Engine& engine, NodeOptions options,
       std::shared_ptr<const NamespaceTable> namespaces);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Called for every worker before any worker thread starts: a worker posts
  // to every shard as soon as it serves traffic.
  // `counters`: the worker's metrics, for the owner-side gauges and
  // histograms (null: none).
  void attach_worker(unsigned index, boost::asio::io_context& io,
                     metrics::WorkerCounters* counters = nullptr);

  // Called by worker `index` as it is destroyed (its thread stopped), before
  // its io_context goes: drops what of its shard lives on that io_context.
  void detach_worker(unsigned index);

  // Thread-safe, once every worker is attached: each worker switches to
  // `namespaces` between two of its handlers; requests it already checked
  // keep the verdict of the table they were checked with.
  void set_namespaces(std::shared_ptr<const NamespaceTable> namespaces);

  unsigned workers() const { return static_cast<unsigned>(shards_.size()); }
  unsigned owner_of(std::string_view channel) const;

  // The subscriber table of worker `index` (use only on that thread).
  LocalSubscribers& local(unsigned index);

  // The namespace of `channel` as worker `index` sees it (use only on that
  // thread), or nullptr when its namespace is not configured and unknown
  // ones are not allowed.
  const Namespace* namespace_of(unsigned index, std::string_view channel) const;

  void publish(unsigned from, PublishRequest req, std::function<void(PublishResult)> done);
  void subscribe(unsigned from, SubscribeRequest req, std::function<void(SubscribeResult)> done);
  void unsubscribe(unsigned from, std::string channel, std::string client);
  void history(unsigned from, HistoryRequest req, std::function<void(HistoryResult)> done);

  // Presence of a channel whose namespace has `presence = true` (checked
  // here: forbidden otherwise); `stats_only` skips the member list.
  void presence(unsigned from, std::string channel, bool stats_only,
                std::function<void(PresenceResult)> done);
  // Destroys a channel (reason "destroyed"); the final event is checked like
  // a publish first.
  void destroy(unsigned from, DestroyRequest req, std::function<void(DestroyResult)> done);
  // Channels with subscribers whose name starts with `prefix`, from every
  // owner.
  void channels(unsigned from, std::string prefix, size_t limit,
                std::function<void(ChannelsResult)> done);
  void stats(unsigned from, std::function<void(NodeStats)> done);

  // Called by worker `index` at the end of each loop turn: sends the join
  // and leave messages its channels produced during the turn.
  void end_of_turn(unsigned index);
  // Called by worker `index` once the turn's writes were made: observes how
  // long the turn's first delivered event waited to be written (to_write).
  void turn_flushed(unsigned index);

 private:
  struct Shard;
  struct OwnedChannel;
  template <class F>
  void post(unsigned worker, F&& f);
  void deliver_to_workers(Shard& owner, const std::string& channel, const ws::SharedFrame& frame);
  // Runs `f(shard_index)` on every shard and `done(results)` back on `from`.
  template <class T>
  void gather(unsigned from, std::function<T(unsigned)> f,
              std::function<void(std::vector<T>)> done);

  // The history read of a subscribe (again after an expiry), on `owner`.
  void subscribe_read(unsigned owner, unsigned from, SubscribeRequest req,
                      std::function<void(SubscribeResult)> done);
  void history_read(unsigned owner, unsigned from, HistoryRequest req,
                    std::function<void(HistoryResult)> done);

  // node_presence.cpp (owner side)
  // A subscribe of a channel whose namespace keeps presence reached its
  // owner: its member is pending until presence_admit().
  void presence_subscribe_begin(Shard& shard, const SubscribeRequest& req);
  // Admits the subscriber once its read completed; returns the failure to
  // answer with (channel_full), if any.
  std::optional<Failure> presence_admit(Shard& shard, const SubscribeRequest& req,
                                        const Namespace* ns, bool read_ok);
  void presence_unsubscribe(Shard& shard, const std::string& channel, const std::string& client);
  void flush_announcements(Shard& shard, const std::string& channel);
  // A shared store's presence query: every node's members, read from the store.
  void presence_shared(unsigned owner, unsigned from, std::string channel, bool stats_only,
                       std::function<void(PresenceResult)> done);
  // Another node's join or leave, queued for this node's subscribers.
  void presence_remote(Shard& shard, const engine::RemoteMessage& message);
  void erase_if_idle(Shard& shard, const std::string& channel);

  // node_lifecycle.cpp (owner side)
  // Destroys `channel` on its owner `owner`: engine removal, then the final
  // event and `unsubscribed {reason}` to its subscribers; `done` gets the new
  // epoch (or the engine's failure) on the owner's thread.
  void destroy_on_owner(unsigned owner, const std::string& channel,
                        std::optional<PublishRequest> final_event, std::string reason,
                        std::function<void(DestroyResult)> done);
  // Sends `final_event` (if any) and `unsubscribed {reason}` to the
  // channel's subscribers on every worker, and clears its presence members.
  void end_subscribers(Shard& shard, const std::string& channel, const ws::SharedFrame& final_event,
                       const std::string& reason);

  // node_remote.cpp (owner side): engines shared by several nodes (redis).
  // What another node published or destroyed, delivered here like our own.
  void on_remote(unsigned owner, engine::RemoteMessage message);
  // An event delivered here without storing goes to the other nodes too.
  void broadcast_ephemeral(unsigned owner, const PublishRequest& req, int64_t ts);
  // Destroys `channel` with reason "expired" and its namespace's expire_event.
  void expire(unsigned owner, const std::string& channel);
  // TTL bookkeeping after an append or a read told the channel's creation
  // time; returns true when the channel is past its TTL (then destroyed).
  bool note_created(unsigned owner, const std::string& channel, const Namespace& ns,
                    int64_t created_ms);
  // Runs `then` once the owner knows whether `channel` (of a namespace with a
  // TTL) has expired, expiring it first if so; in call order.
  void with_fresh_channel(unsigned owner, const std::string& channel, const Namespace& ns,
                          std::function<void()> then);
  void arm_expiry_timer(unsigned owner);
  void expire_due(unsigned owner);
  // The namespace of `channel` as worker `index` sees it, or the failure
  // (unknown_channel) to answer with.
  const Namespace* find_namespace(unsigned index, const std::string& channel,
                                  std::optional<Failure>& failure) const;

  engine::Engine& engine_;
  NodeOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace herald::core
