// Node, channel lifecycle: destroying a channel (DELETE /api/channels/{c},
// the WebSocket `destroy`) and expiring it `channel_ttl_ms` after its first
// event. Both go through the engine's ShardStore::remove, which is ordered
// with the channel's appends and reads: when its callback runs on the owner,
// every subscribe whose reply was already sent belongs to the old life and
// every later read sees the new epoch. Only then are the final event and
// `unsubscribed {reason}` sent, through the same per-worker FIFO as events.
//
// Expiry needs each channel's creation time (its first event's ts, from the
// engine's created_ms). The owner learns it from every append and read of
// the channel, keeps the deadline, and arms one timer per owner for the
// earliest. A channel not used since the server started has no known
// deadline: its first publish reads it first (with_fresh_channel), so an
// event is never stored into a life that should already have ended.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>

#include "core/node_internal.hpp"
#include "engine/clock_and_epoch.hpp"

namespace herald::core {

namespace {

// deadlines[channel] while its removal is in flight.
constexpr int64_t kExpiring = -1;

}  // namespace

void Node::destroy(unsigned from, DestroyRequest req, std::function<void(DestroyResult)> done) {
  std::optional<Failure> failure;
  const Namespace* ns = find_namespace(from, req.channel, failure);
  std::optional<PublishRequest> final_event;
  if (ns && !req.event.empty()) {
    // The final event is checked like a publish: a bad one destroys nothing.
    PublishRequest ev{req.channel, req.event, req.data.empty() ? "null" : req.data, {}, {}, true};
    failure = admit(*ns, ev);
    if (!failure) final_event = std::move(ev);
  }
  if (failure) {
    done(DestroyResult{std::move(failure), {}});
    return;
  }
  const unsigned owner = owner_of(req.channel);
  post(owner, [this, owner, from, channel = std::move(req.channel),
               final_event = std::move(final_event), done = std::move(done)]() mutable {
    destroy_on_owner(
        owner, channel, std::move(final_event), "destroyed",
        [this, from, done = std::move(done)](DestroyResult r) mutable {
          post(from, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
        });
  });
}

void Node::destroy_on_owner(unsigned owner, const std::string& channel,
                            std::optional<PublishRequest> final_req, std::string reason,
                            std::function<void(DestroyResult)> done) {
  const int64_t ts = engine::system_now_ms();
  ws::SharedFrame final_event;
  if (final_req) final_event = event_frame(*final_req, std::nullopt, ts);
  engine::ShardStore& store = *shards_[owner]->store;
  if (store.shared()) {
    // Other nodes end their subscribers too (node_remote.cpp); sent before
    // the removal, in order with it, so that nothing of the new life reaches
    // them first.
    if (final_req) broadcast_ephemeral(owner, *final_req, ts);
    engine::RemoteMessage reset;
    reset.kind = engine::RemoteMessage::Kind::reset;
    reset.channel = channel;
    reset.reason = reason;
    store.broadcast(reset);
  }
  store.remove(channel,
               [this, owner, channel, final_event = std::move(final_event),
                reason = std::move(reason), done = std::move(done)](engine::RemoveResult r) {
                 Shard& shard = *shards_[owner];
                 auto deadline = shard.deadlines.find(channel);
                 if (!r.ok) {
                   if (deadline != shard.deadlines.end())
                     shard.deadlines.erase(deadline);  // ask again
                   done(DestroyResult{storage_failure(r.unavailable, r.error), {}});
                   return;
                 }
                 if (deadline != shard.deadlines.end())
                   deadline->second = 0;  // no event in the new life
                 end_subscribers(shard, channel, final_event, reason);
                 done(DestroyResult{std::nullopt, r.epoch});
               });
}

void Node::end_subscribers(Shard& shard, const std::string& channel,
                           const ws::SharedFrame& final_event, const std::string& reason) {
  // Joins and leaves already queued, then the final event, then the end.
  flush_announcements(shard, channel);
  auto it = shard.channels.find(channel);
  if (it == shard.channels.end()) return;
  if (final_event) deliver_to_workers(shard, channel, final_event);
  const auto& counts = it->second.counts;
  for (unsigned w = 0; w < counts.size(); ++w) {
    if (counts[w] == 0) continue;
    post(w, [this, w, channel, reason] { shards_[w]->local.end(channel, reason); });
  }
  // The members leave with their subscriptions, without `leave`;
  // subscribes still pending belong to the new life and stay.
  if (auto& p = it->second.presence) {
    shard.counters->presence_members.sub(static_cast<int64_t>(p->clients()));
    p->clear_members();
  }
}

void Node::expire(unsigned owner, const std::string& channel) {
  Shard& shard = *shards_[owner];
  shard.deadlines[channel] = kExpiring;
  std::optional<PublishRequest> final_event;
  if (const Namespace* ns = shard.namespaces->find(channel);
      ns && !ns->options.expire_event.empty())
    final_event =
        PublishRequest{channel, ns->options.expire_event, ns->options.expire_data, {}, {}, true};
  destroy_on_owner(owner, channel, std::move(final_event), "expired",
                   [channel](const DestroyResult& r) {
                     if (r.failure)
                       spdlog::error("expiring channel {}: {}", channel, r.failure->message);
                   });
}

bool Node::note_created(unsigned owner, const std::string& channel, const Namespace& ns,
                        int64_t created_ms) {
  Shard& shard = *shards_[owner];
  const int64_t now = engine::system_now_ms();
  const int64_t deadline = created_ms ? created_ms + ttl_ms(ns) : 0;
  auto [it, inserted] = shard.deadlines.try_emplace(channel, 0);
  // While a removal is in flight, results from before it still arrive.
  if (it->second == kExpiring) return deadline && deadline <= now;
  if (!deadline) {
    it->second = 0;
    return false;
  }
  if (deadline <= now) {
    expire(owner, channel);
    return true;
  }
  if (it->second != deadline) {
    it->second = deadline;
    shard.expiry_queue.emplace(deadline, channel);
    arm_expiry_timer(owner);
  }
  return false;
}

void Node::with_fresh_channel(unsigned owner, const std::string& channel, const Namespace& ns,
                              std::function<void()> then) {
  Shard& shard = *shards_[owner];
  if (auto it = shard.deadlines.find(channel); it != shard.deadlines.end()) {
    if (it->second > 0 && it->second <= engine::system_now_ms()) expire(owner, channel);
    then();  // after a removal in flight, if any: the event starts the new life
    return;
  }
  auto [waiting, first] = shard.probing.try_emplace(channel);
  waiting->second.push_back(std::move(then));
  if (!first) return;
  engine::HistoryQuery query;
  query.limit = 0;
  query.retention = retention_of(ns);
  shard.store->read(channel, query, [this, owner, channel](engine::HistoryResult h) {
    Shard& shard = *shards_[owner];
    std::vector<std::function<void()>> run;
    if (auto it = shard.probing.find(channel); it != shard.probing.end()) {
      run = std::move(it->second);
      shard.probing.erase(it);
    }
    if (h.ok) {
      if (const Namespace* ns = shard.namespaces->find(channel); ns && ttl_ms(*ns) > 0)
        note_created(owner, channel, *ns, h.created_ms);
    }
    for (auto& f : run) f();
  });
}

void Node::arm_expiry_timer(unsigned owner) {
  Shard& shard = *shards_[owner];
  // Drop entries that no longer match their channel's deadline.
  while (!shard.expiry_queue.empty()) {
    const auto& [due, channel] = shard.expiry_queue.top();
    auto it = shard.deadlines.find(channel);
    if (it != shard.deadlines.end() && it->second == due) break;
    shard.expiry_queue.pop();
  }
  if (shard.expiry_queue.empty()) return;
  const int64_t due = shard.expiry_queue.top().first;
  if (shard.timer_at == due) return;
  shard.timer_at = due;
  const int64_t wait = std::max<int64_t>(0, due - engine::system_now_ms());
  shard.expiry_timer->expires_after(std::chrono::milliseconds(wait));
  shard.expiry_timer->async_wait([this, owner](boost::system::error_code ec) {
    if (ec) return;  // re-armed for an earlier deadline
    expire_due(owner);
  });
}

void Node::expire_due(unsigned owner) {
  Shard& shard = *shards_[owner];
  shard.timer_at = 0;
  const int64_t now = engine::system_now_ms();
  while (!shard.expiry_queue.empty() && shard.expiry_queue.top().first <= now) {
    auto [due, channel] = shard.expiry_queue.top();
    shard.expiry_queue.pop();
    if (auto it = shard.deadlines.find(channel); it != shard.deadlines.end() && it->second == due)
      expire(owner, channel);
  }
  arm_expiry_timer(owner);
}

}  // namespace herald::core
