// Channel capabilities: what a token lets its holder do on which channels.
//
// The `caps` claim of a connection token maps channel patterns to
// operations, e.g. {"chat:*": ["subscribe", "publish"], "dm:42": ["subscribe"]}.
// A pattern is an exact channel name, or a prefix ending in `*` that contains
// the namespace's ':' (`chat:*`, `chat:team-*`), so a pattern never reaches
// beyond its namespace. A subscription token's `caps` is a plain list of
// operations on its one channel.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::auth {

enum class Op : uint8_t { subscribe = 1, publish = 2, history = 4, presence = 8, destroy = 16 };

using OpSet = uint8_t;  // bits of Op

inline constexpr OpSet kAllOps = 31;

// "subscribe" -> Op::subscribe; false for unknown names.
bool parse_op(std::string_view name, Op& out);
std::string_view to_string(Op op);

inline bool has(OpSet set, Op op) {
  return (set & static_cast<OpSet>(op)) != 0;
}

class Capabilities {
 public:
  // Adds a grant; returns a reason when `pattern` is not a valid pattern
  // ("" when added).
  std::string add(std::string_view pattern, OpSet ops);

  // The operations granted on `channel` by every matching pattern.
  OpSet ops_for(std::string_view channel) const;
  bool empty() const { return grants_.empty(); }

 private:
  struct Grant {
    std::string pattern;  // without the trailing '*' when prefix
    bool prefix = false;
    OpSet ops = 0;
  };
  std::vector<Grant> grants_;
};

}  // namespace herald::auth
