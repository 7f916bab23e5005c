// ClientSession, SSE fallback (GET /sse, docs/protocol.md section 14): the
// same session as a WebSocket client's, fed with the commands such a client
// would send (connect, then subscribe with recover per channel), its
// messages sent as SSE messages with the stream's combined `id:`. Owns the
// stream's opening (the response waits for every subscription, so a refusal
// is an HTTP status with nothing delivered) and the per-channel positions;
// the wire format itself is sse/event_stream.hpp.
#include <algorithm>

#include "protocol/client_session.hpp"
#include "protocol/messages.hpp"
#include "ws/frame_codec.hpp"

namespace herald::protocol {

namespace {

ws::SharedFrame raw_frame(std::string_view bytes) {
  auto f = std::make_shared<ws::Frame>();
  f->storage.assign(bytes);
  return f;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

// The HTTP status of an `error` message, from its "code".
int status_of_error(std::string_view json) {
  static constexpr std::string_view kKey = "\"code\":\"";
  const auto at = json.find(kKey);
  if (at == std::string_view::npos) return 500;
  const auto start = at + kKey.size();
  const std::string_view code = json.substr(start, json.find('"', start) - start);
  for (int c = 0; c <= static_cast<int>(ErrorCode::internal); ++c)
    if (to_string(static_cast<ErrorCode>(c)) == code) return http_status(static_cast<ErrorCode>(c));
  return 500;
}

// The id lines made for the event frame being fanned out on this thread.
// LocalSubscribers::deliver hands one frame to every local subscriber in a
// row, and streams of the same channels at the same positions (a page's
// "global" and "room" channels, say) have the same combined id: they share
// one line instead of a frame each. Bounded; reset by the next event.
struct IdLines {
  ws::SharedFrame event;  // held, so that its address is not reused meanwhile
  std::vector<ws::SharedFrame> lines;
};
constexpr size_t kMaxIdLines = 8;
thread_local IdLines id_lines;
thread_local std::string id_scratch;

}  // namespace

void ClientSession::start_sse(SseOpen open, const std::array<unsigned char, 16>& peer) {
  auto& stream = *(rare().sse = std::make_unique<SseStream>());
  stream.channels = std::move(open.channels);
  stream.positions.resize(stream.channels.size());
  if (!open.last_event_id.empty()) {
    auto positions = sse::decode_id(open.last_event_id, stream.channels.size());
    if (!positions) {
      std::string out;
      append_error(out, ErrorCode::bad_request,
                   "Last-Event-ID: not an id of this stream (one '<epoch>:<offset>' entry, or an "
                   "empty one, per channel, joined by ',')");
      sse_refuse(400, out, ws::close_code::policy_violation);
      return;
    }
    stream.positions = std::move(*positions);
  }
  stream.head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
      "X-Accel-Buffering: no\r\nConnection: close\r\n";
  stream.head += open.extra_headers;
  stream.head += "\r\nretry: " + std::to_string(open.retry_ms) + "\n\n";
  stream.awaiting = stream.channels.size();
  admit_from(peer);  // over a per-IP limit: refused with 429 (close() above)
  if (!is_open()) return;

  // The commands a WebSocket client would send, through the same path
  // (held while a token is verified, rate limits, access rules).
  std::string text = "{\"type\":\"connect\"";
  if (!open.token.empty()) {
    text += ",\"token\":";
    append_json_string(text, open.token);
  }
  text += '}';
  on_text(text);
  for (size_t i = 0; i < stream.channels.size() && is_open(); ++i) {
    text = "{\"type\":\"subscribe\",\"id\":" + std::to_string(i) + ",\"channel\":";
    append_json_string(text, stream.channels[i]);
    if (const auto& p = stream.positions[i]) {
      text += ",\"recover\":{\"epoch\":";
      append_json_string(text, p->epoch);
      text += ",\"offset\":" + std::to_string(p->offset) + '}';
    }
    text += '}';
    on_text(text);
  }
}

void ClientSession::send_text(std::string_view json) {
  SseStream* stream = sse();
  if (!stream) {
    ws::Connection::send_text(json);
    return;
  }
  if (!stream->open && json.starts_with("{\"type\":\"error\"")) {
    sse_refuse(status_of_error(json), json, ws::close_code::policy_violation);
    return;
  }
  std::string out;
  out.reserve(json.size() + 16);
  sse::append_data_lines(out, json);
  out += '\n';
  sse_send(out);
}

void ClientSession::close(uint16_t code, std::string_view reason) {
  SseStream* stream = sse();
  if (stream && !stream->open && is_open()) {
    // Closed before it opened without an error message (a connect hook's
    // disconnect): refused all the same.
    const int status = code == ws::close_code::unauthorized   ? 401
                       : code == ws::close_code::rate_limited ? 429
                                                              : 403;
    std::string out;
    append_error(out,
                 status == 401   ? ErrorCode::unauthorized
                 : status == 429 ? ErrorCode::rate_limited
                                 : ErrorCode::forbidden,
                 reason.empty() ? std::string_view("refused") : reason);
    sse_refuse(status, out, code);
    return;
  }
  ws::Connection::close(code, reason);
}

void ClientSession::sse_subscribed(const std::string& channel, std::string_view epoch,
                                   uint64_t offset, std::string_view json) {
  SseStream& stream = *sse();
  std::string out;
  out.reserve(json.size() + 64);
  sse::append_data_lines(out, json);
  const auto it = std::find(stream.channels.begin(), stream.channels.end(), channel);
  if (it != stream.channels.end()) {
    stream.positions[static_cast<size_t>(it - stream.channels.begin())] =
        sse::Position{std::string(epoch), offset};
    out += "id: " + sse::encode_id(stream.positions) + '\n';
  }
  out += '\n';
  sse_send(out);
  if (!stream.open && it != stream.channels.end() && stream.awaiting > 0 && --stream.awaiting == 0)
    sse_accept();
}

void ClientSession::deliver_sse(std::string_view channel, const ws::SharedFrame& frame) {
  SseStream& stream = *sse();
  if (frame->event_offset && stream.channels.size() == 1 && stream.channels[0] == channel &&
      stream.positions[0]) {
    // One channel: the whole message, id included, is every such stream's.
    if (const auto* message = sse::single_channel_message(*frame, stream.positions[0]->epoch)) {
      stream.positions[0]->offset = *frame->event_offset;
      sse_send(*message);
      return;
    }
  }
  const ws::SharedFrame& variant = sse::variant_of(*frame);
  sse_send(variant);
  if (!frame->event_offset) return;  // the variant ends its own messages
  const auto it = std::find(stream.channels.begin(), stream.channels.end(), channel);
  auto* position = it == stream.channels.end()
                       ? nullptr
                       : &stream.positions[static_cast<size_t>(it - stream.channels.begin())];
  if (!position || !*position) {
    sse_send("\n");  // a channel outside the request (a token's): no position to keep
    return;
  }
  (*position)->offset = *frame->event_offset;
  // The only bytes made per client and event (streams of several
  // channels), shared with the other streams that have the same id.
  id_scratch.assign("id: ");
  sse::append_id(id_scratch, stream.positions);
  id_scratch += "\n\n";
  if (id_lines.event != frame) {
    id_lines.event = frame;
    id_lines.lines.clear();
  }
  for (const auto& line : id_lines.lines) {
    if (line->bytes() == id_scratch) {
      sse_send(line);
      return;
    }
  }
  auto line = raw_frame(id_scratch);
  if (id_lines.lines.size() < kMaxIdLines) id_lines.lines.push_back(line);
  sse_send(line);
}

void ClientSession::sse_send(std::string_view bytes) {
  SseStream& stream = *sse();
  if (stream.open) {
    send(raw_frame(bytes));
    return;
  }
  if (!is_open()) return;
  stream.held += bytes;
  // Bounded like the queue it stands for.
  if (stream.held.size() > ctx_.limits.max_outbound_bytes) {
    ctx_.counters->slow_consumer_closes.add();
    std::string out;
    append_error(out, ErrorCode::unavailable, "too much to send before the stream opened");
    sse_refuse(503, out, ws::close_code::slow_consumer);
  }
}

void ClientSession::sse_send(const ws::SharedFrame& bytes) {
  SseStream& stream = *sse();
  if (stream.open)
    send(bytes);
  else
    sse_send(bytes->bytes());
}

void ClientSession::sse_accept() {
  SseStream& stream = *sse();
  stream.open = true;
  std::string bytes = std::move(stream.head);
  bytes += stream.held;
  std::string().swap(stream.held);
  std::string().swap(stream.head);
  send(raw_frame(bytes));
}

void ClientSession::sse_refuse(int status, std::string_view json, uint16_t close_code) {
  SseStream& stream = *sse();
  if (stream.open || !is_open()) return;
  stream.open = true;  // nothing else goes out: the connection is closing
  std::string().swap(stream.held);
  std::string bytes = "HTTP/1.1 " + std::to_string(status) + ' ' + reason_phrase(status) +
                      "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                      "Connection: close\r\nContent-Length: " +
                      std::to_string(json.size()) + "\r\n\r\n";
  bytes += json;
  send(raw_frame(bytes));
  ws::Connection::close(close_code, "refused");
}

}  // namespace herald::protocol
