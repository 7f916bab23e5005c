// The subscribers of channels that live on one worker: channel name -> the
// local sessions subscribed to it. The channel owner sends one frame per
// event to each worker with local subscribers; this table fans it out to
// the sessions of that worker. Only the worker's own thread touches it.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ws/shared_frame.hpp"

namespace herald::core {

// A receiver of channel events on a worker (a client session).
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  virtual void deliver(const ws::SharedFrame& frame) = 0;
};

class LocalSubscribers {
 public:
  void add(const std::string& channel, Subscriber* s);
  void remove(const std::string& channel, Subscriber* s);
  // Queues `frame` on every local subscriber of `channel`.
  void deliver(std::string_view channel, const ws::SharedFrame& frame);
  size_t channel_count() const { return channels_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<Subscriber*>, Hash, std::equal_to<>> channels_;
};

}  // namespace herald::core
