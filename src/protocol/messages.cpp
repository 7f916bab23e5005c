// Builders for the server -> client messages of protocol v1 (see
// messages.hpp and docs/protocol.md). They append compact JSON with fields in
// a fixed order; raw JSON arguments are spliced in unchanged, strings are
// escaped here. These run on the publish path, so they never allocate beyond
// growing `out`.
#include "protocol/messages.hpp"

#include <array>
#include <charconv>

#include "protocol/utf8.hpp"

namespace herald::protocol {

namespace {

// Bytes that can be copied into a JSON string as they are: printable ASCII
// other than `"` and `\`. Everything else takes the slow path.
constexpr std::array<bool, 256> make_plain_table() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<size_t>(c)] = true;
  t['"'] = false;
  t['\\'] = false;
  return t;
}
constexpr std::array<bool, 256> kPlain = make_plain_table();

template <typename Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// `,"id":<raw>` when the request had an id.
void append_id(std::string& out, std::string_view id) {
  if (id.empty()) return;
  out += ",\"id\":";
  out += id;
}

// `,"expires":<seconds>` when the token has an expiry (non-zero).
void append_expires(std::string& out, int64_t expires) {
  if (expires == 0) return;
  out += ",\"expires\":";
  append_int(out, expires);
}

// `,"<key>":"<escaped value>"`; `key` needs no escaping.
void append_string_field(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":";
  append_json_string(out, value);
}

