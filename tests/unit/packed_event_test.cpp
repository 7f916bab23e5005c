// engine::PackedEvent: the memory engine's one-block form of a stored event
// gives back exactly what was stored, whatever the strings hold.
#include "engine/memory/packed_event.hpp"

#include <gtest/gtest.h>

#include <string>

namespace herald::engine {
namespace {

TEST(PackedEventTest, UnpacksWhatWasPacked) {
  const std::string data = "{\"text\":\"" + std::string(300, 'x') + "\"}";
  const PackedEvent p(42, -7, "chat.message", data, "c8f2a1", "alice", "{\"name\":\"A\"}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p.offset(), 42u);
  EXPECT_EQ(p.ts_ms(), -7);
  const StoredEvent ev = p.unpack();
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
  const StoredEvent ev = PackedEvent(1, 0, "e", binary, "", "", "").unpack();
  EXPECT_EQ(ev.data, binary);
  EXPECT_EQ(ev.from_client, "");
  EXPECT_EQ(ev.from_user, "");
  EXPECT_EQ(ev.from_info, "");
  EXPECT_FALSE(PackedEvent{});  // what a ring slot holds once its event is dropped
}

}  // namespace
}  // namespace herald::engine
