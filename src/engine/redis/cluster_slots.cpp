// Slots, slot map and redirections of Redis Cluster: see cluster_slots.hpp.
#include "engine/redis/cluster_slots.hpp"

#include <charconv>

namespace herald::engine::redis {

uint16_t crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc ^= static_cast<uint16_t>(c << 8);
    for (int i = 0; i < 8; ++i)
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
  }
  return crc;
}

uint16_t key_slot(std::string_view key) {
  if (const size_t open = key.find('{'); open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) & (kClusterSlots - 1);
}

namespace {

template <typename N>
bool parse_number(std::string_view s, N& n) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

// "host:port", the host possibly an IPv6 address (the last ':' splits).
std::optional<ClusterNode> parse_node(std::string_view s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  ClusterNode node;
  node.host = std::string(s.substr(0, colon));
  if (node.host.size() > 2 && node.host.front() == '[' && node.host.back() == ']')
    node.host = node.host.substr(1, node.host.size() - 2);
  if (!parse_number(s.substr(colon + 1), node.port) || node.port == 0) return std::nullopt;
  return node;
}

}  // namespace

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  if (space == std::string_view::npos || !parse_number(error.substr(0, space), r.slot) ||
      r.slot >= kClusterSlots)
    return std::nullopt;
  auto node = parse_node(error.substr(space + 1));
  if (!node) return std::nullopt;
  r.node = std::move(*node);
  return r;
}

bool is_cluster_retry(std::string_view error) {
  return error.starts_with("TRYAGAIN") || error.starts_with("CLUSTERDOWN");
}

std::optional<SlotMap> SlotMap::parse(const Reply& reply, const std::string& asked_host) {
  if (reply.kind != Reply::Kind::array) return std::nullopt;
  SlotMap map;
  for (const Reply& range : reply.elements) {
    // [start, end, [host, port, id, ...], replicas...]
    if (range.kind != Reply::Kind::array || range.elements.size() < 3) return std::nullopt;
    const Reply& start = range.elements[0];
    const Reply& end = range.elements[1];
    const Reply& master = range.elements[2];
    if (start.kind != Reply::Kind::integer || end.kind != Reply::Kind::integer ||
        start.integer < 0 || end.integer >= kClusterSlots || start.integer > end.integer ||
        master.kind != Reply::Kind::array || master.elements.size() < 2 ||
        master.elements[0].kind != Reply::Kind::string ||
        master.elements[1].kind != Reply::Kind::integer || master.elements[1].integer <= 0 ||
        master.elements[1].integer > 65535)
      return std::nullopt;
    ClusterNode node;
    node.host = master.elements[0].str;
    if (node.host.empty() || node.host == "?") node.host = asked_host;
    node.port = static_cast<uint16_t>(master.elements[1].integer);
    const uint16_t i = map.index_of(node);
    for (int64_t s = start.integer; s <= end.integer; ++s) map.owner_[s] = i;
  }
  return map;
}

const ClusterNode* SlotMap::master(uint16_t slot) const {
  const uint16_t i = owner_[slot & (kClusterSlots - 1)];
  return i == kNone ? nullptr : &nodes_[i];
}

void SlotMap::assign(uint16_t slot, const ClusterNode& node) {
  owner_[slot & (kClusterSlots - 1)] = index_of(node);
}

uint16_t SlotMap::index_of(const ClusterNode& node) {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i] == node) return static_cast<uint16_t>(i);
  nodes_.push_back(node);
  return static_cast<uint16_t>(nodes_.size() - 1);
}

}  // namespace herald::engine::redis
