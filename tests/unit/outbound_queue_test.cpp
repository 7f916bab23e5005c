// Tests of the outbound path's building blocks: FrameWriter framing an event
// once, and OutboundQueue's byte accounting across partial writes.
#include "ws/outbound_queue.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ws/shared_frame.hpp"

using herald::ws::FrameWriter;
using herald::ws::make_frame;
using herald::ws::OutboundQueue;

namespace {

std::string gathered(const OutboundQueue& q) {
  iovec iov[64];
  const int n = q.gather(iov, 64);
  std::string out;
  for (int i = 0; i < n; ++i) out.append(static_cast<char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

}  // namespace

TEST(FrameWriter, WritesHeaderRightBeforePayload) {
  for (size_t len : {0u, 5u, 125u, 126u, 300u, 65535u, 65536u, 70000u}) {
    FrameWriter w;
    w.payload().append(len, 'x');
    auto frame = w.finish();
    auto bytes = frame->bytes();
    ASSERT_EQ(static_cast<uint8_t>(bytes[0]), 0x81) << len;  // FIN + text
    const size_t header = len < 126 ? 2 : len < 65536 ? 4 : 10;
    EXPECT_EQ(bytes.size(), header + len) << len;
    EXPECT_EQ(bytes.substr(header), std::string(len, 'x')) << len;
  }
}

TEST(FrameWriter, IsReusableAfterFinish) {
  FrameWriter w;
  w.payload() += "one";
  auto a = w.finish();
  w.payload() += "two!";
  auto b = w.finish();
  EXPECT_EQ(a->bytes(), std::string("\x81\x03one", 5));
  EXPECT_EQ(b->bytes(), std::string("\x81\x04two!", 6));
}

TEST(OutboundQueue, SharesFramesAndCountsBytes) {
  auto frame = make_frame("hello");
  OutboundQueue q1, q2;
  q1.push(frame);
  q2.push(frame);
  EXPECT_EQ(frame.use_count(), 3);  // queued by reference, not copied
  EXPECT_EQ(q1.bytes(), 7u);
  q1.consume(7);
  EXPECT_TRUE(q1.empty());
  EXPECT_EQ(q1.bytes(), 0u);
  EXPECT_EQ(frame.use_count(), 2);
}

TEST(OutboundQueue, PartialWritesResumeMidFrame) {
  OutboundQueue q;
  q.push(make_frame("abc"));
  q.push(make_frame("defg"));
  const std::string all = gathered(q);
  ASSERT_EQ(all.size(), 11u);
  for (size_t written = 0; written < all.size();) {
    EXPECT_EQ(gathered(q), all.substr(written));
    EXPECT_EQ(q.bytes(), all.size() - written);
    q.consume(1);
    ++written;
  }
  EXPECT_TRUE(q.empty());
}

TEST(OutboundQueue, DropUnstartedKeepsPartlyWrittenHead) {
  OutboundQueue q;
  q.push(make_frame("first"));
  q.push(make_frame("second"));
  q.push(make_frame("third"));
  q.consume(3);  // inside the first frame
  q.drop_unstarted();
  EXPECT_EQ(q.bytes(), 4u);  // the rest of "first" only
  EXPECT_EQ(gathered(q), std::string("irst"));

  OutboundQueue untouched;
  untouched.push(make_frame("a"));
  untouched.drop_unstarted();
  EXPECT_TRUE(untouched.empty());
  EXPECT_EQ(untouched.bytes(), 0u);
}

TEST(OutboundQueue, GatherStopsAtMax) {
  OutboundQueue q;
  for (int i = 0; i < 100; ++i) q.push(make_frame("x"));
  iovec iov[64];
  EXPECT_EQ(q.gather(iov, 64), 64);
  q.consume(64 * 3);
  EXPECT_EQ(q.gather(iov, 64), 36);
  EXPECT_EQ(q.bytes(), 36u * 3);
}
