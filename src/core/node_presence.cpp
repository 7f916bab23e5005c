// Node, presence: each owned channel's presence::ChannelPresence, fed by the
// owner's subscribe/unsubscribe stream, the presence queries answered from
// it, and the join/leave messages sent once per loop turn. See node.hpp and
// src/presence/channel_presence.hpp.
#include <boost/asio/post.hpp>

#include "core/node_internal.hpp"
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
  if (it->second.presence->has_announcements()) shard.announcing.push_back(channel);
}

void Node::flush_announcements(Shard& shard, const std::string& channel) {
  auto it = shard.channels.find(channel);
  if (it == shard.channels.end() || !it->second.presence ||
      !it->second.presence->has_announcements())
    return;
  const auto list = it->second.presence->take_announcements();
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

}  // namespace herald::core
