// PackedEvent: one stored event of the memory engine in a single heap block
// (offset, ts and the five strings' lengths, then their bytes), 8 bytes in
// the channel's ring. A StoredEvent is 176 bytes of five std::strings plus a
// block for each string too long for its inline buffer; most channels of a
// busy server are idle and hold a few events, and this is what they pay per
// event (issue 15: ~300 bytes for a 100-byte event before, ~170 now).
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
  PackedEvent(uint64_t offset, int64_t ts_ms, std::string_view event, std::string_view data,
              std::string_view from_client, std::string_view from_user, std::string_view from_info);

  explicit operator bool() const { return block_ != nullptr; }
  uint64_t offset() const;
  int64_t ts_ms() const;
  StoredEvent unpack() const;

 private:
  struct Header {
    uint64_t offset;
    int64_t ts_ms;
    uint32_t sizes[5];  // event, data, from_client, from_user, from_info
  };
  Header header() const;

  std::unique_ptr<char[]> block_;  // Header, then the five strings' bytes
};

}  // namespace herald::engine
