// The memory engine: each channel's recent events in RAM, bounded by count and
// age (the channel's Retention when given, else the engine's limits), with offsets that count up
// from 1 and are never reused while the process lives. A restart starts a new random epoch, which
// tells clients that offsets from before it mean nothing now. Every channel takes the process's
// epoch until it is removed: remove() drops its events and gives it an epoch of its own (a new
// random one at each removal), under which offsets start again at 1, so an offset is never given
// twice within one epoch.
//
// Idempotency keys: a channel that was published to with a key gets a
// KeyIndex (engine/key_index.hpp), pruned on every keyed append; channels
// never given a key pay one null pointer.
//
// Each worker's ShardStore keeps its own channels and is only ever used from
// that worker's thread, so nothing here takes a lock. Calls complete
// synchronously: `done` runs before append()/read()/remove() returns, on the caller's
// thread (which is the shard's executor), so callbacks for a channel come in
// call order as the interface requires.
#include "engine/memory/memory_engine.hpp"

#include <algorithm>
#include <boost/unordered/unordered_map.hpp>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/channel_key.hpp"  // header-only, std only: a compact table key
#include "engine/clock_and_epoch.hpp"
#include "engine/key_index.hpp"
#include "engine/memory/packed_event.hpp"

namespace herald::engine {
namespace {

using core::ChannelKey;

// A FIFO of events in one growable ring buffer, 24 bytes. Unlike std::deque
// it holds no memory while empty, which matters for the many channels that
// are idle or whose events have all expired; and its first slot is inline,
// so a channel holding one event needs no block for the ring.
class EventRing {
 public:
  EventRing() : one_() {}
  EventRing(EventRing&& o) noexcept { take(o); }
  EventRing& operator=(EventRing&& o) noexcept {
    if (this != &o) {
      destroy();
      take(o);
    }
    return *this;
  }
  EventRing(const EventRing&) = delete;
  EventRing& operator=(const EventRing&) = delete;
  ~EventRing() { destroy(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const PackedEvent& operator[](size_t i) const { return slots()[(head_ + i) % capacity_]; }
  const PackedEvent& front() const { return slots()[head_]; }

  void push_back(PackedEvent ev, size_t max_capacity) {
    if (size_ == capacity_) grow(max_capacity);
    slots()[(head_ + size_) % capacity_] = std::move(ev);
    ++size_;
  }

  void pop_front() {
    slots()[head_] = PackedEvent{};  // free the event now, not when overwritten
    head_ = (head_ + 1) % capacity_;
    if (--size_ == 0) release();
  }

 private:
  bool on_heap() const { return capacity_ > 1; }
  PackedEvent* slots() { return on_heap() ? many_ : &one_; }
  const PackedEvent* slots() const { return on_heap() ? many_ : &one_; }

  // From the inline slot, doubling: most channels hold few events (an idle
  // channel with one event paid for 8 slots, ~1.4 KB), and a busy one
  // reaches its capacity after a handful of moves of its events.
  void grow(size_t max_capacity) {
    const size_t capacity = std::max<size_t>(
        size_ + 1, std::min<size_t>(size_t{capacity_} * 2, std::max<size_t>(max_capacity, 1)));
    auto* bigger = new PackedEvent[capacity];
    PackedEvent* old = slots();
    for (uint32_t i = 0; i < size_; ++i) bigger[i] = std::move(old[(head_ + i) % capacity_]);
    destroy();
    many_ = bigger;
    capacity_ = static_cast<uint32_t>(capacity);
    head_ = 0;
  }

  void release() {
    destroy();
    new (&one_) PackedEvent();
    capacity_ = 1;
    head_ = 0;
  }

  // Ends the active member; one of them is made again before any other use.
  void destroy() {
    if (on_heap())
      delete[] many_;
    else
      one_.~PackedEvent();
  }

  // Into a ring whose members were destroyed (or never made): `o`'s events;
  // `o` is left empty.
  void take(EventRing& o) {
    if (o.on_heap()) {
      many_ = o.many_;
      new (&o.one_) PackedEvent();
    } else {
      new (&one_) PackedEvent(std::move(o.one_));
    }
    capacity_ = o.capacity_;
    head_ = o.head_;
    size_ = o.size_;
    o.capacity_ = 1;
    o.head_ = o.size_ = 0;
  }

  union {
    PackedEvent one_;    // capacity_ == 1: the one slot
    PackedEvent* many_;  // capacity_ > 1: new[] of capacity_ slots
  };
  uint32_t capacity_ = 1;  // capacities are bounded by history sizes, far below 2^32
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

struct Channel {
  uint64_t last_offset = 0;  // last offset given; the events held are
  EventRing events;          // last_offset - size + 1 .. last_offset
  int64_t created_ms = 0;    // ts_ms of offset 1 in this epoch (0: none yet)
  // What few channels have, in one box: an epoch of their own (after
  // remove(); empty: the process's) and the idempotency keys (made by the
  // first keyed append).
  struct Rare {
    std::string epoch;
    std::unique_ptr<KeyIndex> keys;
  };
  std::unique_ptr<Rare> rare;
};
// 48 bytes: a channel's node in the map is then one 80-byte malloc step
// (issue 15: paid per idle channel holding an event).
static_assert(sizeof(Channel) == 48);

class MemoryShardStore final : public ShardStore {
 public:
  MemoryShardStore(const MemoryLimits& limits, std::string epoch, uint64_t key_seed, Clock now_ms)
      : defaults_{limits.max_events_per_channel, limits.max_age_ms},
        epoch_(std::move(epoch)),
        key_seed_(key_seed),
        now_ms_(std::move(now_ms)) {}

  void append(const std::string& channel, NewEvent ev, AppendHandler done) override {
    const Retention keep = ev.retention.value_or(defaults_);
    Channel& ch = channel_at(channel);
    const bool keyed = !ev.idempotency_key.empty() && ev.idempotency_max_keys > 0;
    const uint64_t key = keyed ? KeyIndex::hash(ev.idempotency_key, key_seed_) : 0;
    if (keyed) {
      if (!ch.rare) ch.rare = std::make_unique<Channel::Rare>();
      if (!ch.rare->keys) ch.rare->keys = std::make_unique<KeyIndex>();
      ch.rare->keys->prune(ev.ts_ms, ch.last_offset, ev.idempotency_max_keys);
      if (const KeyIndex::Record* known = ch.rare->keys->find(key, ev.ts_ms)) {
        AppendResult r{
            known->fingerprint == ev.fingerprint, {}, known->offset, epoch_of(ch), ch.created_ms};
        r.replayed = r.ok;
        r.conflict = !r.ok;
        if (r.conflict) {
          r.error = "idempotency key conflict";
          r.idempotency_key = std::move(ev.idempotency_key);
        }
        return done(std::move(r));
      }
    }
    const uint64_t offset = ++ch.last_offset;
    if (keyed) {
      ch.rare->keys->prune(ev.ts_ms, offset, ev.idempotency_max_keys);
      ch.rare->keys->add(
          key, {offset, ev.fingerprint, KeyIndex::expiry(ev.ts_ms, ev.idempotency_window_ms)});
    }
    if (offset == 1) ch.created_ms = ev.ts_ms;
    // A smaller retention (after a reload) may leave more than one event to drop.
    drop_beyond(ch, keep.max_events > 0 ? keep.max_events - 1 : 0);
    if (keep.max_events > 0) {
      ch.events.push_back(
          PackedEvent{ev.ts_ms, ev.event, ev.data, ev.from_client, ev.from_user, ev.from_info},
          keep.max_events);
    }
    drop_expired(ch, keep.max_age_ms);
    done(AppendResult{true, {}, offset, epoch_of(ch), ch.created_ms});
  }

  void read(const std::string& channel, const HistoryQuery& query, HistoryHandler done) override {
    HistoryResult result;
    result.ok = true;
    result.epoch = epoch_;
    const auto it = channels_.find(channel);  // reading never creates a channel
    if (it == channels_.end()) return done(std::move(result));

    Channel& ch = it->second;
    const Retention keep = query.retention.value_or(defaults_);
    drop_beyond(ch, keep.max_events);
    drop_expired(ch, keep.max_age_ms);
    result.epoch = epoch_of(ch);
    result.created_ms = ch.created_ms;
    result.last_offset = ch.last_offset;
    if (ch.events.empty()) return done(std::move(result));

    // Offsets held are contiguous: [first, last], index = offset - first.
    const uint64_t first = ch.last_offset - ch.events.size() + 1;
    result.first_offset = first;
    uint64_t lo = first;
    uint64_t hi = ch.last_offset;
    if (query.after) {
      if (*query.after >= hi) return done(std::move(result));
      lo = std::max(lo, *query.after + 1);
    }
    if (query.before) {
      if (*query.before <= lo) return done(std::move(result));
      hi = std::min(hi, *query.before - 1);
    }
    const uint64_t count = std::min<uint64_t>(query.limit, hi - lo + 1);
    if (count == 0) return done(std::move(result));
    // With `after`: the oldest `count` in range; otherwise the newest.
    const uint64_t from = query.after ? lo : hi - count + 1;
    result.events.reserve(count);
    for (uint64_t off = from; off < from + count; ++off)
      result.events.push_back(ch.events[off - first].unpack(off));
    done(std::move(result));
  }

  void remove(const std::string& channel, RemoveHandler done) override {
    Channel& ch = channel_at(channel);  // kept, so that its new epoch is remembered
    std::string epoch;
    do {
      epoch = random_epoch();
    } while (epoch == epoch_of(ch));
    ch = Channel{};
    ch.rare = std::make_unique<Channel::Rare>();
    ch.rare->epoch = epoch;
    done(RemoveResult{true, {}, std::move(epoch)});
  }

 private:
  const std::string& epoch_of(const Channel& ch) const {
    return ch.rare && !ch.rare->epoch.empty() ? ch.rare->epoch : epoch_;
  }

  // Drops events older than max_age_ms from the oldest end. Timestamps are
  // given by the channel's owner in offset order, so the oldest end is where
  // expired events are.
  void drop_expired(Channel& ch, int64_t max_age_ms) {
    if (max_age_ms <= 0 || ch.events.empty()) return;
    const int64_t cutoff = now_ms_() - max_age_ms;
    while (!ch.events.empty() && ch.events.front().ts_ms() < cutoff) ch.events.pop_front();
  }

  // Drops the oldest events until at most `max_events` are left.
  static void drop_beyond(Channel& ch, size_t max_events) {
    while (ch.events.size() > max_events) ch.events.pop_front();
  }

  const Retention defaults_;
  const std::string epoch_;
  const uint64_t key_seed_;  // for KeyIndex::hash
  const Clock now_ms_;
  Channel& channel_at(const std::string& name) {
    auto it = channels_.find(name);
    if (it == channels_.end()) it = channels_.emplace(ChannelKey(name), Channel{}).first;
    return it->second;
  }

  // Node-based (references stay valid across calls), without a cached hash
  // and with a 16-byte key: a channel's node is 80 bytes, where
  // std::unordered_map<std::string, Channel>'s was 112.
  boost::unordered_map<ChannelKey, Channel, ChannelKey::Hash, ChannelKey::Equal> channels_;
};

class MemoryEngine final : public Engine {
 public:
  MemoryEngine(const MemoryLimits& limits, Clock now_ms)
      : limits_(limits), epoch_(random_epoch()), now_ms_(std::move(now_ms)) {}

  std::string_view name() const override { return "memory"; }

  // Callbacks run synchronously on the caller's thread, which is the shard's
  // executor, so the executor itself is not needed.
  std::unique_ptr<ShardStore> open_shard(unsigned /*shard*/,
                                         boost::asio::any_io_executor /*executor*/) override {
    return std::make_unique<MemoryShardStore>(limits_, epoch_, key_seed_, now_ms_);
  }

 private:
  const MemoryLimits limits_;
  const std::string epoch_;  // one per engine, i.e. per process start
  const uint64_t key_seed_ = KeyIndex::random_seed();
  const Clock now_ms_;
};

}  // namespace

std::unique_ptr<Engine> make_memory_engine(const MemoryLimits& limits, Clock now_ms) {
  return std::make_unique<MemoryEngine>(limits, now_ms ? std::move(now_ms) : Clock(system_now_ms));
}

std::unique_ptr<Engine> make_memory_engine(const MemoryLimits& limits) {
  return make_memory_engine(limits, system_now_ms);
}

}  // namespace herald::engine
