// Redis Cluster's addressing for the redis engine (engine.redis_cluster):
// the slot of a key (CRC16 of its hash tag, mod 16384), the slot map read
// from CLUSTER SLOTS, and the -MOVED / -ASK redirection replies.
//
// Pure data and functions: no I/O, no threads. Who asks for the map and
// where commands go is cluster_router.hpp's business.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/redis/resp.hpp"

namespace herald::engine::redis {

constexpr uint16_t kClusterSlots = 16384;

// CRC16-CCITT (XMODEM), as Redis Cluster uses it (cluster.c keyHashSlot).
uint16_t crc16(std::string_view data);

// The slot of `key`: of the part between the first '{' and the next '}'
// when that part is not empty, else of the whole key (Redis' rule).
uint16_t key_slot(std::string_view key);

// A master node, as "host:port" is its name in the map and in redirections.
struct ClusterNode {
  std::string host;
  uint16_t port = 0;
  std::string name() const { return host + ":" + std::to_string(port); }
  bool operator==(const ClusterNode&) const = default;
};

// "-MOVED 3999 127.0.0.1:6381" or "-ASK 3999 127.0.0.1:6381" (the error
// reply's text, without the '-'); nullopt for any other text.
struct Redirect {
  bool ask = false;  // ASK: this command only, after ASKING; MOVED: for good
  uint16_t slot = 0;
  ClusterNode node;
};
std::optional<Redirect> parse_redirect(std::string_view error);

// "the cluster cannot answer now, ask again later": TRYAGAIN (a multi-key
// command during a slot migration) and CLUSTERDOWN.
bool is_cluster_retry(std::string_view error);

// Which master serves each slot.
class SlotMap {
 public:
  // From a CLUSTER SLOTS reply; `asked` fills a node whose host Redis gave
  // as "" (it means "the host you asked"). nullopt when the reply is not a
  // slot map.
  static std::optional<SlotMap> parse(const Reply& reply, const std::string& asked_host);

  // The master of `slot`, or nullptr when no node serves it (yet).
  const ClusterNode* master(uint16_t slot) const;
  // After a MOVED: `slot` is served by `node` from now on.
  void assign(uint16_t slot, const ClusterNode& node);
  const std::vector<ClusterNode>& nodes() const { return nodes_; }

 private:
  static constexpr uint16_t kNone = 0xFFFF;
  uint16_t index_of(const ClusterNode& node);
  std::vector<ClusterNode> nodes_;
  std::vector<uint16_t> owner_ = std::vector<uint16_t>(kClusterSlots, kNone);
};

}  // namespace herald::engine::redis
