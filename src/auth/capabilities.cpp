// Channel capabilities (capabilities.hpp): parsing operation names, checking
// grant patterns, and matching a channel against every grant.
//
// A wildcard must keep its namespace's ':' before the '*' so that a token
// for `chat:*` can never reach `admin:...`; `*` alone, `chat*` or a '*'
// anywhere but at the end are refused rather than guessed at. Grants are
// few per token, so a linear scan is both simplest and fastest here.
#include "auth/capabilities.hpp"

#include <array>
#include <utility>

namespace herald::auth {

namespace {

constexpr std::array<std::pair<std::string_view, Op>, 5> kOpNames{{
    {"subscribe", Op::subscribe},
    {"publish", Op::publish},
    {"history", Op::history},
    {"presence", Op::presence},
    {"destroy", Op::destroy},
}};

}  // namespace

bool parse_op(std::string_view name, Op& out) {
  for (const auto& [text, op] : kOpNames) {
    if (text == name) {
      out = op;
      return true;
    }
  }
  return false;
}

std::string_view to_string(Op op) {
  for (const auto& [text, o] : kOpNames) {
    if (o == op) return text;
  }
  return "unknown";
}

std::string Capabilities::add(std::string_view pattern, OpSet ops) {
  if (pattern.empty()) return "empty channel pattern";
  if ((ops & ~kAllOps) != 0) return "unknown operations";
  const size_t star = pattern.find('*');
  if (star == std::string_view::npos) {
    grants_.push_back(Grant{std::string(pattern), false, ops});
    return "";
  }
  if (star != pattern.size() - 1) return "'*' may only end a channel pattern";
  const std::string_view prefix = pattern.substr(0, star);
  // The namespace separator must come before the '*', so a pattern stays
  // inside one namespace ("chat:*", "chat:team-*"; not "*" or "chat*").
  if (prefix.find(':') == std::string_view::npos) {
    return "a wildcard pattern must name its namespace (e.g. \"chat:*\")";
  }
  grants_.push_back(Grant{std::string(prefix), true, ops});
  return "";
}

OpSet Capabilities::ops_for(std::string_view channel) const {
  OpSet ops = 0;
  for (const Grant& g : grants_) {
    if (g.prefix ? channel.starts_with(g.pattern) : channel == g.pattern) ops |= g.ops;
  }
  return ops;
}

}  // namespace herald::auth
