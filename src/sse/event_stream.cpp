// The SSE wire format: data lines, frame variants, combined ids and the
// /sse query; see event_stream.hpp.
#include "sse/event_stream.hpp"

#include <charconv>
#include <mutex>

#include "http/api_util.hpp"

namespace herald::sse {

void append_data_lines(std::string& out, std::string_view json) {
  // SSE ends a line at "\r\n", "\r" or "\n": each piece becomes one field.
  // "data: ": EventSource drops one space after the colon, so a line that
  // starts with spaces (indented JSON) keeps all of its own.
  size_t start = 0;
  while (true) {
    const size_t end = json.find_first_of("\r\n", start);
    out += "data: ";
    out += json.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out += '\n';
    if (end == std::string_view::npos) return;
    start = end + 1;
    if (json[end] == '\r' && start < json.size() && json[start] == '\n') ++start;
  }
}

namespace {

// Walks the server frames (unmasked) in `bytes`, calling f(payload) for
// each text frame; other frames (close, ping) have no SSE form.
template <class F>
void for_each_text_frame(std::string_view bytes, F&& f) {
  size_t pos = 0;
  while (pos + 2 <= bytes.size()) {
    const auto b0 = static_cast<unsigned char>(bytes[pos]);
    const auto b1 = static_cast<unsigned char>(bytes[pos + 1]);
    uint64_t len = b1 & 0x7f;
    size_t header = 2;
    if (len == 126 || len == 127) {
      const size_t n = len == 126 ? 2 : 8;
      if (pos + 2 + n > bytes.size()) return;
      len = 0;
      for (size_t i = 0; i < n; ++i)
        len = (len << 8) | static_cast<unsigned char>(bytes[pos + 2 + i]);
      header += n;
    }
    if (pos + header + len > bytes.size()) return;
    if ((b0 & 0x0f) == 0x1) f(bytes.substr(pos + header, len));
    pos += header + len;
  }
}

}  // namespace

const ws::SharedFrame& variant_of(const ws::Frame& frame) {
  std::call_once(frame.sse_once, [&frame] {
    auto v = std::make_shared<ws::Frame>();
    v->storage.reserve(frame.size() + 16);
    for_each_text_frame(frame.bytes(), [&](std::string_view payload) {
      append_data_lines(v->storage, payload);
      if (!frame.event_offset) v->storage += '\n';
    });
    frame.sse_variant = std::move(v);
  });
  return frame.sse_variant;
}

const ws::SharedFrame* single_channel_message(const ws::Frame& frame, std::string_view epoch) {
  std::call_once(frame.sse_single_once, [&frame, epoch] {
    const auto& variant = variant_of(frame);
    auto m = std::make_shared<ws::Frame>();
    m->storage.reserve(variant->size() + epoch.size() + 32);
    m->storage += variant->bytes();
    m->storage += "id: ";
    append_percent_encoded(m->storage, epoch);
    m->storage += ':';
    m->storage += std::to_string(frame.event_offset.value_or(0));
    m->storage += "\n\n";
    frame.sse_single_epoch.assign(epoch);
    frame.sse_single = std::move(m);
  });
  return frame.sse_single_epoch == epoch ? &frame.sse_single : nullptr;
}

void append_percent_encoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '_' || c == '~' || c == '-') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
}

void append_id(std::string& out, const std::vector<std::optional<Position>>& positions) {
  for (size_t i = 0; i < positions.size(); ++i) {
    if (i > 0) out += ',';
    if (!positions[i]) continue;
    append_percent_encoded(out, positions[i]->epoch);
    out += ':';
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, positions[i]->offset).ptr;
    out.append(digits, end);
  }
}

std::string encode_id(const std::vector<std::optional<Position>>& positions) {
  std::string out;
  append_id(out, positions);
  return out;
}

std::optional<std::vector<std::optional<Position>>> decode_id(std::string_view id,
                                                              size_t channels) {
  std::vector<std::optional<Position>> out;
  size_t start = 0;
  while (true) {
    const size_t comma = id.find(',', start);
    const std::string_view entry =
        id.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (out.size() == channels) return std::nullopt;
    if (entry.empty()) {
      out.emplace_back();
    } else {
      const size_t colon = entry.rfind(':');
      if (colon == std::string_view::npos) return std::nullopt;
      auto epoch = http::percent_decode(entry.substr(0, colon));
      const std::string_view digits = entry.substr(colon + 1);
      uint64_t offset = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), offset);
      if (!epoch || digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
        return std::nullopt;
      out.push_back(Position{std::move(*epoch), offset});
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (out.size() != channels) return std::nullopt;
  return out;
}

Query parse_query(std::string_view target, size_t max_channels) {
  Query q;
  const auto mark = target.find('?');
  if (mark == std::string_view::npos) {
    q.error = "no channel: name one or more with ?channel=";
    return q;
  }
  std::string_view rest = target.substr(mark + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view param = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = param.find('=');
    const std::string_view name = param.substr(0, eq);
    if (name != "channel" && name != "token" && name != "last_event_id") continue;
    auto value = http::percent_decode(eq == std::string_view::npos ? std::string_view{}
                                                                   : param.substr(eq + 1));
    if (!value) {
      q.error = std::string(name) + ": malformed percent-encoding";
      return q;
    }
    if (name == "channel") {
      if (q.channels.size() == max_channels) {
        q.error = "too many channels (at most " + std::to_string(max_channels) + " per stream)";
        return q;
      }
      q.channels.push_back(std::move(*value));
    } else if (name == "token") {
      q.token = std::move(*value);
    } else {
      q.last_event_id = std::move(*value);
    }
  }
  if (q.channels.empty()) q.error = "no channel: name one or more with ?channel=";
  return q;
}

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view value = pair.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      return std::string(value);
    }
  }
  return {};
}

}  // namespace herald::sse
