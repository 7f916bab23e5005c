// The subscribers of channels that live on one worker: channel name -> the
// local sessions subscribed to it. The channel owner sends one frame per
// event to each worker with local subscribers; this table fans it out to
// the sessions of that worker. Only the worker's own thread touches it.
#pragma once

#include <boost/container/small_vector.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <string>
#include <string_view>

#include "ws/shared_frame.hpp"

namespace herald::core {

// A receiver of channel events on a worker (a client session).
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  virtual void deliver(const ws::SharedFrame& frame) = 0;
  // The server ended the subscription to `channel` (destroyed, expired):
  // the subscriber sends `unsubscribed {reason}` and unsubscribes.
  virtual void end(const std::string& channel, std::string_view reason) = 0;
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
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Flat (open addressing) and with one subscriber inline: most channels of
  // a worker have few local subscribers, and every byte here is paid per
  // connection in the idle case.
  using List = boost::container::small_vector<Subscriber*, 1>;
  boost::unordered_flat_map<std::string, List, Hash, std::equal_to<>> channels_;
};

}  // namespace herald::core
