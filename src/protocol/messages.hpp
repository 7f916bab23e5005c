// Server -> client messages of protocol v1, serialized to JSON text.
//
// Builders append to a std::string so callers can reuse buffers and frame
// the result once. Raw JSON arguments (`id`, `data`, `events`) are spliced
// in as given: the caller guarantees they are valid JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/errors.hpp"

namespace herald::protocol {

// Appends `s` as a JSON string literal (quotes included), escaping `"`, `\`
// and control characters (\n, \t, ... or \u00XX); UTF-8 passes through.
// `s` must be valid UTF-8; a byte that is not is written as \ufffd, so the
// output is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

struct EventView {
  std::string_view channel;
  std::string_view event;
  std::string_view data;           // raw JSON (empty: null)
  std::optional<uint64_t> offset;  // absent for ephemeral events
  int64_t ts_ms = 0;
  std::string_view from_client;  // empty: no `from`
  std::string_view from_user;    // empty: no `user` in `from`
  std::string_view from_info;    // raw JSON; empty: no `info` in `from`
};

// {"type":"event","channel":…,"event":…,"offset":…,"ts":…,"from":{…},"data":…}
void append_event(std::string& out, const EventView& ev);

// {"type":"error","id":…,"code":…,"message":…,"details":…,"retry_after_ms":…}
// `id` and `details` are raw JSON, omitted when empty; retry_after_ms (for
// rate_limited) when given.
void append_error(std::string& out, ErrorCode code, std::string_view message,
                  std::string_view id = {}, std::string_view details = {},
                  std::optional<uint64_t> retry_after_ms = {});

// {"type":"connected","id":…,"client":…,"user":…,"expires":…,"ping":…,"version":"1","data":…}
// `user` omitted when empty (anonymous), `expires` (the token's exp, seconds
// since the Unix epoch) when not 0, `data` (raw JSON from the connect hook)
// when empty.
void append_connected(std::string& out, std::string_view id, std::string_view client,
                      std::string_view user, int64_t expires, unsigned ping_seconds,
                      std::string_view data = {});

// {"type":"rpc_result","id":…,"data":…}; `data` raw JSON (empty: null).
void append_rpc_result(std::string& out, std::string_view id, std::string_view data);

// {"type":"refreshed","id":…,"expires":…}
void append_refreshed(std::string& out, std::string_view id, int64_t expires);

// {"type":"sub_refreshed","id":…,"channel":…,"expires":…}
void append_sub_refreshed(std::string& out, std::string_view id, std::string_view channel,
                          int64_t expires);

// {"type":"subscribed","id":…,"channel":…,"epoch":…,"offset":…,
//  "recovered":…(only when asked),"events":[…],"data":…} ; `events_json` is the raw
// array text including brackets (empty: `[]`), whose elements are event
// objects as built by append_event; `data` (raw JSON from the subscribe
// hook) omitted when empty.
void append_subscribed(std::string& out, std::string_view id, std::string_view channel,
                       std::string_view epoch, uint64_t offset, std::optional<bool> recovered,
                       std::string_view events_json, std::string_view data = {});

// {"type":"unsubscribed","id":…,"channel":…,"reason":…}
void append_unsubscribed(std::string& out, std::string_view id, std::string_view channel,
                         std::string_view reason = {});

// {"type":"ack","id":…,"offset":…,"replayed":true}; `replayed` only for a
// publish whose idempotency key was already stored (the original offset).
void append_ack(std::string& out, std::string_view id, std::optional<uint64_t> offset,
                bool replayed = false);

// {"type":"history","id":…,"channel":…,"epoch":…,"offset":…,"events":[…]}
// `events_json` as for append_subscribed.
void append_history(std::string& out, std::string_view id, std::string_view channel,
                    std::string_view epoch, uint64_t offset, std::string_view events_json);

// {"type":"ping"}
void append_ping(std::string& out);

// A presence member: {"client":…,"user":…,"info":…}; `user` omitted when
// empty (anonymous), `info` (raw JSON) when empty.
void append_member(std::string& out, std::string_view client, std::string_view user,
                   std::string_view info);

// {"type":"presence","id":…,"channel":…,"members":[…],"complete":…}
// `members_json` is the raw array text of append_member objects.
void append_presence(std::string& out, std::string_view id, std::string_view channel,
                     std::string_view members_json, bool complete);

// {"type":"presence_stats","id":…,"channel":…,"clients":…,"users":…}
// `users` omitted when unknown (a channel over its member limit).
void append_presence_stats(std::string& out, std::string_view id, std::string_view channel,
                           uint64_t clients, std::optional<uint64_t> users);

// {"type":"destroyed","id":…,"channel":…,"epoch":…}
void append_destroyed(std::string& out, std::string_view id, std::string_view channel,
                      std::string_view epoch);

// {"type":"join","channel":…,"client":…,"user":…,"info":…,"user_joined":…}, or
// with `join` false {"type":"leave",…,"user_left":…}; `user_edge`: the
// user's first (join) or last (leave) connection in the channel.
void append_join_leave(std::string& out, bool join, std::string_view channel,
                       std::string_view client, std::string_view user, std::string_view info,
                       bool user_edge);

}  // namespace herald::protocol
