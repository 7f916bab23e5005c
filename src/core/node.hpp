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
// Every call below is made on worker `from`'s thread; `done` runs there too.
// Each subscribe() sent to an owner must be matched by exactly one
// unsubscribe() for the same worker (on unsubscribe, on error, on close).
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
  std::string from_info = {};  // raw JSON of the publisher's token `info`
};

struct PublishResult {
  std::optional<Failure> failure;
  std::optional<uint64_t> offset;  // absent for ephemeral events
};

struct SubscribeRequest {
  std::string channel;
  std::optional<uint64_t> history;
  std::optional<protocol::RecoverPosition> recover;
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
  void attach_worker(unsigned index, boost::asio::io_context& io);

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
  void unsubscribe(unsigned from, std::string channel);
  void history(unsigned from, HistoryRequest req, std::function<void(HistoryResult)> done);

 private:
  struct Shard;
  template <class F>
  void post(unsigned worker, F&& f);
  void deliver_to_workers(Shard& owner, const std::string& channel, const ws::SharedFrame& frame);
  // The namespace of `channel` as worker `index` sees it, or the failure
  // (unknown_channel) to answer with.
  const Namespace* find_namespace(unsigned index, const std::string& channel,
                                  std::optional<Failure>& failure) const;

  engine::Engine& engine_;
  NodeOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace herald::core
