// ChannelPresence: members, users and announcements of one channel; see
// channel_presence.hpp for the design.
#include "presence/channel_presence.hpp"

#include <algorithm>

#include "protocol/messages.hpp"

namespace herald::presence {

ChannelPresence::Pending* ChannelPresence::find_pending(std::string_view client) {
  for (auto& p : pending_)
    if (p.client == client) return &p;
  return nullptr;
}

void ChannelPresence::erase_pending(Pending* p) {
  *p = std::move(pending_.back());
  pending_.pop_back();
}

void ChannelPresence::begin(const std::string& client) {
  pending_.push_back(Pending{client, PendingState::reading});
}

Admission ChannelPresence::admit(Member member, const Limits& limits, bool read_ok, bool announce) {
  Pending* p = find_pending(member.client);
  // No entry: presence was turned on by a reload after this subscribe
  // arrived; it is not tracked (its unsubscribe finds nothing either).
  if (!p) return Admission::cancelled;
  if (p->state == PendingState::cancelled) {
    erase_pending(p);
    return Admission::cancelled;
  }
  // A refused or failed subscribe keeps its entry until its unsubscribe.
  if (!read_ok) {
    p->state = PendingState::failed;
    return Admission::failed;
  }

  const bool anonymous = member.user.empty();
  if (!counts_only_) {
    const bool new_person = anonymous || !users_.contains(member.user);
    if (limits.max_users) {
      // A capped channel never switches to counts only: it needs its users.
      if ((new_person && persons() >= limits.max_users) || members_.size() >= limits.max_members) {
        p->state = PendingState::failed;
        return Admission::full;
      }
    } else if (members_.size() >= limits.max_members) {
      // One more than the limit: keep the connection ids only.
      counts_only_ = true;
      for (auto& [client, record] : members_) record = Record{};
      users_.clear();
      anonymous_ = 0;  // joins queued before the switch still go out
    }
  }
  erase_pending(p);
  if (counts_only_) {
    members_.emplace(std::move(member.client), Record{});
    return Admission::admitted;
  }
  bool user_edge = true;
  if (anonymous)
    ++anonymous_;
  else
    user_edge = ++users_[member.user] == 1;
  auto [it, inserted] = members_.emplace(member.client, Record{member.user, member.info});
  if (!inserted) it->second = Record{member.user, member.info};
  if (announce) announcements_.push_back(Announcement{true, std::move(member), user_edge});
  return Admission::admitted;
}

void ChannelPresence::remove(const std::string& client, bool announce) {
  if (Pending* p = find_pending(client)) {
    if (p->state == PendingState::reading)
      p->state = PendingState::cancelled;  // its admit() drops it
    else
      erase_pending(p);  // a refused or failed subscribe, now matched
    return;
  }
  auto it = members_.find(client);
  if (it == members_.end()) return;  // gone with a destroy
  Record record = std::move(it->second);
  members_.erase(it);
  const bool counted_only = counts_only_;
  if (members_.empty()) counts_only_ = false;  // an empty channel starts over
  if (counted_only) return;
  bool user_edge = true;
  if (record.user.empty()) {
    --anonymous_;
  } else if (auto u = users_.find(record.user); u != users_.end()) {
    user_edge = --u->second == 0;
    if (user_edge) users_.erase(u);
  }
  if (announce)
    announcements_.push_back(Announcement{
        false, Member{client, std::move(record.user), std::move(record.info)}, user_edge});
}

void ChannelPresence::clear_members() {
  members_.clear();
  users_.clear();
  anonymous_ = 0;
  counts_only_ = false;
  announcements_.clear();
}

std::optional<size_t> ChannelPresence::users() const {
  if (counts_only_) return std::nullopt;
  return users_.size();
}

std::string ChannelPresence::members_json() const {
  std::string out = "[";
  if (!counts_only_) {
    for (const auto& [client, record] : members_) {
      if (out.size() > 1) out += ',';
      protocol::append_member(out, client, record.user, record.info);
    }
  }
  out += ']';
  return out;
}

void ChannelPresence::announce_remote(Announcement a) {
  if (counts_only_) return;
  a.remote = true;
  announcements_.push_back(std::move(a));
}

std::vector<Announcement> ChannelPresence::take_announcements() {
  std::vector<Announcement> out;
  out.swap(announcements_);
  return out;
}

}  // namespace herald::presence
