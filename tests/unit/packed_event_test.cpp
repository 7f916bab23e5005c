// engine::PackedEvent: the memory engine's one-block form of a stored event
// gives back exactly what was stored, whatever the strings hold.
#include "engine/memory/packed_event.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace herald::engine {
namespace {

TEST(PackedEventTest, UnpacksWhatWasPacked) {
  const std::string data = "{\"text\":\"" + std::string(300, 'x') + "\"}";
  const PackedEvent p(-7, "chat.message", data, "c8f2a1", "alice", "{\"name\":\"A\"}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p.ts_ms(), -7);
  const StoredEvent ev = p.unpack(42);
  EXPECT_EQ(ev.offset, 42u);
  EXPECT_EQ(ev.ts_ms, -7);
  EXPECT_EQ(ev.event, "chat.message");
  EXPECT_EQ(ev.data, data);
  EXPECT_EQ(ev.from_client, "c8f2a1");
  EXPECT_EQ(ev.from_user, "alice");
  EXPECT_EQ(ev.from_info, "{\"name\":\"A\"}");
}

TEST(PackedEventTest, KeepsEmptyStringsAndBytesThatAreNotText) {
  const std::string binary("a\0b\xff", 4);
  const StoredEvent ev = PackedEvent(0, "e", binary, "", "", "").unpack(1);
  EXPECT_EQ(ev.data, binary);
  EXPECT_EQ(ev.from_client, "");
  EXPECT_EQ(ev.from_user, "");
  EXPECT_EQ(ev.from_info, "");
  EXPECT_FALSE(PackedEvent{});  // what a ring slot holds once its event is dropped
}

// The lengths are varints: one byte up to 127, more beyond; each size
// class round-trips, and the ts keeps its full range.
TEST(PackedEventTest, LengthsOfEverySizeClassRoundTrip) {
  for (const size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{128}, size_t{16383},
                         size_t{16384}, size_t{1} << 21}) {
    const std::string data(n, 'd');
    const std::string info(n / 2, 'i');
    const PackedEvent p(INT64_MIN, "e", data, "c", "u", info);
    const StoredEvent ev = p.unpack(UINT64_MAX);
    EXPECT_EQ(ev.offset, UINT64_MAX);
    EXPECT_EQ(ev.ts_ms, INT64_MIN);
    EXPECT_EQ(ev.event, "e");
    EXPECT_EQ(ev.data, data) << n;
    EXPECT_EQ(ev.from_client, "c");
    EXPECT_EQ(ev.from_user, "u");
    EXPECT_EQ(ev.from_info, info) << n;
  }
}

}  // namespace
}  // namespace herald::engine
