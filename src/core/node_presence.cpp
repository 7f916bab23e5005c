// Node, presence: each owned channel's presence::ChannelPresence, fed by the
// owner's subscribe/unsubscribe stream, the presence queries answered from
// it, and the join/leave messages sent once per loop turn. See node.hpp and
// src/presence/channel_presence.hpp.
//
// Several nodes (a shared() store, the redis engine): the owner also hands
// its admitted and departed members to the store, which keeps them in the
// engine beside every other node's; presence queries read that merged list
// (presence/merged_presence.hpp); this node's joins and leaves are
// broadcast, and other nodes' reach this node's subscribers through
// on_remote (node_remote.cpp) and the same announcement queue. max_users and
// user_joined/user_left stay per node.
#include <boost/asio/post.hpp>

#include "core/node_internal.hpp"
#include "presence/merged_presence.hpp"
#include "protocol/messages.hpp"

namespace herald::core {

namespace {

// The joins and leaves of one turn as one buffer of WebSocket frames, so each
// worker with subscribers gets one hand-over per channel and turn.
ws::SharedFrame announcement_frames(const std::string& channel,
                                    const std::vector<presence::Announcement>& list) {
  auto frames = std::make_shared<ws::Frame>();
  std::string json;
  for (const auto& a : list) {
    json.clear();
    protocol::append_join_leave(json, a.join, channel, a.member.client, a.member.user,
                                a.member.info, a.user_edge);
    frames->storage += ws::make_frame(json)->bytes();
  }
  return frames;
}

}  // namespace

void Node::presence_subscribe_begin(Shard& shard, const SubscribeRequest& req) {
  auto& record = shard.channels[req.channel];
  if (!record.presence) record.presence = std::make_unique<presence::ChannelPresence>();
  record.presence->begin(req.client);
}

std::optional<Failure> Node::presence_admit(Shard& shard, const SubscribeRequest& req,
                                            const Namespace* ns, bool read_ok) {
  auto it = shard.channels.find(req.channel);
  if (it == shard.channels.end() || !it->second.presence) return std::nullopt;
  presence::ChannelPresence& p = *it->second.presence;
  presence::Limits limits;
  bool announce = false;
  if (ns) {
    limits = {ns->options.presence_max_members, ns->options.max_users};
    announce = ns->options.join_leave;
  }
  // Changes queued before this member arrived go out before its `subscribed`
  // reply: a member is told only of changes after it (its own join first).
  if (read_ok) flush_announcements(shard, req.channel);
  const size_t before = p.clients();
  const auto admission =
      p.admit(presence::Member{req.client, req.user, req.info}, limits, read_ok, announce);
  shard.counters->presence_members.add(static_cast<int64_t>(p.clients() - before));
  if (admission == presence::Admission::admitted && shard.store->shared())
    shard.store->presence_add(req.channel, engine::PresenceMember{req.client, req.user, req.info});
  if (p.has_announcements()) shard.announcing.push_back(req.channel);
  switch (admission) {
    case presence::Admission::full:
      return Failure{protocol::ErrorCode::channel_full,
                     "channel " + req.channel + " is full (max_users " +
                         std::to_string(limits.max_users) + ")",
                     {}};
    case presence::Admission::cancelled:
      erase_if_idle(shard, req.channel);
      break;
    case presence::Admission::admitted:
    case presence::Admission::failed:
      break;
  }
  return std::nullopt;
}

void Node::presence_unsubscribe(Shard& shard, const std::string& channel,
                                const std::string& client) {
  auto it = shard.channels.find(channel);
  if (it == shard.channels.end() || !it->second.presence) return;
  const Namespace* ns = shard.namespaces->find(channel);
  const size_t before = it->second.presence->clients();
  it->second.presence->remove(client, ns && ns->options.join_leave);
  shard.counters->presence_members.sub(
      static_cast<int64_t>(before - it->second.presence->clients()));
  if (it->second.presence->clients() < before && shard.store->shared())
    shard.store->presence_remove(channel, client);
  if (it->second.presence->has_announcements()) shard.announcing.push_back(channel);
}

void Node::flush_announcements(Shard& shard, const std::string& channel) {
  auto it = shard.channels.find(channel);
  if (it == shard.channels.end() || !it->second.presence ||
      !it->second.presence->has_announcements())
    return;
  const auto list = it->second.presence->take_announcements();
  if (shard.store->shared()) {
    // This node's own joins and leaves go to the other nodes' subscribers.
    for (const auto& a : list) {
      if (a.remote) continue;
      engine::RemoteMessage m;
      m.kind = a.join ? engine::RemoteMessage::Kind::join : engine::RemoteMessage::Kind::leave;
      m.channel = channel;
      m.member = engine::PresenceMember{a.member.client, a.member.user, a.member.info};
      m.user_edge = a.user_edge;
      shard.store->broadcast(m);
    }
  }
  deliver_to_workers(shard, channel, announcement_frames(channel, list));
}

void Node::end_of_turn(unsigned index) {
  Shard& shard = *shards_[index];
  if (shard.announcing.empty()) return;
  std::vector<std::string> channels;
  channels.swap(shard.announcing);
  for (const auto& channel : channels) flush_announcements(shard, channel);
}

void Node::presence(unsigned from, std::string channel, bool stats_only,
                    std::function<void(PresenceResult)> done) {
  std::optional<Failure> failure;
  const Namespace* ns = find_namespace(from, channel, failure);
  if (ns && !ns->options.presence)
    failure = Failure{protocol::ErrorCode::forbidden, "presence is not enabled on " + channel, {}};
  if (failure) {
    PresenceResult r;
    r.failure = std::move(failure);
    done(std::move(r));
    return;
  }
  const unsigned owner = owner_of(channel);
  post(owner, [this, owner, from, stats_only, channel = std::move(channel),
               done = std::move(done)]() mutable {
    Shard& shard = *shards_[owner];
    if (shard.store->shared()) {
      presence_shared(owner, from, std::move(channel), stats_only, std::move(done));
      return;
    }
    PresenceResult r;
    r.members_json = "[]";
    r.users = 0;
    auto it = shard.channels.find(channel);
    if (it != shard.channels.end() && it->second.presence) {
      // Joins and leaves queued before this request go out before its reply.
      flush_announcements(shard, channel);
      const auto& p = *it->second.presence;
      r.clients = p.clients();
      r.users = p.users();
      r.complete = p.complete();
      if (!stats_only) r.members_json = p.members_json();
    }
    post(from, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  });
}

void Node::presence_shared(unsigned owner, unsigned from, std::string channel, bool stats_only,
                           std::function<void(PresenceResult)> done) {
  Shard& shard = *shards_[owner];
  // Joins and leaves queued before this request go out before its reply, and
  // this node's members added before it are in the store's answer (its
  // calls run in order).
  flush_announcements(shard, channel);
  const Namespace* ns = shard.namespaces->find(channel);
  const size_t max_members = ns ? ns->options.presence_max_members : 1000;
  shard.store->presence_read(channel, [this, from, stats_only, max_members, done = std::move(done)](
                                          engine::PresenceReadResult pr) mutable {
    PresenceResult r;
    if (!pr.ok) {
      r.failure =
          Failure{pr.unavailable ? protocol::ErrorCode::unavailable : protocol::ErrorCode::internal,
                  "presence could not be read from the engine; retry later: " + pr.error,
                  {}};
    } else {
      auto merged = presence::merge_presence(pr.members, max_members, !stats_only);
      r.clients = merged.clients;
      r.users = merged.users;
      r.complete = merged.complete;
      r.members_json = std::move(merged.members_json);
    }
    post(from, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  });
}

void Node::presence_remote(Shard& shard, const engine::RemoteMessage& message) {
  auto it = shard.channels.find(message.channel);
  if (it == shard.channels.end() || !it->second.presence) return;
  const Namespace* ns = shard.namespaces->find(message.channel);
  if (!ns || !ns->options.join_leave) return;
  it->second.presence->announce_remote(presence::Announcement{
      message.kind == engine::RemoteMessage::Kind::join,
      presence::Member{message.member.client, message.member.user, message.member.info},
      message.user_edge});
  shard.announcing.push_back(message.channel);
}

}  // namespace herald::core
