// Access rules for one operation on one channel; see access.hpp.
#include "auth/access.hpp"

namespace herald::auth {

namespace {

const std::string& level_of(const config::NamespaceOptions& o, Op op) {
  switch (op) {
    case Op::subscribe:
      return o.subscribe_access;
    case Op::publish:
      return o.publish_access;
    case Op::history:
      return o.history_access;
    case Op::destroy:
      return o.destroy_access;
    case Op::presence:
      break;
  }
  return o.presence_access;
}

std::string what(Op op, std::string_view channel) {
  return std::string(to_string(op)) + " on " + std::string(channel);
}

}  // namespace

bool admits_anonymous(const config::NamespaceOptions& options, bool auth_configured) {
  return options.anonymous.value_or(!auth_configured);
}

std::string_view user_list(std::string_view channel) {
  const auto hash = channel.rfind('#');
  return hash == std::string_view::npos ? std::string_view() : channel.substr(hash + 1);
}

bool is_listed_user(std::string_view channel, std::string_view user) {
  if (user.empty()) return false;
  std::string_view rest = user_list(channel);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    if (rest.substr(0, comma) == user) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<Refusal> check(const config::NamespaceOptions& options, bool auth_configured,
                             const Identity* identity, Op op, std::string_view channel,
                             OpSet granted) {
  using protocol::ErrorCode;
  const std::string& level = level_of(options, op);
  if (!identity && !admits_anonymous(options, auth_configured))
    return Refusal{ErrorCode::unauthorized,
                   what(op, channel) + " needs an authenticated connection (connect with a token)"};
  if (op == Op::publish && level == "none")
    return Refusal{ErrorCode::forbidden,
                   "clients may not publish on " + std::string(channel) +
                       " (publish_access is none: only the HTTP API publishes there)"};
  if (op == Op::destroy && level == "none")
    return Refusal{ErrorCode::forbidden,
                   "clients may not destroy " + std::string(channel) +
                       " (destroy_access is none: only the HTTP API destroys channels)"};
  const OpSet caps = identity ? identity->caps.ops_for(channel) : 0;
  const bool capable = has(static_cast<OpSet>(caps | granted), op);
  if (options.user_channels && !user_list(channel).empty()) {
    if (capable || (identity && is_listed_user(channel, identity->user))) return std::nullopt;
    return Refusal{identity ? ErrorCode::forbidden : ErrorCode::unauthorized,
                   what(op, channel) + " is reserved to the users the channel names"};
  }
  if (level == "public" || capable) return std::nullopt;
  if (!identity)
    return Refusal{ErrorCode::unauthorized,
                   what(op, channel) + " needs an authenticated connection (connect with a token)"};
  if (level == "authenticated") return std::nullopt;
  return Refusal{ErrorCode::forbidden, what(op, channel) + " is not allowed by your token's caps"};
}

}  // namespace herald::auth
