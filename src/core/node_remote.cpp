// Node, several nodes: what the other Herald processes sharing the engine's
// channels (engine::ShardStore::shared(), the redis engine) publish and
// destroy, handed to the channel's owner by its store (on_remote), and what
// this node sends them in return (broadcast_ephemeral; destroy_on_owner
// sends resets).
//
// The store does the ordering (engine.hpp, "Several nodes"): each stored
// event of a watched channel reaches the owner exactly once, in offset
// order, through either its own append's callback or here, and a read's
// callback sees exactly what was handed over before it. So the owner only
// delivers: a remote event becomes the same shared frame an append's event
// would, through the same per-worker FIFO, and a subscriber cannot tell
// which node it was published on.
#include <spdlog/spdlog.h>

#include "core/node_internal.hpp"

namespace herald::core {

namespace {

PublishRequest request_of(const std::string& channel, engine::StoredEvent& ev, bool ephemeral) {
  return PublishRequest{channel,
                        std::move(ev.event),
                        std::move(ev.data),
                        std::move(ev.from_client),
                        std::move(ev.from_user),
                        ephemeral,
                        std::move(ev.from_info)};
}

}  // namespace

void Node::on_remote(unsigned owner, engine::RemoteMessage message) {
  Shard& shard = *shards_[owner];
  using Kind = engine::RemoteMessage::Kind;
  switch (message.kind) {
    case Kind::event: {
      const uint64_t offset = message.event.offset;
      const int64_t ts = message.event.ts_ms;
      const PublishRequest req = request_of(message.channel, message.event, false);
      deliver_to_workers(shard, req.channel, event_frame(req, offset, ts));
      shard.counters->remote_events.add();
      return;
    }
    case Kind::ephemeral: {
      const int64_t ts = message.event.ts_ms;
      const PublishRequest req = request_of(message.channel, message.event, true);
      deliver_to_workers(shard, req.channel, event_frame(req, std::nullopt, ts));
      shard.counters->remote_events.add();
      return;
    }
    case Kind::reset: {
      // Destroyed or expired elsewhere: this node's deadline for the channel
      // belonged to the old life; the next use reads the new one.
      if (message.reason != "resubscribe")
        shard.deadlines.erase(message.channel);
      else
        spdlog::warn("channel {}: its subscribers on this node must resubscribe ({})",
                     message.channel, "events could not be delivered in order");
      shard.counters->remote_resets.add();
      end_subscribers(shard, message.channel, {}, message.reason);
      return;
    }
  }
}

void Node::broadcast_ephemeral(unsigned owner, const PublishRequest& req, int64_t ts) {
  engine::RemoteMessage m;
  m.kind = engine::RemoteMessage::Kind::ephemeral;
  m.channel = req.channel;
  m.event = engine::StoredEvent{
      0, ts, req.event, req.data, req.from_client, req.from_user, req.from_info};
  shards_[owner]->store->broadcast(m);
}

}  // namespace herald::core
