// Parsing the server's messages for the command-line client and writing its
// event lines; see server_message.hpp.
#include "cli/server_message.hpp"

#include <simdjson.h>

#include "protocol/messages.hpp"

namespace herald::cli {

namespace {

namespace od = simdjson::ondemand;

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The raw text of a value, whatever its type (the server's JSON is valid).
bool raw_value(od::value v, std::string& out) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return false;
  std::string_view raw;
  if (t == od::json_type::object) {
    od::object o;
    if (v.get_object().get(o) || o.raw_json().get(raw)) return false;
  } else if (t == od::json_type::array) {
    od::array a;
    if (v.get_array().get(a) || a.raw_json().get(raw)) return false;
  } else {
    raw = v.raw_json_token();
    if (t == od::json_type::string) {
      od::raw_json_string consumed;
      if (v.get_raw_json_string().get(consumed)) return false;
    }
  }
  while (!raw.empty() && is_ws(raw.back())) raw.remove_suffix(1);
  out.assign(raw);
  return true;
}

bool get_string(od::value v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out.assign(s);
  return true;
}

bool get_u64(od::value v, std::optional<uint64_t>& out) {
  uint64_t n = 0;
  if (v.get_uint64().get(n)) return false;
  out = n;
  return true;
}

bool read_event(od::object o, EventFields& ev) {
  for (auto field : o) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    od::value v;
    if (field.value().get(v)) return false;
    bool ok = true;
    if (key == "channel")
      ok = get_string(v, ev.channel);
    else if (key == "event")
      ok = get_string(v, ev.event);
    else if (key == "offset")
      ok = get_u64(v, ev.offset);
    else if (key == "ts")
      ok = raw_value(v, ev.ts);
    else if (key == "from")
      ok = raw_value(v, ev.from);
    else if (key == "data")
      ok = raw_value(v, ev.data);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<ServerMessage> parse_server_message(std::string_view text, std::string* why) {
  const auto fail = [&](const char* reason) -> std::optional<ServerMessage> {
    if (why) *why = reason;
    return std::nullopt;
  };
  // One parser per thread: the client is single-threaded, and this keeps
  // the buffers of a long `sub` allocated once.
  thread_local od::parser parser;
  const simdjson::padded_string padded(text);
  od::document doc;
  if (parser.iterate(padded).get(doc)) return fail("not JSON");
  od::object top;
  if (doc.get_object().get(top)) return fail("not a JSON object");
  ServerMessage m;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return fail("not JSON");
    od::value v;
    if (field.value().get(v)) return fail("not JSON");
    bool ok = true;
    if (key == "type")
      ok = get_string(v, m.type);
    else if (key == "id")
      ok = raw_value(v, m.id);
    else if (key == "channel")
      ok = get_string(v, m.channel);
    else if (key == "epoch")
      ok = get_string(v, m.epoch);
    else if (key == "code")
      ok = get_string(v, m.code);
    else if (key == "message")
      ok = get_string(v, m.message);
    else if (key == "reason")
      ok = get_string(v, m.reason);
    else if (key == "offset")
      ok = get_u64(v, m.offset);
    else if (key == "ping")
      ok = get_u64(v, m.ping);
    else if (key == "recovered") {
      bool b = false;
      ok = !v.get_bool().get(b);
      m.recovered = b;
    } else if (key == "replayed") {
      ok = !v.get_bool().get(m.replayed);
    } else if (key == "complete")
      ok = raw_value(v, m.complete);
    else if (key == "members")
      ok = raw_value(v, m.members);
    else if (key == "clients")
      ok = raw_value(v, m.clients);
    else if (key == "users")
      ok = raw_value(v, m.users);
    else if (key == "event")
      ok = get_string(v, m.ev.event);
    else if (key == "ts")
      ok = raw_value(v, m.ev.ts);
    else if (key == "from")
      ok = raw_value(v, m.ev.from);
    else if (key == "data")
      ok = raw_value(v, m.ev.data);
    else if (key == "events") {
      od::array events;
      ok = !v.get_array().get(events);
      if (ok) {
        for (auto element : events) {
          od::object o;
          EventFields ev;
          if (element.get_object().get(o) || !read_event(o, ev)) return fail("bad event in events");
          m.events.push_back(std::move(ev));
        }
      }
    }
    if (!ok) return fail("a field of the wrong type");
  }
  // Nothing may follow the object (simdjson stops at its closing brace).
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS)
    return fail("text after the JSON object");
  // An `event` message's own fields are its event's.
  m.ev.channel = m.channel;
  m.ev.offset = m.offset;
  return m;
}

void append_event_line(std::string& out, const EventFields& ev, std::string_view epoch) {
  out += "{\"channel\":";
  protocol::append_json_string(out, ev.channel);
  out += ",\"event\":";
  protocol::append_json_string(out, ev.event);
  if (ev.offset) {
    out += ",\"offset\":";
    out += std::to_string(*ev.offset);
  }
  if (!epoch.empty()) {
    out += ",\"epoch\":";
    protocol::append_json_string(out, epoch);
  }
  out += ",\"ts\":";
  out += ev.ts.empty() ? std::string_view("null") : std::string_view(ev.ts);
  if (!ev.from.empty()) {
    out += ",\"from\":";
    out += ev.from;
  }
  out += ",\"data\":";
  out += ev.data.empty() ? std::string_view("null") : std::string_view(ev.data);
  out += "}\n";
}

std::string describe_error(const ServerMessage& m) {
  std::string s = m.code.empty() ? std::string("error") : m.code;
  if (!m.message.empty()) s += ": " + m.message;
  return s;
}

}  // namespace herald::cli
