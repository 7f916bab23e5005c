// The subscribers of channels that live on one worker: channel name -> the
// local sessions subscribed to it. The channel owner sends one frame per
// event to each worker with local subscribers; this table fans it out to
// the sessions of that worker. Only the worker's own thread touches it.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/channel_key.hpp"
#include "ws/shared_frame.hpp"

namespace herald::core {

// A receiver of channel events on a worker (a client session).
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // An event (or join/leave) frame of `channel`.
  virtual void deliver(std::string_view channel, const ws::SharedFrame& frame) = 0;
  // The server ended the subscription to `channel` (destroyed, expired):
  // the subscriber sends `unsubscribed {reason}` and unsubscribes.
  virtual void end(const std::string& channel, std::string_view reason) = 0;
};

// The local subscribers of one channel in one word: a single Subscriber*
// (the usual case: a channel of a worker has one local subscriber), or,
// tagged by the low bit, a heap vector of several. Every byte of a
// LocalSubscribers entry is paid per connection in the idle case (issue 15;
// a small_vector<Subscriber*, 1> took 32 bytes). Order is not kept.
class SubscriberList {
 public:
  SubscriberList() = default;
  SubscriberList(SubscriberList&& o) noexcept : bits_(o.bits_) { o.bits_ = 0; }
  SubscriberList& operator=(SubscriberList&& o) noexcept;
  SubscriberList(const SubscriberList&) = delete;
  SubscriberList& operator=(const SubscriberList&) = delete;
  ~SubscriberList() { delete many(); }

  bool empty() const { return bits_ == 0; }
  size_t size() const;
  void add(Subscriber* s);
  // Removes one occurrence of `s`, if any.
  void remove(Subscriber* s);
  // The subscribers, copied (for walks during which the list may change).
  std::vector<Subscriber*> copy() const;
  // Calls f(Subscriber*) for each; f must not change the list.
  template <class F>
  void for_each(F&& f) const {
    if (const auto* v = many()) {
      for (Subscriber* s : *v) f(s);
    } else if (bits_ != 0) {
      f(one());
    }
  }

 private:
  static constexpr uintptr_t kMany = 1;
  Subscriber* one() const { return reinterpret_cast<Subscriber*>(bits_); }
  std::vector<Subscriber*>* many() const {
    return (bits_ & kMany) ? reinterpret_cast<std::vector<Subscriber*>*>(bits_ & ~kMany) : nullptr;
  }

  uintptr_t bits_ = 0;  // 0: none; low bit clear: one Subscriber*; set: a vector*
};

class LocalSubscribers {
 public:
  void add(const std::string& channel, Subscriber* s);
  void remove(const std::string& channel, Subscriber* s);
  // Queues `frame` on every local subscriber of `channel`.
  void deliver(std::string_view channel, const ws::SharedFrame& frame);
  // Ends every local subscription to `channel` (Subscriber::end).
  void end(const std::string& channel, std::string_view reason);

 private:
  // Flat (open addressing), a 16-byte key and a one-word list: 24 bytes a
  // slot. Most channels of a worker have few local subscribers, and every
  // byte here is paid per connection in the idle case.
  boost::unordered_flat_map<ChannelKey, SubscriberList, ChannelKey::Hash, ChannelKey::Equal>
      channels_;
};

}  // namespace herald::core
