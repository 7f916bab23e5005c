// merge_presence: every node's members as one presence answer; see
// merged_presence.hpp.
#include "presence/merged_presence.hpp"

#include <boost/unordered/unordered_flat_set.hpp>
#include <string_view>

#include "protocol/messages.hpp"

namespace herald::presence {

MergedPresence merge_presence(const std::vector<engine::PresenceMember>& members,
                              size_t max_members, bool with_members) {
  MergedPresence out;
  out.clients = members.size();
  if (members.size() > max_members) {
    // As one node over its limit: counts only.
    out.complete = false;
    return out;
  }
  boost::unordered_flat_set<std::string_view> users;
  for (const auto& m : members)
    if (!m.user.empty()) users.insert(m.user);
  out.users = users.size();
  if (with_members) {
    std::string json = "[";
    for (const auto& m : members) {
      if (json.size() > 1) json += ',';
      protocol::append_member(json, m.client, m.user, m.info);
    }
    json += ']';
    out.members_json = std::move(json);
  }
  return out;
}

}  // namespace herald::presence
