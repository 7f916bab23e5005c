// herald-bench: the protocol adapters declared in client.hpp (Herald v1 /
// raw peer JSON, and NATS over WebSocket with its incremental parser).
#include "client.hpp"

#include <cstring>

#include "scan.hpp"

namespace herald::bench {

namespace {

constexpr uint64_t kTagSubscribe = ~uint64_t{0};   // a PONG that confirms a SUB
constexpr uint8_t kAwaitConnected = 1;             // herald: `connect` sent, no `connected` yet
constexpr size_t kMaxNatsControlLine = 64 * 1024;  // INFO is the longest (~1 KB)

bool starts_with_ci(std::string_view s, std::string_view upper_prefix) {
  if (s.size() < upper_prefix.size()) return false;
  for (size_t i = 0; i < upper_prefix.size(); ++i) {
    char ch = s[i];
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
    if (ch != upper_prefix[i]) return false;
  }
  return true;
}

// Splits `s` at spaces/tabs into at most `max` tokens; returns their count
// (max + 1 when there are more).
size_t split_tokens(std::string_view s, std::string_view* out, size_t max) {
  size_t n = 0, i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i == s.size()) break;
    const size_t b = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (n == max) return max + 1;
    out[n++] = s.substr(b, i - b);
  }
  return n;
}

}  // namespace

const char* target_name(Target t) {
  switch (t) {
    case Target::herald:
      return "herald";
    case Target::nats:
      return "nats";
    case Target::raw:
      return "raw";
  }
  return "?";
}

bool parse_target(std::string_view s, Target& out) {
  if (s == "herald") {
    out = Target::herald;
  } else if (s == "nats") {
    out = Target::nats;
  } else if (s == "raw") {
    out = Target::raw;
  } else {
    return false;
  }
  return true;
}

std::string nats_subject(std::string_view channel) {
  std::string s(channel);
  for (char& ch : s) {
    if (ch == ':') ch = '.';
  }
  return s;
}

size_t nats_parse(std::string_view data, NatsSink& sink, std::string& error) {
  const char* const base = data.data();
  const size_t n = data.size();
  size_t pos = 0;
  while (pos < n) {
    const char* p = base + pos;
    const size_t avail = n - pos;
    // Fast path first: MSG is nearly everything a subscriber reads.
    const void* nl = std::memchr(p, '\n', avail);
    if (!nl) {
      if (avail > kMaxNatsControlLine) error = "NATS control line longer than 64 KB";
      return pos;
    }
    const size_t line_len = static_cast<size_t>(static_cast<const char*>(nl) - p);
    std::string_view line(p, line_len);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t after_line = line_len + 1;
    if (starts_with_ci(line, "MSG ") || starts_with_ci(line, "MSG\t")) {
      // MSG <subject> <sid> [reply-to] <#bytes>
      std::string_view tok[5];
      const size_t k = split_tokens(line.substr(4), tok, 4);
      if (k != 3 && k != 4) {
        error = "bad MSG line: " + std::string(line.substr(0, 200));
        return pos;
      }
      const std::string_view len_s = tok[k - 1];
      uint64_t plen = 0;
      const char* q = len_s.data();
      if (!parse_digits(q, len_s.data() + len_s.size(), plen) || q != len_s.data() + len_s.size() ||
          plen > (uint64_t{1} << 32)) {
        error = "bad MSG size: " + std::string(line.substr(0, 200));
        return pos;
      }
      if (avail < after_line + plen + 2) return pos;  // payload not complete yet
      const char* payload = p + after_line;
      if (payload[plen] != '\r' || payload[plen + 1] != '\n') {
        error = "MSG payload not followed by CRLF";
        return pos;
      }
      pos += after_line + static_cast<size_t>(plen) + 2;
      sink.nats_msg(tok[0], tok[1], std::string_view(payload, static_cast<size_t>(plen)));
      continue;
    }
    pos += after_line;
    if (starts_with_ci(line, "PING")) {
      sink.nats_ping();
    } else if (starts_with_ci(line, "PONG")) {
      sink.nats_pong();
    } else if (starts_with_ci(line, "+OK")) {
      // verbose mode only; nothing to do
    } else if (starts_with_ci(line, "-ERR")) {
      sink.nats_err(line.substr(4));
    } else if (starts_with_ci(line, "INFO")) {
      sink.nats_info(line.substr(4));
    } else if (line.empty()) {
      // tolerate blank lines
    } else {
      error = "unexpected NATS operation: " + std::string(line.substr(0, 200));
      return pos - after_line;
    }
  }
  return pos;
}

Client::Client(Target t, Endpoint ep, ClientHandler& h)
    : target_(t), h_(h), loop_(std::move(ep), *this) {}

std::string Client::wire_channel(std::string_view channel) const {
  return target_ == Target::nats ? nats_subject(channel) : std::string(channel);
}

