// permessage-deflate payload work: zlib compression of frames (per-thread
// deflater, reset per frame, sync flush) and bounded zlib inflation of
// client messages (per-thread inflater); see deflate.hpp.
#include "ws/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace herald::ws {
namespace {

constexpr uint8_t kRsv1 = 0x40;
constexpr uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};  // RFC 7692 7.2.1

// This thread's compressor at `level`: a raw DEFLATE z_stream (32 KiB
// window) reset before each frame, so frames share nothing. zlib and not
// libdeflate: libdeflate only writes streams that end in a final (BFINAL)
// block, which RFC 7692 7.2.3.4 allows but Chromium fails the connection on
// (1006) from the second such message; a sync flush ends the message on a
// block boundary, with the 00 00 ff ff that 7.2.1 strips, as every client
// expects.
z_stream* compressor(int level) {
  struct Holder {
    z_stream zs{};
    int level = 0;  // 0: not initialised
    ~Holder() {
      if (level != 0) deflateEnd(&zs);
    }
  };
  thread_local Holder h;
  if (h.level != level) {
    if (h.level != 0) deflateEnd(&h.zs);
    h.zs = z_stream{};
    h.level = deflateInit2(&h.zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK
                  ? level
                  : 0;
    if (h.level == 0) return nullptr;
  } else if (deflateReset(&h.zs) != Z_OK) {
    return nullptr;
  }
  return &h.zs;
}

// Header length and opcode byte of a server frame (unmasked).
size_t header_length(std::string_view bytes) {
  const uint8_t len7 = static_cast<uint8_t>(bytes[1]) & 0x7F;
  return len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
}

std::shared_ptr<const Frame> compress(const Frame& frame, int level) {
  const std::string_view bytes = frame.bytes();
  const size_t header_len = header_length(bytes);
  const std::string_view payload = bytes.substr(header_len);
  z_stream* zs = compressor(level);
  if (!zs) return nullptr;  // allocation failure: send the frame uncompressed
  // Compressed into a per-thread scratch buffer, then copied into a frame of
  // the exact size: a queued frame holds no slack of the worst-case bound.
  thread_local std::string scratch;
  const size_t bound = deflateBound(zs, payload.size()) + 16;  // + the sync flush's blocks
  if (scratch.size() < bound) scratch.resize(bound);
  zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
  zs->avail_in = static_cast<uInt>(payload.size());
  zs->next_out = reinterpret_cast<Bytef*>(scratch.data());
  zs->avail_out = static_cast<uInt>(bound);
  const int rc = deflate(zs, Z_SYNC_FLUSH);
  size_t n = bound - zs->avail_out;
  const bool complete = rc == Z_OK && zs->avail_in == 0 && zs->avail_out != 0;
  std::shared_ptr<Frame> out;
  // The tail is stripped (RFC 7692 7.2.1: the receiver appends it again);
  // a result no smaller than the payload is not worth an RSV1 frame.
  if (complete && n >= 4 && std::memcmp(scratch.data() + n - 4, kTail, 4) == 0 &&
      n - 4 < payload.size()) {
    n -= 4;
    out = std::make_shared<Frame>();
    uint8_t header[kMaxHeaderBytes];
    const auto op = static_cast<Opcode>(static_cast<uint8_t>(bytes[0]) & 0x0F);
    const size_t out_header = encode_header(header, op, n);
    header[0] |= kRsv1;
    out->storage.reserve(out_header + n);
    out->storage.append(reinterpret_cast<const char*>(header), out_header);
    out->storage.append(scratch.data(), n);
  }
  if (scratch.capacity() > 64 * 1024) {
    std::string().swap(scratch);  // one large message must not pin memory on this thread
  }
  return out;
}

}  // namespace

SharedFrame deflated(const SharedFrame& frame, const DeflateSettings& settings) {
  const std::string_view bytes = frame->bytes();
  if (bytes.size() < 2) return frame;
  const auto b0 = static_cast<uint8_t>(bytes[0]);
  const uint8_t op = b0 & 0x0F;
  // Only whole, not yet compressed text and binary messages.
  const bool data =
      op == static_cast<uint8_t>(Opcode::text) || op == static_cast<uint8_t>(Opcode::binary);
  if (!data || (b0 & 0x80) == 0 || (b0 & 0x70) != 0) return frame;
  if (bytes.size() - header_length(bytes) < std::max<size_t>(settings.min_bytes, 1)) return frame;
  std::call_once(frame->deflate_once,
                 [&] { frame->deflate_variant = compress(*frame, settings.level); });
  return frame->deflate_variant ? frame->deflate_variant : frame;
}

uint16_t inflate_message(std::string_view compressed, size_t max_bytes, std::string_view& out) {
  struct Inflater {
    z_stream zs{};
    bool ok = inflateInit2(&zs, -MAX_WBITS) == Z_OK;  // raw DEFLATE, 32 KiB window
    std::string buf;
    ~Inflater() {
      if (ok) inflateEnd(&zs);
    }
  };
  thread_local Inflater inf;
  if (!inf.ok || inflateReset(&inf.zs) != Z_OK) return close_code::internal_error;
  // Keep what a previous large message left only while it is small: the
  // buffer is bounded by max_message_bytes but need not stay that large.
  if (inf.buf.capacity() > 64 * 1024) std::string().swap(inf.buf);
  inf.buf.clear();
  size_t produced = 0;
  const std::string_view parts[2] = {
      compressed, std::string_view(reinterpret_cast<const char*>(kTail), sizeof kTail)};
  for (const auto part : parts) {
    inf.zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
    inf.zs.avail_in = static_cast<uInt>(part.size());
    for (;;) {
      // Room for one byte more than allowed, so going past the limit shows.
      if (produced == inf.buf.size()) {
        const size_t grow = std::clamp<size_t>(produced, 4096, 1 << 20);
        inf.buf.resize(std::min(produced + grow, max_bytes + 1));
      }
      inf.zs.next_out = reinterpret_cast<Bytef*>(inf.buf.data() + produced);
      inf.zs.avail_out = static_cast<uInt>(inf.buf.size() - produced);
      const int rc = inflate(&inf.zs, Z_SYNC_FLUSH);
      produced = inf.buf.size() - inf.zs.avail_out;
      if (produced > max_bytes) return close_code::message_too_big;
      if (rc == Z_STREAM_END) {
        // A final block (BFINAL, RFC 7692 7.2.3.4) ends the message; the
        // appended tail, if not yet read, is not part of it.
        out = std::string_view(inf.buf.data(), produced);
        return 0;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return close_code::invalid_payload;
      // Output room left means inflate has flushed all it could from the
      // input it had: next part. A full output buffer may hide more.
      if (inf.zs.avail_out != 0) break;
    }
  }
  out = std::string_view(inf.buf.data(), produced);
  return 0;
}

}  // namespace herald::ws
