// Presence of one channel, as its owner worker keeps it: who is subscribed
// (members: one per connection, with its user and token info), how many
// distinct users that is, and the join/leave announcements of the current
// loop turn. Only the owner's thread touches it (core::Node holds one per
// channel of a namespace with presence, join_leave or max_users).
//
// Exactness. The owner sees every subscribe and unsubscribe of the channel
// in order, but a subscribe is only decided once its history read completes
// (the engine may answer later, and a connection may close meanwhile). So a
// subscribe first becomes *pending* (begin), then is admitted or refused
// when its read completes (admit); an unsubscribe that overtakes its own
// read cancels the pending entry instead of removing a member. Every
// subscribe is matched by exactly one unsubscribe (core::Node's contract),
// which also consumes the entry of a refused or failed subscribe. Hence the
// members are exactly the connections whose subscribe succeeded and that
// have not unsubscribed.
//
// Limits. Up to `max_members` members the full list is kept; one more and
// the channel keeps only the connection ids (to stay exact) until it is
// empty again: no info, no users count, no join/leave. `max_users` refuses
// a subscribe that would add a distinct user beyond it (anonymous members
// count one user each).
//
// Announcements. Joins and leaves are queued and taken once per loop turn
// (take_announcements), so the owner sends one batch per channel and worker
// per turn however many members came and went. Other nodes' joins and leaves
// (announce_remote) join the same queue; they change no member here (this
// node's members are its own connections; every node's are read from the
// engine).
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::presence {

struct Member {
  std::string client;
  std::string user;  // "" for anonymous connections
  std::string info;  // raw JSON of the token's info, "" for none
};

struct Limits {
  size_t max_members = 1000;
  size_t max_users = 0;  // 0: unlimited
};

// One join or leave to send to the channel's subscribers.
struct Announcement {
  bool join = true;
  Member member;
  bool user_edge = false;  // the user's first (join) or last (leave) connection
  // A member of another node (several nodes, the redis engine): sent to this
  // node's subscribers only, not broadcast again; its user_edge is that
  // node's (user edges are per node).
  bool remote = false;
};

enum class Admission { admitted, full, cancelled, failed };

class ChannelPresence {
 public:
  // A subscribe of `client` reached the owner; its read is in flight.
  void begin(const std::string& client);

  // Its read completed. `read_ok` false (the engine failed): the subscribe
  // fails and the entry waits for its unsubscribe. Otherwise the member is
  // admitted (and a join queued when `announce`), refused as full, or
  // dropped because its connection already unsubscribed (cancelled).
  Admission admit(Member member, const Limits& limits, bool read_ok, bool announce);

  // An unsubscribe of `client` (its subscribe's match); queues a leave when
  // it was a member and `announce`.
  void remove(const std::string& client, bool announce);

  // The channel was destroyed: every member is gone without a leave.
  // Pending subscribes stay: they belong to the channel's next life.
  void clear_members();

  // Nothing left to track (no member, no pending subscribe).
  bool idle() const { return members_.empty() && pending_.empty(); }

  size_t clients() const { return members_.size(); }
  // Distinct verified users; unknown over the member limit.
  std::optional<size_t> users() const;
  bool complete() const { return !counts_only_; }

  // The members as a JSON array of {"client","user","info"} ("[]" over the
  // member limit).
  std::string members_json() const;

  // Another node's join or leave, queued with this node's own (so a new
  // member here is still told only of what was queued after it). Dropped
  // while this node keeps counts only, like its own.
  void announce_remote(Announcement a);

  bool has_announcements() const { return !announcements_.empty(); }
  // The joins and leaves since the last call, in order.
  std::vector<Announcement> take_announcements();

 private:
  struct Record {
    std::string user;
    std::string info;
  };
  enum class PendingState : uint8_t { reading, cancelled, failed };
  struct Pending {
    std::string client;
    PendingState state;
  };
  Pending* find_pending(std::string_view client);
  void erase_pending(Pending* p);
  // Distinct users plus anonymous members: what max_users counts.
  size_t persons() const { return users_.size() + anonymous_; }

  boost::unordered_flat_map<std::string, Record> members_;
  boost::unordered_flat_map<std::string, uint32_t> users_;  // user -> members (full mode)
  size_t anonymous_ = 0;                                    // anonymous members (full mode)
  std::vector<Pending> pending_;  // few: subscribes whose read is in flight
  std::vector<Announcement> announcements_;
  bool counts_only_ = false;
};

}  // namespace herald::presence
