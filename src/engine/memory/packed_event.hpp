// PackedEvent: one stored event of the memory engine in a single heap block
// (its ts, then the five strings' lengths as LEB128 varints, then their
// bytes), 8 bytes in the channel's ring. A StoredEvent is 176 bytes of five
// std::strings plus a block for each string too long for its inline buffer;
// most channels of a busy server are idle and hold a few events, and this is
// what they pay per event (issue 15: ~300 bytes for a 100-byte event before,
// ~144 now). The offset is not stored: the ring knows it from the event's
// place (offsets held are contiguous), and gives it to unpack().
// Reads unpack to StoredEvent (history replies copy anyway).
// Owns nothing else; used by memory_engine.cpp only.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/engine.hpp"

namespace herald::engine {

class PackedEvent {
 public:
  PackedEvent() = default;
  PackedEvent(int64_t ts_ms, std::string_view event, std::string_view data,
              std::string_view from_client, std::string_view from_user, std::string_view from_info);

  explicit operator bool() const { return block_ != nullptr; }
  int64_t ts_ms() const;
  // The event as stored, with `offset` (its place in the channel).
  StoredEvent unpack(uint64_t offset) const;

 private:
  std::unique_ptr<char[]> block_;  // ts_ms (8 bytes), 5 varint lengths, the bytes
};

}  // namespace herald::engine
