// FrameWriter and helpers for SharedFrame; see shared_frame.hpp.
#include "ws/shared_frame.hpp"

#include <cstring>

namespace herald::ws {

FrameWriter::FrameWriter(size_t payload_reserve) {
  storage_.reserve(kMaxHeaderBytes + payload_reserve);
  storage_.assign(kMaxHeaderBytes, '\0');
}

SharedFrame FrameWriter::finish(Opcode op, std::optional<uint64_t> event_offset) {
  auto frame = std::make_shared<Frame>();
  frame->event_offset = event_offset;
  const uint64_t payload_len = storage_.size() - kMaxHeaderBytes;
  uint8_t header[kMaxHeaderBytes];
  const size_t header_len = encode_header(header, op, payload_len);
  frame->begin = static_cast<uint32_t>(kMaxHeaderBytes - header_len);
  std::memcpy(storage_.data() + frame->begin, header, header_len);
  frame->storage = std::move(storage_);
  storage_.assign(kMaxHeaderBytes, '\0');
  return frame;
}

SharedFrame make_frame(std::string_view payload, Opcode op) {
  FrameWriter writer(payload.size());
  writer.payload().append(payload);
  return writer.finish(op);
}

SharedFrame make_close_frame(uint16_t code, std::string_view reason) {
  auto frame = std::make_shared<Frame>();
  frame->storage = encode_close(code, reason);
  return frame;
}

}  // namespace herald::ws
