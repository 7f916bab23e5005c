// The pub/sub payload codec (fanout_payload.hpp). Netstrings keep it
// binary-safe and decodable in one pass without JSON, in C++ as in Lua.
#include "engine/redis/fanout_payload.hpp"

#include <charconv>
#include <vector>

namespace herald::engine::redis {
namespace {

void netstring(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out += s;
  out += ',';
}

template <typename Int>
bool parse_decimal(std::string_view s, Int& out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Exactly `n` netstrings from `s`, nothing after them.
std::optional<std::vector<std::string_view>> netstrings(std::string_view s, size_t n) {
  std::vector<std::string_view> out;
  out.reserve(n);
  while (out.size() < n) {
    const size_t colon = s.find(':');
    if (colon == std::string_view::npos || colon > 10) return std::nullopt;
    size_t len = 0;
    if (!parse_decimal(s.substr(0, colon), len)) return std::nullopt;
    if (s.size() - colon - 1 < len + 1 || s[colon + 1 + len] != ',') return std::nullopt;
    out.push_back(s.substr(colon + 1, len));
    s.remove_prefix(colon + 2 + len);
  }
  if (!s.empty()) return std::nullopt;
  return out;
}

}  // namespace

std::optional<std::string> encode_fanout(std::string_view origin, const RemoteMessage& message) {
  std::string out;
  switch (message.kind) {
    case RemoteMessage::Kind::event:
      return std::nullopt;
    case RemoteMessage::Kind::ephemeral: {
      const StoredEvent& e = message.event;
      out = "E2";
      netstring(out, origin);
      netstring(out, std::to_string(e.ts_ms));
      netstring(out, e.event);
      netstring(out, e.data);
      netstring(out, e.from_client);
      netstring(out, e.from_user);
      netstring(out, e.from_info);
      return out;
    }
    case RemoteMessage::Kind::reset:
      out = "R2";
      netstring(out, origin);
      netstring(out, message.reason);
      return out;
  }
  return std::nullopt;
}

std::optional<FanoutMessage> decode_fanout(std::string_view payload) {
  if (payload.size() < 2) return std::nullopt;
  const std::string_view kind = payload.substr(0, 2);
  const std::string_view rest = payload.substr(2);
  FanoutMessage out;
  RemoteMessage& m = out.message;
  if (kind == "H2") {
    auto f = netstrings(rest, 9);
    if (!f) return std::nullopt;
    m.kind = RemoteMessage::Kind::event;
    if (!parse_decimal((*f)[1], m.event.offset) || m.event.offset == 0) return std::nullopt;
    if (!parse_decimal((*f)[2], m.event.ts_ms)) return std::nullopt;
    out.origin = (*f)[0];
    m.epoch = (*f)[3];
    m.event.event = (*f)[4];
    m.event.data = (*f)[5];
    m.event.from_client = (*f)[6];
    m.event.from_user = (*f)[7];
    m.event.from_info = (*f)[8];
  } else if (kind == "E2") {
    auto f = netstrings(rest, 7);
    if (!f) return std::nullopt;
    m.kind = RemoteMessage::Kind::ephemeral;
    if (!parse_decimal((*f)[1], m.event.ts_ms)) return std::nullopt;
    out.origin = (*f)[0];
    m.event.event = (*f)[2];
    m.event.data = (*f)[3];
    m.event.from_client = (*f)[4];
    m.event.from_user = (*f)[5];
    m.event.from_info = (*f)[6];
  } else if (kind == "R2") {
    auto f = netstrings(rest, 2);
    if (!f) return std::nullopt;
    m.kind = RemoteMessage::Kind::reset;
    out.origin = (*f)[0];
    m.reason = (*f)[1];
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace herald::engine::redis
