// PackedEvent: see packed_event.hpp. The ts is copied in and out with
// memcpy, so the block needs no alignment beyond a char array's.
#include "engine/memory/packed_event.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace herald::engine {
namespace {

constexpr int kParts = 5;  // event, data, from_client, from_user, from_info

size_t varint_size(uint64_t n) {
  size_t k = 1;
  while (n >= 0x80) {
    n >>= 7;
    ++k;
  }
  return k;
}

char* put_varint(char* p, uint64_t n) {
  while (n >= 0x80) {
    *p++ = static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  *p++ = static_cast<char>(n);
  return p;
}

const char* get_varint(const char* p, uint64_t& n) {
  n = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(*p++);
    n |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return p;
  }
}

}  // namespace

PackedEvent::PackedEvent(int64_t ts_ms, std::string_view event, std::string_view data,
                         std::string_view from_client, std::string_view from_user,
                         std::string_view from_info) {
  const std::string_view parts[kParts] = {event, data, from_client, from_user, from_info};
  size_t total = sizeof ts_ms;
  for (const std::string_view part : parts) {
    // Messages are bounded far below this by limits.max_message_bytes.
    if (part.size() > std::numeric_limits<uint32_t>::max())
      throw std::length_error("event too large to store");
    total += varint_size(part.size()) + part.size();
  }
  block_ = std::make_unique_for_overwrite<char[]>(total);
  std::memcpy(block_.get(), &ts_ms, sizeof ts_ms);
  char* p = block_.get() + sizeof ts_ms;
  for (const std::string_view part : parts) p = put_varint(p, part.size());
  for (const std::string_view part : parts) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
}

int64_t PackedEvent::ts_ms() const {
  int64_t ts;
  std::memcpy(&ts, block_.get(), sizeof ts);
  return ts;
}

StoredEvent PackedEvent::unpack(uint64_t offset) const {
  const char* p = block_.get() + sizeof(int64_t);
  uint64_t sizes[kParts];
  for (uint64_t& n : sizes) p = get_varint(p, n);
  auto next = [&p](uint64_t n) {
    std::string s(p, n);
    p += n;
    return s;
  };
  StoredEvent ev;
  ev.offset = offset;
  ev.ts_ms = ts_ms();
  ev.event = next(sizes[0]);
  ev.data = next(sizes[1]);
  ev.from_client = next(sizes[2]);
  ev.from_user = next(sizes[3]);
  ev.from_info = next(sizes[4]);
  return ev;
}

}  // namespace herald::engine
