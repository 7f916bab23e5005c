// Immutable, reference-counted WebSocket frames: the unit of the outbound
// path. A published event is framed once into a SharedFrame and the same
// frame is queued on every subscriber's connection (no copy per subscriber).
// Connections that speak permessage-deflate or SSE queue the frame's
// compressed or SSE variant instead, also made once per frame.
//
// FrameWriter builds a frame in place: it reserves room for the largest
// header, lets the caller append the payload, then writes the real header
// just before the payload, so framing never moves the payload.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "ws/frame_codec.hpp"

namespace herald::ws {

struct Frame {
  std::string storage;  // [unused prefix][header][payload]
  uint32_t begin = 0;   // where the header starts in storage
  // An `event` frame of a stored event: its offset (the SSE fallback puts
  // it in the stream's `id:`); absent for every other frame.
  std::optional<uint64_t> event_offset;

  std::string_view bytes() const { return std::string_view(storage).substr(begin); }
  size_t size() const { return storage.size() - begin; }

  // Other encodings of the same message, each made once on first use by
  // whichever worker thread needs it, then shared like the frame itself.
  //
  // SSE (sse::variant_of): the message as `data:` lines.
  mutable std::once_flag sse_once;
  mutable std::shared_ptr<const Frame> sse_variant;
  // SSE, event frames: the whole message for streams of this one channel
  // (the variant and its `id: <epoch>:<offset>` line, the same for all of
  // them), with the epoch it was built for.
  mutable std::once_flag sse_single_once;
  mutable std::shared_ptr<const Frame> sse_single;
  mutable std::string sse_single_epoch;
  // permessage-deflate (ws/deflate.hpp): the message compressed; null when
  // compression does not shrink it.
  mutable std::once_flag deflate_once;
  mutable std::shared_ptr<const Frame> deflate_variant;
};

using SharedFrame = std::shared_ptr<const Frame>;

class FrameWriter {
 public:
  explicit FrameWriter(size_t payload_reserve = 128);
  // The payload so far; append to it.
  std::string& payload() { return storage_; }
  // Writes the header and hands the frame over; the writer is empty after.
  // `event_offset`: see Frame::event_offset.
  SharedFrame finish(Opcode op = Opcode::text, std::optional<uint64_t> event_offset = {});

 private:
  std::string storage_;
};

// A text frame with `payload` copied in.
SharedFrame make_frame(std::string_view payload, Opcode op = Opcode::text);

// A close frame (code and reason as in encode_close).
SharedFrame make_close_frame(uint16_t code, std::string_view reason);

}  // namespace herald::ws
