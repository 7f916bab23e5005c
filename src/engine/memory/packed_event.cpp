// PackedEvent: see packed_event.hpp. The header is copied in and out with
// memcpy, so the block needs no alignment beyond a char array's.
#include "engine/memory/packed_event.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace herald::engine {

PackedEvent::PackedEvent(uint64_t offset, int64_t ts_ms, std::string_view event,
                         std::string_view data, std::string_view from_client,
                         std::string_view from_user, std::string_view from_info) {
  const std::string_view parts[5] = {event, data, from_client, from_user, from_info};
  Header h{offset, ts_ms, {}};
  size_t total = sizeof(Header);
  for (int i = 0; i < 5; ++i) {
    // Messages are bounded far below this by limits.max_message_bytes.
    if (parts[i].size() > std::numeric_limits<uint32_t>::max())
      throw std::length_error("event too large to store");
    h.sizes[i] = static_cast<uint32_t>(parts[i].size());
    total += parts[i].size();
  }
  block_ = std::make_unique_for_overwrite<char[]>(total);
  std::memcpy(block_.get(), &h, sizeof h);
  char* p = block_.get() + sizeof h;
  for (const std::string_view part : parts) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
}

PackedEvent::Header PackedEvent::header() const {
  Header h;
  std::memcpy(&h, block_.get(), sizeof h);
  return h;
}

uint64_t PackedEvent::offset() const {
  return header().offset;
}

int64_t PackedEvent::ts_ms() const {
  return header().ts_ms;
}

StoredEvent PackedEvent::unpack() const {
  const Header h = header();
  const char* p = block_.get() + sizeof h;
  auto next = [&p](uint32_t n) {
    std::string s(p, n);
    p += n;
    return s;
  };
  StoredEvent ev;
  ev.offset = h.offset;
  ev.ts_ms = h.ts_ms;
  ev.event = next(h.sizes[0]);
  ev.data = next(h.sizes[1]);
  ev.from_client = next(h.sizes[2]);
  ev.from_user = next(h.sizes[3]);
  ev.from_info = next(h.sizes[4]);
  return ev;
}

}  // namespace herald::engine