void append_events_array(std::string& out, std::string_view events_json) {
  out += ",\"events\":";
  if (events_json.empty()) {
    out += "[]";
  } else {
    out += events_json;
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  size_t run = 0;  // start of bytes not yet copied
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (kPlain[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const size_t len = utf8_sequence_length(s, i)) {
        i += len;  // valid UTF-8 passes through
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += "\\ufffd";  // a byte that is not valid UTF-8
        }
        break;
    }
    ++i;
    run = i;
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void append_event(std::string& out, const EventView& ev) {
  out += "{\"type\":\"event\"";
  append_string_field(out, "channel", ev.channel);
  append_string_field(out, "event", ev.event);
  if (ev.offset) {
    out += ",\"offset\":";
    append_int(out, *ev.offset);
  }
  out += ",\"ts\":";
  append_int(out, ev.ts_ms);
  if (!ev.from_client.empty()) {
    out += ",\"from\":{\"client\":";
    append_json_string(out, ev.from_client);
    if (!ev.from_user.empty()) append_string_field(out, "user", ev.from_user);
    if (!ev.from_info.empty()) {
      out += ",\"info\":";
      out += ev.from_info;
    }
    out += '}';
  }
  out += ",\"data\":";
  out += ev.data.empty() ? std::string_view("null") : ev.data;
  out += '}';
}

void append_error(std::string& out, ErrorCode code, std::string_view message, std::string_view id,
                  std::string_view details, std::optional<uint64_t> retry_after_ms) {
  out += "{\"type\":\"error\"";
  append_id(out, id);
  out += ",\"code\":\"";
  out += to_string(code);
  out += '"';
  append_string_field(out, "message", message);
  if (!details.empty()) {
    out += ",\"details\":";
    out += details;
  }
  if (retry_after_ms) {
    out += ",\"retry_after_ms\":";
    append_int(out, *retry_after_ms);
  }
  out += '}';
}

void append_connected(std::string& out, std::string_view id, std::string_view client,
                      std::string_view user, int64_t expires, unsigned ping_seconds,
                      std::string_view data) {
  out += "{\"type\":\"connected\"";
  append_id(out, id);
  append_string_field(out, "client", client);
  if (!user.empty()) append_string_field(out, "user", user);
  append_expires(out, expires);
  out += ",\"ping\":";
  append_int(out, ping_seconds);
  out += ",\"version\":\"1\"";
  if (!data.empty()) {
    out += ",\"data\":";
    out += data;
  }
  out += '}';
}

void append_rpc_result(std::string& out, std::string_view id, std::string_view data) {
  out += "{\"type\":\"rpc_result\"";
  append_id(out, id);
  out += ",\"data\":";
  out += data.empty() ? std::string_view("null") : data;
  out += '}';
}

void append_refreshed(std::string& out, std::string_view id, int64_t expires) {
  out += "{\"type\":\"refreshed\"";
  append_id(out, id);
  append_expires(out, expires);
  out += '}';
}

void append_sub_refreshed(std::string& out, std::string_view id, std::string_view channel,
                          int64_t expires) {
  out += "{\"type\":\"sub_refreshed\"";
  append_id(out, id);
  append_string_field(out, "channel", channel);
  append_expires(out, expires);
  out += '}';
}

void append_subscribed(std::string& out, std::string_view id, std::string_view channel,
                       std::string_view epoch, uint64_t offset, std::optional<bool> recovered,
                       std::string_view events_json, std::string_view data) {
  out += "{\"type\":\"subscribed\"";
  append_id(out, id);
  append_string_field(out, "channel", channel);
  append_string_field(out, "epoch", epoch);
  out += ",\"offset\":";
  append_int(out, offset);
  if (recovered) out += *recovered ? ",\"recovered\":true" : ",\"recovered\":false";
  append_events_array(out, events_json);
  if (!data.empty()) {
    out += ",\"data\":";
    out += data;
  }
  out += '}';
}

void append_unsubscribed(std::string& out, std::string_view id, std::string_view channel,
                         std::string_view reason) {
  out += "{\"type\":\"unsubscribed\"";
  append_id(out, id);
  append_string_field(out, "channel", channel);
  if (!reason.empty()) append_string_field(out, "reason", reason);
  out += '}';
}

void append_ack(std::string& out, std::string_view id, std::optional<uint64_t> offset,
                bool replayed) {
  out += "{\"type\":\"ack\"";
  append_id(out, id);
  if (offset) {
    out += ",\"offset\":";
    append_int(out, *offset);
  }
  if (replayed) out += ",\"replayed\":true";
  out += '}';
}

void append_history(std::string& out, std::string_view id, std::string_view channel,
                    std::string_view epoch, uint64_t offset, std::string_view events_json) {
  out += "{\"type\":\"history\"";
  append_id(out, id);
  append_string_field(out, "channel", channel);
  append_string_field(out, "epoch", epoch);
  out += ",\"offset\":";
  append_int(out, offset);
  append_events_array(out, events_json);
  out += '}';
}

void append_ping(std::string& out) {
  out += "{\"type\":\"ping\"}";
}

void append_member(std::string& out, std::string_view client, std::string_view user,
                   std::string_view info) {
  out += "{\"client\":";
  append_json_string(out, client);
  if (!user.empty()) append_string_field(out, "user", user);
  if (!info.empty()) {
    out += ",\"info\":";
    out += info;
  }
  out += '}';
}

void append_presence(std::string& out, std::string_view id, std::string_view channel,
                     std::string_view members_json, bool complete) {
  out += "{\"type\":\"presence\"";
  append_id(out, id);
  append_string_field(out, "channel", channel);
  out += ",\"members\":";
  out += members_json.empty() ? std::string_view("[]") : members_json;
  out += complete ? ",\"complete\":true}" : ",\"complete\":false}";
}

void append_presence_stats(std::string& out, std::string_view id, std::string_view channel,
                           uint64_t clients, std::optional<uint64_t> users) {
  out += "{\"type\":\"presence_stats\"";
  append_id(out, id);
  append_string_field(out, "channel", channel);
  out += ",\"clients\":";
  append_int(out, clients);
  if (users) {
    out += ",\"users\":";
    append_int(out, *users);
  }
  out += '}';
}

void append_destroyed(std::string& out, std::string_view id, std::string_view channel,
                      std::string_view epoch) {
  out += "{\"type\":\"destroyed\"";
  append_id(out, id);
  append_string_field(out, "channel", channel);
  append_string_field(out, "epoch", epoch);
  out += '}';
}

void append_join_leave(std::string& out, bool join, std::string_view channel,
                       std::string_view client, std::string_view user, std::string_view info,
                       bool user_edge) {
  out += join ? "{\"type\":\"join\"" : "{\"type\":\"leave\"";
  append_string_field(out, "channel", channel);
  append_string_field(out, "client", client);
  if (!user.empty()) append_string_field(out, "user", user);
  if (!info.empty()) {
    out += ",\"info\":";
    out += info;
  }
  out += join ? ",\"user_joined\":" : ",\"user_left\":";
  out += user_edge ? "true}" : "false}";
}

}  // namespace herald::protocol
