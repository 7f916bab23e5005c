// ChannelSequencer: the order in which one watched channel's stored events
// are handed over to the core on one node (engine.hpp, "Several nodes"),
// whether they come from this node's appends (their script replies) or from
// other nodes (pub/sub messages, or XRANGE fills of the gaps pub/sub left).
// Pure logic, no I/O: the redis store (redis_engine.cpp) feeds it what Redis
// answered, in the order it answered, hands over what it says in `Out`, and
// sends the fills it asks for. Testable without Redis.
//
// State: `known` (the last offset handed over and its epoch) or unknown
// (right after watch(), and after a reset). The rules, with the reasons in
// LAYOUT.md ("Cross-node fan-out"):
//  - known: a remote event <= last is dropped, last+1 is handed over, higher
//    is held (by offset) and the gap filled; an own append's completion is
//    released only when it is last+1 (the store keeps it at the head of its
//    ops FIFO until then); a fill that does not hold the whole missing range,
//    an event or reply of another epoch, or more than max_held messages
//    waiting or missing, a fill without answer: a reset ("resubscribe") is
//    handed over and the state is unknown. An R2 from another node: a reset
//    with its reason.
//  - fills ask for (covered, upto]: `covered` ends the run of offsets above
//    `last` already held or answered to this node's appends; upto is the
//    highest offset known to exist (held, needed by the op at the head, or
//    a check's meta `last`). One fill at a time per channel.
//  - unknown: nobody of this node listens yet (the core attaches no
//    subscriber before a read of the channel answered), so events go through
//    as they come (in offset order, once a read out meanwhile answered);
//    the first read sent after watch() that answers sets `known` from its
//    result (the store passes only those to read_ready).
//  - reads: while a read of the channel is outstanding (sent, callback not
//    run), remote events are handed over only up to what that read or an
//    own append ahead of it in the FIFO needs (the "ceiling"), so a read's
//    result is never older than what was handed over before its callback:
//    every remote event handed over before the read was sent was published
//    before the read ran in Redis. At the FIFO head, a read whose last_offset
//    is above `last` is held until the events up to it were handed over
//    (filled if needed); its callback then sees exactly those.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.hpp"

namespace herald::engine::redis {

class ChannelSequencer {
 public:
  // What the caller must do after a call, in this order: hand `handed` over
  // (events and resets, with `channel` set), then send `fill` if set:
  // the channel's meta epoch and stream entries in (after, upto], answered
  // through fill_answered(id, ...) or fill_failed(id).
  struct Fill {
    uint64_t after = 0;
    uint64_t upto = 0;
    uint64_t id = 0;
  };
  struct Out {
    std::vector<RemoteMessage> handed;
    std::optional<Fill> fill;
    // Redis lost acknowledged writes of the channel (restarted from an older
    // snapshot, or a failover to a replica that lagged): its meta went back
    // below offsets already handed over under this epoch, so the next
    // publishes would reuse them. The caller gives the channel a new epoch
    // in Redis if it still has this one (a reset was handed over already).
    std::optional<std::string> rolled_back;
  };
  // What a check may not find below: the epoch and last offset handed over
  // when it was sent (floor()); meta's `last` never goes back within an
  // epoch unless Redis lost writes.
  using Floor = std::optional<std::pair<std::string, uint64_t>>;

  explicit ChannelSequencer(std::string channel, size_t max_held = 10000);

  bool known() const { return known_; }
  uint64_t last() const { return last_; }
  const std::string& epoch() const { return epoch_; }
  size_t held() const { return pending_.size(); }
  bool filling() const { return filling_; }
  size_t reads_outstanding() const { return reads_; }

  // A stored event of another node (pub/sub).
  void remote_event(const std::string& epoch, StoredEvent event, Out& out);
  // An R2 of another node: hands over a reset with `reason`; unknown.
  void remote_reset(const std::string& reason, Out& out);

  // This node's append was answered `ok` (not replayed) with offset and
  // epoch; its callback waits in the FIFO. A fill then never hands that
  // offset over as a remote event.
  void own_stored(uint64_t offset, const std::string& epoch);
  // The append is at the FIFO head: true when its callback may run now (then
  // call own_delivered after it ran); false: hold it, call again later.
  bool own_ready(uint64_t offset, const std::string& epoch, Out& out);
  void own_delivered(uint64_t offset, const std::string& epoch, Out& out);

  // A read of the channel was sent (counted until read_delivered).
  void read_sent();
  // A successful read is at the FIFO head: true when its callback may run
  // now (state updated from it), false: hold it, call again later.
  bool read_ready(const std::string& epoch, uint64_t last_offset, Out& out);
  // A read's callback ran (or is about to, failed); counted: read_sent was
  // called for it.
  void read_delivered(bool counted, Out& out);

  // This node's remove of the channel succeeded (its callback runs now).
  void removed(const std::string& epoch, Out& out);

  // Taken when a check is sent, passed back with its answer.
  Floor floor() const;
  // The channel's meta (nullopt epoch: no meta) read after the pub/sub
  // subscription became active (or came back): fills up to `last`.
  void check_answered(const std::optional<std::string>& epoch, uint64_t last, const Floor& floor,
                      Out& out);

  void fill_answered(uint64_t id, const std::optional<std::string>& epoch,
                     std::vector<StoredEvent> entries, Out& out);
  // The fill got no answer (connection failed): reset, unknown. True when
  // it was the fill in flight: the caller then fails the op it holds for
  // this channel, if any, with `unavailable`.
  bool fill_failed(uint64_t id, Out& out);

 private:
  struct Held {
    std::string epoch;
    StoredEvent event;
  };

  void hand_over(Held&& held, Out& out);
  void reset(const std::string& reason, Out& out);
  void rolled_back(const std::string& epoch, Out& out);
  void drain(Out& out);
  void flush_unknown(Out& out);
  void maybe_fill(Out& out);
  bool covered(uint64_t offset) const;
  uint64_t covered_to();

  const std::string channel_;
  const size_t max_held_;
  bool known_ = false;
  uint64_t last_ = 0;
  std::string epoch_;
  std::map<uint64_t, Held> pending_;                // remote events waiting, by offset
  std::set<std::pair<uint64_t, std::string>> own_;  // own appends answered, not delivered
  size_t reads_ = 0;                                // reads sent, callback not run
  std::optional<uint64_t> head_ceiling_;            // held op at the FIFO head needs up to here
  uint64_t check_target_ = 0;                       // meta's last from a check
  // A check answered while unknown with a read out: applied if that read
  // finds the same epoch (the check may have run after the read).
  std::optional<std::pair<std::string, uint64_t>> early_check_;
  bool filling_ = false;
  uint64_t fill_id_ = 0;  // of the fill in flight; bumped by resets
  uint64_t fill_upto_ = 0;
  uint64_t covered_to_ = 0;  // (last, covered_to] all held or own: never filled
};

}  // namespace herald::engine::redis
