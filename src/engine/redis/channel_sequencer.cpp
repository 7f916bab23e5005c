// The per-channel hand-over order (channel_sequencer.hpp). Every path that
// gives up on proving order goes through reset(), which hands over a reset
// ("resubscribe" unless another node sent its own reason) and forgets
// everything held: the subscribers it ends subscribe again, with a read
// that makes the state known again.
#include "engine/redis/channel_sequencer.hpp"

#include <algorithm>
#include <limits>

namespace herald::engine::redis {

ChannelSequencer::ChannelSequencer(std::string channel, size_t max_held)
    : channel_(std::move(channel)), max_held_(max_held) {}

void ChannelSequencer::hand_over(Held&& held, Out& out) {
  RemoteMessage m;
  m.kind = RemoteMessage::Kind::event;
  m.channel = channel_;
  m.epoch = std::move(held.epoch);
  m.event = std::move(held.event);
  out.handed.push_back(std::move(m));
}

void ChannelSequencer::reset(const std::string& reason, Out& out) {
  RemoteMessage m;
  m.kind = RemoteMessage::Kind::reset;
  m.channel = channel_;
  m.reason = reason;
  out.handed.push_back(std::move(m));
  known_ = false;
  last_ = 0;
  epoch_.clear();
  pending_.clear();
  head_ceiling_.reset();
  check_target_ = 0;
  covered_to_ = 0;
  early_check_.reset();
  filling_ = false;
  ++fill_id_;  // a fill in flight answers for the old state: ignored
}

void ChannelSequencer::rolled_back(const std::string& epoch, Out& out) {
  out.rolled_back = epoch;
  reset("resubscribe", out);
}

bool ChannelSequencer::covered(uint64_t offset) const {
  return pending_.contains(offset) || own_.contains({offset, epoch_});
}

void ChannelSequencer::remote_event(const std::string& epoch, StoredEvent event, Out& out) {
  const uint64_t offset = event.offset;
  if (own_.contains({offset, epoch})) return;
  if (!known_) {
    if (reads_ == 0) {
      hand_over(Held{epoch, std::move(event)}, out);
      return;
    }
    // Paused: the outstanding read decides what is already in its result.
    pending_.insert_or_assign(offset, Held{epoch, std::move(event)});
    if (pending_.size() > max_held_) reset("resubscribe", out);
    return;
  }
  if (epoch != epoch_) {
    reset("resubscribe", out);
    return;
  }
  if (offset <= last_) return;
  pending_.insert_or_assign(offset, Held{epoch, std::move(event)});
  if (pending_.size() > max_held_) {
    reset("resubscribe", out);
    return;
  }
  drain(out);
  maybe_fill(out);
}

void ChannelSequencer::remote_reset(const std::string& reason, Out& out) {
  reset(reason, out);
}

void ChannelSequencer::own_stored(uint64_t offset, const std::string& epoch) {
  own_.emplace(offset, epoch);
}

bool ChannelSequencer::own_ready(uint64_t offset, const std::string& epoch, Out& out) {
  if (!known_) return true;
  if (epoch != epoch_) {  // the channel was removed elsewhere meanwhile
    reset("resubscribe", out);
    return true;
  }
  // Below last + 1 only if Redis lost writes: last was handed over after
  // this append ran, and no offset passes an own append's before its
  // callback (own_ keeps fills and pub/sub from handing it over).
  if (offset <= last_) {
    rolled_back(epoch_, out);
    return true;
  }
  if (offset == last_ + 1) return true;
  head_ceiling_ = offset - 1;
  drain(out);
  if (!known_ || offset <= last_ + 1) return true;
  maybe_fill(out);
  return !known_;  // a fill too large resets: then it goes
}

void ChannelSequencer::own_delivered(uint64_t offset, const std::string& epoch, Out& out) {
  own_.erase({offset, epoch});
  head_ceiling_.reset();
  if (known_ && epoch == epoch_ && offset > last_) last_ = offset;
  drain(out);
  maybe_fill(out);
}

void ChannelSequencer::read_sent() {
  ++reads_;
}

bool ChannelSequencer::read_ready(const std::string& epoch, uint64_t last_offset, Out& out) {
  if (known_ && epoch != epoch_) reset("resubscribe", out);
  if (!known_) {
    known_ = true;
    epoch_ = epoch;
    last_ = last_offset;
    covered_to_ = 0;
    head_ceiling_.reset();
    check_target_ = 0;
    if (early_check_ && early_check_->first == epoch_) check_target_ = early_check_->second;
    early_check_.reset();
    // What waited while the read was out: older than its result, or of
    // another epoch (the next of those resets), goes.
    std::erase_if(pending_,
                  [&](const auto& p) { return p.first <= last_ || p.second.epoch != epoch_; });
    return true;
  }
  // Never below `last` (remote events handed over before the read was sent
  // were published before it ran); equal: nothing to wait for.
  if (last_offset <= last_) return true;
  head_ceiling_ = last_offset;
  drain(out);
  if (!known_ || last_ >= last_offset) {
    head_ceiling_.reset();
    return true;
  }
  maybe_fill(out);
  return !known_;
}

void ChannelSequencer::read_delivered(bool counted, Out& out) {
  if (counted && reads_ > 0) --reads_;
  head_ceiling_.reset();
  if (!known_) {
    if (reads_ == 0) flush_unknown(out);
    return;
  }
  drain(out);
  maybe_fill(out);
}

void ChannelSequencer::removed(const std::string& epoch, Out& out) {
  known_ = true;
  epoch_ = epoch;
  last_ = 0;
  covered_to_ = 0;
  head_ceiling_.reset();
  check_target_ = 0;
  filling_ = false;
  ++fill_id_;
  std::erase_if(pending_, [&](const auto& p) { return p.second.epoch != epoch_; });
  drain(out);
  maybe_fill(out);
}

ChannelSequencer::Floor ChannelSequencer::floor() const {
  if (!known_) return std::nullopt;
  return std::make_pair(epoch_, last_);
}

void ChannelSequencer::check_answered(const std::optional<std::string>& epoch, uint64_t last,
                                      const Floor& floor, Out& out) {
  // Everything handed over before the check was sent was stored before it
  // ran (the check may legitimately be below `last` now: pub/sub can
  // overtake its reply, so only the floor proves a loss).
  if (epoch && floor && floor->first == *epoch && last < floor->second) {
    if (known_ && epoch_ == *epoch) {
      rolled_back(*epoch, out);
    } else {
      out.rolled_back = *epoch;
    }
    return;
  }
  if (!known_) {  // the next read sets the state
    if (reads_ > 0 && epoch) early_check_.emplace(*epoch, last);
    return;
  }
  if (!epoch || *epoch != epoch_) {
    reset("resubscribe", out);
    return;
  }
  check_target_ = std::max(check_target_, last);
  maybe_fill(out);
}

void ChannelSequencer::fill_answered(uint64_t id, const std::optional<std::string>& epoch,
                                     std::vector<StoredEvent> entries, Out& out) {
  if (!filling_ || id != fill_id_) return;
  filling_ = false;
  if (!known_) return;
  if (!epoch || *epoch != epoch_) {
    reset("resubscribe", out);
    return;
  }
  for (StoredEvent& e : entries) {
    if (e.offset <= last_ || own_.contains({e.offset, epoch_})) continue;
    const uint64_t offset = e.offset;
    pending_.try_emplace(offset, Held{epoch_, std::move(e)});
  }
  // Every offset of the range must now be held or be an own append's.
  if (covered_to() < fill_upto_ || pending_.size() > max_held_) {
    reset("resubscribe", out);
    return;
  }
  drain(out);
  maybe_fill(out);
}

bool ChannelSequencer::fill_failed(uint64_t id, Out& out) {
  if (!filling_ || id != fill_id_) return false;
  filling_ = false;
  if (known_) reset("resubscribe", out);
  return true;
}

void ChannelSequencer::drain(Out& out) {
  if (!known_) return;
  const uint64_t ceiling =
      reads_ > 0 ? head_ceiling_.value_or(last_) : std::numeric_limits<uint64_t>::max();
  while (!pending_.empty()) {
    auto it = pending_.begin();
    if (it->first <= last_) {
      pending_.erase(it);
      continue;
    }
    if (it->first != last_ + 1 || it->first > ceiling) break;
    if (it->second.epoch != epoch_) {
      reset("resubscribe", out);
      return;
    }
    last_ = it->first;
    Held held = std::move(it->second);
    pending_.erase(it);
    hand_over(std::move(held), out);
  }
}

void ChannelSequencer::flush_unknown(Out& out) {
  for (auto& [offset, held] : pending_) hand_over(std::move(held), out);
  pending_.clear();
}

// Offsets above `last` only become covered (held, or an own append
// answered) until handed over, so the covered prefix only grows: extending
// it costs O(1) amortised per message, even with thousands of own appends
// in flight.
uint64_t ChannelSequencer::covered_to() {
  covered_to_ = std::max(covered_to_, last_);
  while (covered(covered_to_ + 1)) ++covered_to_;
  return covered_to_;
}

void ChannelSequencer::maybe_fill(Out& out) {
  if (!known_ || filling_) return;
  uint64_t target = std::max(check_target_, head_ceiling_.value_or(0));
  if (!pending_.empty()) target = std::max(target, pending_.rbegin()->first);
  const uint64_t from = covered_to();
  if (target <= from) return;
  if (target - from > max_held_) {  // more missing than may ever be held
    reset("resubscribe", out);
    return;
  }
  filling_ = true;
  fill_upto_ = target;
  out.fill = Fill{from, target, ++fill_id_};
}

}  // namespace herald::engine::redis
