// RedisPresence: this store's presence members in Redis, refreshed on a
// timer, and every node's read back; see redis_presence.hpp for the design.
#include "engine/redis/redis_presence.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <utility>

#include "engine/redis/redis_engine.hpp"

namespace herald::engine::redis {

std::string encode_presence_value(int64_t expires_ms, const PresenceMember& member) {
  std::string out = std::to_string(expires_ms);
  out += ':';
  out += std::to_string(member.user.size());
  out += ':';
  out += member.user;
  out += member.info;
  return out;
}

std::optional<PresenceValue> decode_presence_value(std::string_view value) {
  PresenceValue out;
  const auto number = [&](auto& n) {
    const size_t colon = value.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + colon, n);
    if (ec != std::errc() || end != value.data() + colon) return false;
    value.remove_prefix(colon + 1);
    return true;
  };
  size_t user_len = 0;
  if (!number(out.expires_ms) || !number(user_len) || user_len > value.size()) return std::nullopt;
  out.user = value.substr(0, user_len);
  out.info = value.substr(user_len);
  return out;
}

RedisPresence::RedisPresence(std::string prefix, int64_t ttl_ms, std::function<int64_t()> now_ms,
                             boost::asio::any_io_executor executor, Send send)
    : prefix_(std::move(prefix)),
      ttl_ms_(ttl_ms),
      now_ms_(std::move(now_ms)),
      send_(std::move(send)),
      timer_(std::move(executor)) {}

RedisPresence::~RedisPresence() {
  timer_.cancel();
}

std::string RedisPresence::key(const std::string& channel) const {
  return channel_key(prefix_, channel, "presence");
}

void RedisPresence::add(const std::string& channel, const PresenceMember& member) {
  own_[channel][member.client] = member;
  const std::string k = key(channel);
  send_(channel, {"HSET", k, member.client, encode_presence_value(now_ms_() + ttl_ms_, member)});
  send_(channel, {"PEXPIRE", k, std::to_string(2 * ttl_ms_)});
  arm();
}

void RedisPresence::remove(const std::string& channel, const std::string& client) {
  auto it = own_.find(channel);
  if (it == own_.end() || it->second.erase(client) == 0) return;
  if (it->second.empty()) own_.erase(it);
  send_(channel, {"HDEL", key(channel), client});
}

void RedisPresence::forget(const std::string& channel) {
  auto it = own_.find(channel);
  if (it == own_.end()) return;
  std::vector<std::string> hdel{"HDEL", key(channel)};
  for (const auto& [client, member] : it->second) hdel.push_back(client);
  own_.erase(it);
  send_(channel, std::move(hdel));
}

std::vector<std::string> RedisPresence::read_command(const std::string& channel) const {
  return {"HGETALL", key(channel)};
}

PresenceReadResult RedisPresence::to_result(const std::string& channel, Result&& result) {
  PresenceReadResult out;
  if (const auto* f = std::get_if<Failure>(&result)) {
    out.error = f->message.starts_with("redis unavailable") ? f->message
                                                            : "redis unavailable: " + f->message;
    out.unavailable = true;
    return out;
  }
  Reply& r = std::get<Reply>(result);
  if (r.is_error()) {
    out.error = "redis: " + r.str;
    return out;
  }
  // RESP2: field, value, field, value...
  if (r.kind != Reply::Kind::array || r.elements.size() % 2 != 0) {
    out.error = "redis: unexpected HGETALL reply " + to_string(r);
    return out;
  }
  const int64_t now = now_ms_();
  std::vector<std::string> hdel{"HDEL", key(channel)};
  out.members.reserve(r.elements.size() / 2);
  for (size_t i = 0; i < r.elements.size(); i += 2) {
    Reply& field = r.elements[i];
    const Reply& value = r.elements[i + 1];
    if (field.kind != Reply::Kind::string || value.kind != Reply::Kind::string) continue;
    auto v = decode_presence_value(value.str);
    if (!v || v->expires_ms <= now) {
      // Its node stopped refreshing it (or wrote something we cannot read).
      hdel.push_back(std::move(field.str));
      continue;
    }
    out.members.push_back(
        PresenceMember{std::move(field.str), std::move(v->user), std::move(v->info)});
  }
  if (hdel.size() > 2) send_(channel, std::move(hdel));
  out.ok = true;
  return out;
}

void RedisPresence::arm() {
  if (armed_ || own_.empty()) return;
  armed_ = true;
  timer_.expires_after(std::chrono::milliseconds(std::max<int64_t>(ttl_ms_ / 3, 1)));
  timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    armed_ = false;
    refresh();
    arm();
  });
}

// One HSET of every own member and one PEXPIRE per channel: pipelined on
// the store's connection, a few commands per channel per third of the ttl.
void RedisPresence::refresh() {
  const int64_t expires = now_ms_() + ttl_ms_;
  const std::string hash_ttl = std::to_string(2 * ttl_ms_);
  for (const auto& [channel, members] : own_) {
    const std::string k = key(channel);
    std::vector<std::string> hset{"HSET", k};
    hset.reserve(2 + 2 * members.size());
    for (const auto& [client, member] : members) {
      hset.push_back(client);
      hset.push_back(encode_presence_value(expires, member));
    }
    send_(channel, std::move(hset));
    send_(channel, {"PEXPIRE", k, hash_ttl});
  }
}

}  // namespace herald::engine::redis
