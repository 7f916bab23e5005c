// Presence across nodes for the redis engine (engine.hpp, "Presence across
// nodes"; LAYOUT.md, "Presence"): one store's members of its channels, kept
// in each channel's hash <prefix>:{<tag>}:presence beside every other
// node's, and the reading of that hash back as everyone's members.
//
// Owns this store's members (so that it can refresh them) and the refresh
// timer; it sends commands through the store's ops FIFO (`send`), so they
// stay in call order with the channel's scripts (remove.lua deletes the
// hash). Why a per-member expiry inside the value and not a key per member:
// one HGETALL reads a channel's presence, and the whole hash lives in the
// channel's slot; Redis cannot expire hash fields before 7.4, so a reader
// drops the fields whose expiry passed (a node that crashed stops
// refreshing them) and deletes them, best effort.
//
// Field = the client id: connection ids are 60 random bits drawn per
// process (server/worker.cpp), so two nodes' ids collide with odds of about
// n^2 / 2^61 for n connections in total: not prefixed with the node's origin.
// Value = <expires_ms>:<length of user>:<user><info>, expires_ms on the
// writing node's clock: nodes' clocks must agree to well within the ttl.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/engine.hpp"
#include "engine/redis/redis_connection.hpp"

namespace herald::engine::redis {

// The value of a member's field, and back (nullopt when malformed; the
// client is the field's name, not in the value).
std::string encode_presence_value(int64_t expires_ms, const PresenceMember& member);
struct PresenceValue {
  int64_t expires_ms = 0;
  std::string user;
  std::string info;
};
std::optional<PresenceValue> decode_presence_value(std::string_view value);

class RedisPresence {
 public:
  using Send = std::function<void(const std::string& channel, std::vector<std::string> command)>;
  // `ttl_ms`: how long a member stays without a refresh; refreshed every
  // ttl/3, the hash itself expires after 2 x ttl without any node's write.
  RedisPresence(std::string prefix, int64_t ttl_ms, std::function<int64_t()> now_ms,
                boost::asio::any_io_executor executor, Send send);
  ~RedisPresence();
  RedisPresence(const RedisPresence&) = delete;
  RedisPresence& operator=(const RedisPresence&) = delete;

  void add(const std::string& channel, const PresenceMember& member);
  void remove(const std::string& channel, const std::string& client);
  // This store's members of `channel` are gone (destroyed): deleted from the
  // hash too, in case a refresh wrote them back after remove.lua.
  void forget(const std::string& channel);

  std::vector<std::string> read_command(const std::string& channel) const;  // HGETALL
  // The HGETALL reply as every node's live members; sends the HDEL of the
  // expired ones.
  PresenceReadResult to_result(const std::string& channel, Result&& result);

 private:
  std::string key(const std::string& channel) const;
  void arm();
  void refresh();

  const std::string prefix_;
  const int64_t ttl_ms_;
  const std::function<int64_t()> now_ms_;
  const Send send_;
  // channel -> client -> member
  std::unordered_map<std::string, std::unordered_map<std::string, PresenceMember>> own_;
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with this object
};

}  // namespace herald::engine::redis