Conn& Client::connect(uint64_t user, const std::string* token, uint32_t endpoint) {
  Conn& c = loop_.connect(user, endpoint);
  c.proto_token = token;  // on_open cannot run before this returns
  return c;
}

void Client::on_open(Conn& c) {
  c.upgraded_ns = now_ns();
  if (target_ == Target::nats) {
    c.proto_state = 0;  // waiting for INFO
    return;
  }
  if (c.proto_token || connect_first_) {
    std::string& m = scratch_;
    m.clear();
    m += "{\"type\":\"connect\",\"id\":";
    append_uint(m, ++c.proto_next_id);
    if (c.proto_token) {
      m += ",\"token\":\"";
      m += *c.proto_token;  // base64url and dots only (checked when read)
      m += '"';
    }
    m += '}';
    loop_.send_text(c, m);
    if (!pipeline_connect_) {
      c.proto_state = kAwaitConnected;
      return;
    }
  }
  h_.on_ready(c, c.upgraded_ns);
}

void Client::subscribe(Conn& c, std::string_view wire) {
  std::string& m = scratch_;
  m.clear();
  const uint32_t id = ++c.proto_next_id;
  if (target_ == Target::nats) {
    m += "SUB ";
    m += wire;
    m += ' ';
    append_uint(m, id);
    m += "\r\nPING\r\n";
    expect_pong(c, kTagSubscribe);
    nats_send(c, m);
    return;
  }
  m += "{\"type\":\"subscribe\",\"id\":";
  append_uint(m, id);
  m += ",\"channel\":\"";
  m += wire;
  m += "\"}";
  loop_.send_text(c, m);
}

uint64_t Client::unsubscribe(Conn& c, std::string_view wire) {
  std::string& m = scratch_;
  m.clear();
  const uint32_t id = ++c.proto_next_id;
  m += "{\"type\":\"unsubscribe\",\"id\":";
  append_uint(m, id);
  m += ",\"channel\":\"";
  m += wire;
  m += "\"}";
  loop_.send_text(c, m);
  return id;
}

void Client::history(Conn& c, uint64_t id, std::string_view wire, uint64_t limit) {
  std::string& m = scratch_;
  m.clear();
  m += "{\"type\":\"history\",\"id\":";
  append_uint(m, id);
  m += ",\"channel\":\"";
  m += wire;
  m += "\",\"limit\":";
  append_uint(m, limit);
  m += '}';
  loop_.send_text(c, m);
}

void Client::publish(Conn& c, uint64_t id, std::string_view wire, std::string_view event,
                     std::string_view data, std::string_view idempotency_key) {
  std::string& m = scratch_;
  m.clear();
  if (target_ == Target::nats) {
    m += "PUB ";
    m += wire;
    m += ' ';
    append_uint(m, data.size());
    m += "\r\n";
    m += data;
    m += "\r\nPING\r\n";
    expect_pong(c, id);
    nats_send(c, m);
    return;
  }
  m += "{\"type\":\"publish\",\"id\":";
  append_uint(m, id);
  m += ",\"channel\":\"";
  m += wire;
  m += "\",\"event\":\"";
  m += event;
  if (!idempotency_key.empty()) {
    m += "\",\"idempotency_key\":\"";
    m += idempotency_key;
  }
  m += "\",\"data\":";
  m += data;
  m += '}';
  loop_.send_text(c, m);
}

void Client::expect_pong(Conn& c, uint64_t tag) {
  if (c.proto_pending_head == c.proto_pending.size()) {
    c.proto_pending.clear();
    c.proto_pending_head = 0;
  }
  c.proto_pending.push_back(tag);
}

void Client::on_text(Conn& c, std::string_view msg, uint64_t recv_ns) {
  if (target_ == Target::nats) {
    on_nats(c, msg, recv_ns);
  } else {
    on_herald(c, msg, recv_ns);
  }
}

void Client::on_binary(Conn& c, std::string_view msg, uint64_t recv_ns) {
  if (target_ == Target::nats) on_nats(c, msg, recv_ns);
  // Herald-protocol servers send no binary messages; the loop counts them.
}

