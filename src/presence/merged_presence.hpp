// Presence of a channel over several nodes (the redis engine): the answer to
// `presence` / `presence_stats` built from every node's members as the
// shared engine reads them (engine::ShardStore::presence_read), with the
// same limit a single node's ChannelPresence applies: over `max_members`,
// counts only (no list, no users, complete false).
//
// Owns nothing; a pure function, so that core::Node only coordinates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace herald::presence {

struct MergedPresence {
  size_t clients = 0;
  std::optional<size_t> users;  // distinct verified users; unknown over the limit
  bool complete = true;
  std::string members_json = "[]";  // of {"client","user","info"}; "[]" over the limit
};

// `with_members` false: presence_stats (no list built).
MergedPresence merge_presence(const std::vector<engine::PresenceMember>& members,
                              size_t max_members, bool with_members);

}  // namespace herald::presence