void Client::on_herald(Conn& c, std::string_view msg, uint64_t recv_ns) {
  // Hot path: events, which Herald and the peers start with their type.
  constexpr std::string_view kEvent = "{\"type\":\"event\"";
  if (msg.size() > kEvent.size() && std::memcmp(msg.data(), kEvent.data(), kEvent.size()) == 0) {
    h_.on_event(c, msg, recv_ns);
    return;
  }
  const std::string_view type = message_type(msg);
  const char* p = msg.data();
  const char* end = p + msg.size();
  uint64_t id = 0;
  if (type == "event") {
    h_.on_event(c, msg, recv_ns);
  } else if (type == "ack") {
    if (find_uint(p, end, "\"id\"", id)) {
      // A replay (Herald's idempotency keys) answers with the original
      // offset and "replayed":true; acks are short, the search is cheap.
      constexpr std::string_view kReplayed = "\"replayed\":true";
      if (memmem(msg.data(), msg.size(), kReplayed.data(), kReplayed.size()))
        ++counters_.replayed_acks;
      h_.on_ack(c, id, recv_ns);
    } else {
      ++counters_.protocol_errors;
    }
  } else if (type == "subscribed") {
    h_.on_subscribed(c, recv_ns);
  } else if (type == "join" || type == "leave") {
    h_.on_join_leave(c, type == "join", msg, recv_ns);
  } else if (type == "unsubscribed") {
    const bool has_id = find_uint(p, end, "\"id\"", id);
    h_.on_unsubscribed(c, msg, has_id, id, recv_ns);
  } else if (type == "connected") {
    if (c.proto_state == kAwaitConnected) {
      c.proto_state = 0;
      if (const char* q = find_key(p, end, "\"client\""); q && q < end && *q == '"') {
        const void* e = std::memchr(q + 1, '"', static_cast<size_t>(end - q - 1));
        if (e) c.proto_client.assign(q + 1, static_cast<const char*>(e));
      }
      h_.on_ready(c, recv_ns);
    }
  } else if (type == "history") {
    h_.on_history(c, msg, recv_ns);
  } else if (type == "error") {
    const bool has_id = find_uint(p, end, "\"id\"", id);
    h_.on_error(c, msg, has_id, id, recv_ns);
  } else if (type == "ping") {
    ++counters_.pings_answered;
    loop_.send_text(c, "{\"type\":\"pong\"}");
  } else if (type.empty()) {
    ++counters_.protocol_errors;
  }
  // Anything else (presence replies, ...) is not used by the bench.
}

void Client::on_nats(Conn& c, std::string_view bytes, uint64_t recv_ns) {
  cur_ = &c;
  cur_recv_ns_ = recv_ns;
  std::string error;
  if (c.proto_in.empty()) {
    const size_t used = nats_parse(bytes, *this, error);
    if (error.empty() && c.state != ConnState::closed && used < bytes.size())
      c.proto_in.assign(bytes.substr(used));
  } else {
    // An operation was split: parse from the kept bytes plus these. The
    // callbacks may close the connection (which clears proto_in), so parse
    // from a buffer of our own.
    std::string buf;
    buf.swap(c.proto_in);
    buf.append(bytes);
    const size_t used = nats_parse(buf, *this, error);
    if (error.empty() && c.state != ConnState::closed) {
      buf.erase(0, used);
      c.proto_in.swap(buf);
    }
  }
  cur_ = nullptr;
  if (!error.empty() && c.state != ConnState::closed) {
    ++counters_.protocol_errors;
    h_.on_error(c, error, false, 0, recv_ns);
    loop_.close(c, 1002);
  }
}

void Client::nats_msg(std::string_view, std::string_view, std::string_view payload) {
  if (cur_->state != ConnState::open) return;
  h_.on_event(*cur_, payload, cur_recv_ns_);
}

void Client::nats_ping() {
  if (cur_->state != ConnState::open) return;
  ++counters_.pings_answered;
  nats_send(*cur_, "PONG\r\n");
}

void Client::nats_pong() {
  Conn& c = *cur_;
  if (c.state != ConnState::open) return;
  if (c.proto_pending_head >= c.proto_pending.size()) {
    ++counters_.protocol_errors;  // a PONG nobody asked for
    return;
  }
  const uint64_t tag = c.proto_pending[c.proto_pending_head++];
  if (c.proto_pending_head == c.proto_pending.size()) {
    c.proto_pending.clear();
    c.proto_pending_head = 0;
  } else if (c.proto_pending_head >= 4096 && 2 * c.proto_pending_head >= c.proto_pending.size()) {
    c.proto_pending.erase(
        c.proto_pending.begin(),
        c.proto_pending.begin() + static_cast<std::ptrdiff_t>(c.proto_pending_head));
    c.proto_pending_head = 0;
  }
  if (tag == kTagSubscribe) {
    h_.on_subscribed(c, cur_recv_ns_);
  } else {
    h_.on_ack(c, tag, cur_recv_ns_);
  }
}

void Client::nats_info(std::string_view) {
  Conn& c = *cur_;
  if (c.state != ConnState::open || c.proto_state != 0)
    return;  // INFO updates later on are ignored
  c.proto_state = 1;
  nats_send(c,
            "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false,\"protocol\":1}\r\n");
  h_.on_ready(c, cur_recv_ns_);
}

void Client::nats_err(std::string_view text) {
  if (cur_->state != ConnState::open) return;
  h_.on_error(*cur_, "-ERR" + std::string(text), false, 0, cur_recv_ns_);
}

}  // namespace herald::bench
