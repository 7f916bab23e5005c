// Unit tests of the redis engine's cross-node ordering logic without Redis:
// ChannelSequencer (channel_sequencer.hpp: what is handed over, when, and
// which fills it asks for) and the pub/sub payload codec (fanout_payload.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/redis/channel_sequencer.hpp"
#include "engine/redis/fanout_payload.hpp"

namespace herald::engine::redis {
namespace {

using Out = ChannelSequencer::Out;
using Kind = RemoteMessage::Kind;
using Offsets = std::vector<uint64_t>;

StoredEvent ev(uint64_t offset) {
  return StoredEvent{
      offset, 1000 + static_cast<int64_t>(offset), "e", std::to_string(offset), "c", "u", ""};
}

std::vector<StoredEvent> evs(uint64_t from, uint64_t to) {
  std::vector<StoredEvent> out;
  for (uint64_t o = from; o <= to; ++o) out.push_back(ev(o));
  return out;
}

Offsets offsets(const Out& out) {
  Offsets o;
  for (const auto& m : out.handed)
    if (m.kind == Kind::event) o.push_back(m.event.offset);
  return o;
}

bool has_reset(const Out& out, const std::string& reason = "resubscribe") {
  for (const auto& m : out.handed)
    if (m.kind == Kind::reset && m.reason == reason) return true;
  return false;
}

// A sequencer made known at (epoch "E", last) by a read.
ChannelSequencer known_at(uint64_t last, size_t max_held = 10000) {
  ChannelSequencer s("ch", max_held);
  s.read_sent();
  Out out;
  EXPECT_TRUE(s.read_ready("E", last, out));
  s.read_delivered(true, out);
  EXPECT_TRUE(out.handed.empty());
  return s;
}

TEST(RedisSequencerTest, UnknownPassesEventsAsTheyCome) {
  ChannelSequencer s("ch");
  Out out;
  s.remote_event("E", ev(5), out);
  s.remote_event("E", ev(3), out);
  EXPECT_EQ(offsets(out), (Offsets{5, 3}));
  EXPECT_EQ(out.handed[0].channel, "ch");
  EXPECT_EQ(out.handed[0].epoch, "E");
  EXPECT_EQ(out.handed[0].event.data, "5");
  EXPECT_FALSE(out.fill);
  EXPECT_FALSE(s.known());
}

TEST(RedisSequencerTest, KnownHandsOverInOrderDropsOldAndFillsGaps) {
  auto s = known_at(4);
  Out out;
  s.remote_event("E", ev(4), out);  // duplicate
  s.remote_event("E", ev(5), out);
  s.remote_event("E", ev(7), out);  // 6 missing: held, filled
  EXPECT_EQ(offsets(out), (Offsets{5}));
  ASSERT_TRUE(out.fill);
  EXPECT_EQ(out.fill->after, 5u);
  EXPECT_EQ(out.fill->upto, 7u);
  EXPECT_EQ(s.held(), 1u);
  Out more;
  s.remote_event("E", ev(8), more);  // a fill is already out: no second one
  EXPECT_FALSE(more.fill);
  EXPECT_TRUE(more.handed.empty());
  s.fill_answered(out.fill->id, "E", evs(6, 7), more);
  EXPECT_EQ(offsets(more), (Offsets{6, 7, 8}));
  EXPECT_EQ(s.last(), 8u);
  EXPECT_EQ(s.held(), 0u);
}

TEST(RedisSequencerTest, FillMissingPartOfTheRangeResets) {
  auto s = known_at(10);
  Out out;
  s.remote_event("E", ev(20), out);
  ASSERT_TRUE(out.fill);
  Out after;
  s.fill_answered(out.fill->id, "E", evs(15, 19), after);  // 11..14 trimmed away
  EXPECT_TRUE(offsets(after).empty());
  EXPECT_TRUE(has_reset(after));
  EXPECT_FALSE(s.known());
  // Unknown: a stale fill answer is ignored, events pass.
  Out later;
  s.fill_answered(out.fill->id, "E", evs(11, 19), later);
  s.remote_event("E", ev(21), later);
  EXPECT_EQ(offsets(later), (Offsets{21}));
}

TEST(RedisSequencerTest, FillOfAnotherEpochOrNoMetaResets) {
  auto s = known_at(1);
  Out out;
  s.remote_event("E", ev(3), out);
  Out after;
  s.fill_answered(out.fill->id, std::nullopt, {}, after);
  EXPECT_TRUE(has_reset(after));
  auto t = known_at(1);
  Out out2, after2;
  t.remote_event("E", ev(3), out2);
  t.fill_answered(out2.fill->id, "F", evs(2, 2), after2);
  EXPECT_TRUE(has_reset(after2));
}

TEST(RedisSequencerTest, OwnAppendIsHeldUntilTheOffsetsBeforeItWereHandedOver) {
  auto s = known_at(2);
  s.own_stored(5, "E");
  Out out;
  EXPECT_FALSE(s.own_ready(5, "E", out));  // 3 and 4 are another node's
  ASSERT_TRUE(out.fill);
  EXPECT_EQ(out.fill->after, 2u);
  EXPECT_EQ(out.fill->upto, 4u);
  Out more;
  s.remote_event("E", ev(3), more);
  EXPECT_EQ(offsets(more), (Offsets{3}));
  EXPECT_FALSE(s.own_ready(5, "E", more));
  s.remote_event("E", ev(6), more);  // after the own one: waits for it
  s.remote_event("E", ev(4), more);
  EXPECT_EQ(offsets(more), (Offsets{3, 4}));
  EXPECT_TRUE(s.own_ready(5, "E", more));
  s.own_delivered(5, "E", more);
  EXPECT_EQ(offsets(more), (Offsets{3, 4, 6}));
  EXPECT_EQ(s.last(), 6u);
  // The fill's late answer changes nothing.
  Out late;
  s.fill_answered(out.fill->id, "E", evs(3, 4), late);
  EXPECT_TRUE(late.handed.empty());
}

TEST(RedisSequencerTest, FillSkipsOwnAppendsAndCountsThemAsCovered) {
  auto s = known_at(0);
  s.own_stored(2, "E");
  Out out;
  s.remote_event("E", ev(3), out);
  ASSERT_TRUE(out.fill);
  Out after;
  s.fill_answered(out.fill->id, "E", evs(1, 3), after);
  EXPECT_EQ(offsets(after), (Offsets{1}));  // 2 is ours: through its callback
  EXPECT_FALSE(has_reset(after));
  EXPECT_TRUE(s.own_ready(2, "E", after));
  s.own_delivered(2, "E", after);
  EXPECT_EQ(offsets(after), (Offsets{1, 3}));
}

TEST(RedisSequencerTest, ReadIsHeldUntilItsLastOffsetWasHandedOver) {
  auto s = known_at(3);
  s.read_sent();
  Out out;
  EXPECT_FALSE(s.read_ready("E", 5, out));
  ASSERT_TRUE(out.fill);
  EXPECT_EQ(out.fill->upto, 5u);
  Out more;
  s.remote_event("E", ev(4), more);
  s.remote_event("E", ev(6), more);  // beyond the read: not before its callback
  s.remote_event("E", ev(5), more);
  EXPECT_EQ(offsets(more), (Offsets{4, 5}));
  EXPECT_TRUE(s.read_ready("E", 5, more));
  s.read_delivered(true, more);
  EXPECT_EQ(offsets(more), (Offsets{4, 5, 6}));
}

TEST(RedisSequencerTest, OutstandingReadPausesRemoteEvents) {
  // Events that arrive while a read is out could be newer than its result:
  // handing them over first would hide them from the new subscriber.
  auto s = known_at(3);
  s.read_sent();
  Out out;
  s.remote_event("E", ev(4), out);
  s.remote_event("E", ev(5), out);
  EXPECT_TRUE(out.handed.empty());
  EXPECT_TRUE(s.read_ready("E", 4, out));  // the read ran after 4, before 5
  EXPECT_EQ(offsets(out), (Offsets{4}));
  s.read_delivered(true, out);
  EXPECT_EQ(offsets(out), (Offsets{4, 5}));
}

TEST(RedisSequencerTest, FirstReadSetsTheStateFromItsResult) {
  ChannelSequencer s("ch");
  s.read_sent();
  Out out;
  s.remote_event("E", ev(7), out);  // paused while unknown too
  s.remote_event("E", ev(9), out);
  EXPECT_TRUE(out.handed.empty());
  EXPECT_TRUE(s.read_ready("E", 7, out));
  EXPECT_TRUE(s.known());
  EXPECT_EQ(s.last(), 7u);
  s.read_delivered(true, out);
  EXPECT_TRUE(offsets(out).empty());
  ASSERT_TRUE(out.fill);  // 8 is missing
  EXPECT_EQ(out.fill->after, 7u);
  EXPECT_EQ(out.fill->upto, 9u);
}

TEST(RedisSequencerTest, FailedReadWhileUnknownReleasesWhatWaited) {
  ChannelSequencer s("ch");
  s.read_sent();
  Out out;
  s.remote_event("E", ev(2), out);
  s.remote_event("E", ev(1), out);
  EXPECT_TRUE(out.handed.empty());
  s.read_delivered(true, out);
  EXPECT_EQ(offsets(out), (Offsets{1, 2}));
  EXPECT_FALSE(s.known());
}

TEST(RedisSequencerTest, AnotherEpochResets) {
  auto s = known_at(3);
  Out out;
  s.remote_event("F", ev(1), out);
  EXPECT_TRUE(has_reset(out));
  EXPECT_FALSE(s.known());
  auto t = known_at(3);
  t.own_stored(1, "F");
  Out own;
  EXPECT_TRUE(t.own_ready(1, "F", own));  // goes, after a reset
  EXPECT_TRUE(has_reset(own));
  auto u = known_at(3);
  u.read_sent();
  Out rd;
  EXPECT_TRUE(u.read_ready("F", 0, rd));
  EXPECT_TRUE(has_reset(rd));
  EXPECT_TRUE(u.known());
  EXPECT_EQ(u.epoch(), "F");
  EXPECT_EQ(u.last(), 0u);
}

TEST(RedisSequencerTest, TooManyHeldResets) {
  auto s = known_at(0, 3);
  Out out;
  for (uint64_t o = 2; o <= 4; ++o) s.remote_event("E", ev(o), out);
  EXPECT_FALSE(has_reset(out));
  s.remote_event("E", ev(5), out);
  EXPECT_TRUE(has_reset(out));
  EXPECT_EQ(s.held(), 0u);
  // and a gap larger than the bound is not even filled
  auto t = known_at(0, 3);
  Out big;
  t.remote_event("E", ev(10), big);
  EXPECT_FALSE(big.fill);
  EXPECT_TRUE(has_reset(big));
}

TEST(RedisSequencerTest, ManyOwnAppendsInFlightAreNotAGap) {
  // Beyond max_held offsets ahead, but all this node's own: nothing to fill.
  auto s = known_at(0, 100);
  for (uint64_t o = 1; o <= 1000; ++o) s.own_stored(o, "E");
  Out out;
  s.remote_event("E", ev(1001), out);
  EXPECT_FALSE(out.fill);
  EXPECT_TRUE(out.handed.empty());
  // One missing after them: a fill of only what follows the covered run.
  s.own_stored(1002, "E");
  s.remote_event("E", ev(1003), out);
  EXPECT_FALSE(out.fill);
  s.remote_event("E", ev(1005), out);  // 1004 missing
  ASSERT_TRUE(out.fill);
  EXPECT_EQ(out.fill->after, 1003u);
  EXPECT_EQ(out.fill->upto, 1005u);
  for (uint64_t o = 1; o <= 1000; ++o) {
    ASSERT_TRUE(s.own_ready(o, "E", out));
    s.own_delivered(o, "E", out);
  }
  EXPECT_EQ(offsets(out), (Offsets{1001}));
  EXPECT_FALSE(has_reset(out));
}

TEST(RedisSequencerTest, RemoteResetKeepsItsReason) {
  auto s = known_at(3);
  Out out;
  s.remote_reset("destroyed", out);
  ASSERT_EQ(out.handed.size(), 1u);
  EXPECT_EQ(out.handed[0].kind, Kind::reset);
  EXPECT_EQ(out.handed[0].reason, "destroyed");
  EXPECT_EQ(out.handed[0].channel, "ch");
  EXPECT_FALSE(s.known());
}

TEST(RedisSequencerTest, CheckFillsUpToMetaLast) {
  auto s = known_at(3);
  Out out;
  s.check_answered("E", 3, s.floor(), out);
  EXPECT_FALSE(out.fill);
  s.check_answered("E", 6, s.floor(), out);
  ASSERT_TRUE(out.fill);
  EXPECT_EQ(out.fill->after, 3u);
  EXPECT_EQ(out.fill->upto, 6u);
  Out after;
  s.fill_answered(out.fill->id, "E", evs(4, 6), after);
  EXPECT_EQ(offsets(after), (Offsets{4, 5, 6}));
  Out gone;
  s.check_answered(std::nullopt, 0, s.floor(), gone);  // meta lost
  EXPECT_TRUE(has_reset(gone));
}

TEST(RedisSequencerTest, CheckBelowWhatWasHandedOverWhenSentIsARollback) {
  auto s = known_at(5);
  const auto floor = s.floor();
  Out overtaken;
  s.remote_event("E", ev(6), overtaken);  // pub/sub overtook the check's reply
  EXPECT_EQ(offsets(overtaken), (Offsets{6}));
  s.check_answered("E", 5, floor, overtaken);  // ran before 6: not a loss
  EXPECT_FALSE(overtaken.rolled_back);
  EXPECT_FALSE(has_reset(overtaken));
  Out lost;
  s.check_answered("E", 3, s.floor(), lost);  // Redis came back from a snapshot at 3
  EXPECT_EQ(lost.rolled_back, "E");
  EXPECT_TRUE(has_reset(lost));
  EXPECT_FALSE(s.known());
  Out other;
  s.check_answered("F", 0, std::make_pair(std::string("E"), uint64_t{6}),
                   other);  // new epoch: fine
  EXPECT_FALSE(other.rolled_back);
}

TEST(RedisSequencerTest, OwnAppendAtAnOffsetAlreadyHandedOverIsARollback) {
  auto s = known_at(5);
  s.own_stored(4, "E");  // the script reused 4: Redis lost 4 and 5
  Out out;
  EXPECT_TRUE(s.own_ready(4, "E", out));  // the ack goes (it is stored)...
  EXPECT_EQ(out.rolled_back, "E");        // ...and the channel needs a new epoch
  EXPECT_TRUE(has_reset(out));
}

TEST(RedisSequencerTest, CheckAnsweredBeforeTheFirstReadIsAppliedByIt) {
  ChannelSequencer s("ch");
  s.read_sent();
  Out out;
  s.check_answered("E", 5, s.floor(), out);  // ran after the read: 4 and 5 came before subscribing
  EXPECT_TRUE(s.read_ready("E", 3, out));
  s.read_delivered(true, out);
  ASSERT_TRUE(out.fill);
  EXPECT_EQ(out.fill->upto, 5u);
}

TEST(RedisSequencerTest, FailedFillResets) {
  auto s = known_at(1);
  s.own_stored(3, "E");
  Out out;
  EXPECT_FALSE(s.own_ready(3, "E", out));
  ASSERT_TRUE(out.fill);
  Out failed;
  EXPECT_TRUE(s.fill_failed(out.fill->id, failed));
  EXPECT_TRUE(has_reset(failed));
  EXPECT_FALSE(s.known());
  EXPECT_FALSE(s.fill_failed(out.fill->id, failed));  // stale: nothing held waits for it
}

TEST(RedisSequencerTest, OwnRemoveStartsTheNewEpochAtZero) {
  auto s = known_at(9);
  Out out;
  s.removed("F", out);
  EXPECT_TRUE(s.known());
  EXPECT_EQ(s.last(), 0u);
  s.remote_event("F", ev(1), out);
  EXPECT_EQ(offsets(out), (Offsets{1}));
}

TEST(RedisPayloadTest, EphemeralAndResetRoundTrip) {
  RemoteMessage e;
  e.kind = Kind::ephemeral;
  e.event = StoredEvent{0, 1700000000000, "typing", R"({"a":"1,2:3"})", "c-1", "bob", "{}"};
  auto bytes = encode_fanout("node:1,", e);
  ASSERT_TRUE(bytes);
  EXPECT_TRUE(bytes->starts_with("E27:node:1,,"));
  auto back = decode_fanout(*bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->origin, "node:1,");
  EXPECT_EQ(back->message.kind, Kind::ephemeral);
  EXPECT_EQ(back->message.event.ts_ms, 1700000000000);
  EXPECT_EQ(back->message.event.event, "typing");
  EXPECT_EQ(back->message.event.data, R"({"a":"1,2:3"})");
  EXPECT_EQ(back->message.event.from_client, "c-1");
  EXPECT_EQ(back->message.event.from_user, "bob");
  EXPECT_EQ(back->message.event.from_info, "{}");

  RemoteMessage r;
  r.kind = Kind::reset;
  r.reason = "expired";
  EXPECT_EQ(encode_fanout("n", r), "R21:n,7:expired,");
  auto rb = decode_fanout("R21:n,7:expired,");
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->message.kind, Kind::reset);
  EXPECT_EQ(rb->message.reason, "expired");

  RemoteMessage stored;
  EXPECT_FALSE(encode_fanout("n", stored));  // events go through publish.lua only
}

TEST(RedisPayloadTest, JoinAndLeaveRoundTrip) {
  RemoteMessage j;
  j.kind = Kind::join;
  j.member = PresenceMember{"c,1:", "alice", R"({"name":"A, B"})"};
  j.user_edge = true;
  auto bytes = encode_fanout("n1", j);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, R"(J22:n1,4:c,1:,5:alice,15:{"name":"A, B"},1:1,)");
  auto back = decode_fanout(*bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->origin, "n1");
  EXPECT_EQ(back->message.kind, Kind::join);
  EXPECT_EQ(back->message.member.client, "c,1:");
  EXPECT_EQ(back->message.member.user, "alice");
  EXPECT_EQ(back->message.member.info, R"({"name":"A, B"})");
  EXPECT_TRUE(back->message.user_edge);

  RemoteMessage l;
  l.kind = Kind::leave;
  l.member = PresenceMember{"c2", "", ""};
  EXPECT_EQ(encode_fanout("n", l), "L21:n,2:c2,0:,0:,1:0,");
  auto lb = decode_fanout("L21:n,2:c2,0:,0:,1:0,");
  ASSERT_TRUE(lb);
  EXPECT_EQ(lb->message.kind, Kind::leave);
  EXPECT_EQ(lb->message.member.client, "c2");
  EXPECT_EQ(lb->message.member.user, "");
  EXPECT_FALSE(lb->message.user_edge);
}

TEST(RedisPayloadTest, RejectsMalformedJoinAndLeave) {
  for (const char* bad :
       {"J21:n,2:c2,0:,0:,1:2,", "J21:n,0:,0:,0:,1:1,", "L21:n,2:c2,0:,0:,",
        "L21:n,2:c2,0:,0:,1:0,x", "J21:n,2:c2,0:,0:,0:,", "J31:n,2:c2,0:,0:,1:1,"}) {
    EXPECT_FALSE(decode_fanout(bad)) << bad;
  }
}

TEST(RedisPayloadTest, DecodesWhatPublishLuaSends) {
  // The bytes publish.lua builds (LAYOUT.md's example, with an origin).
  auto m = decode_fanout(
      "H22:n1,1:7,13:1700000000000,8:k3v9x0aa,12:chat.message,13:{\"text\":\"hi\"},3:c-1,5:alice,"
      "0:,");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->origin, "n1");
  EXPECT_EQ(m->message.kind, Kind::event);
  EXPECT_EQ(m->message.event.offset, 7u);
  EXPECT_EQ(m->message.event.ts_ms, 1700000000000);
  EXPECT_EQ(m->message.epoch, "k3v9x0aa");
  EXPECT_EQ(m->message.event.event, "chat.message");
  EXPECT_EQ(m->message.event.data, "{\"text\":\"hi\"}");
  EXPECT_EQ(m->message.event.from_client, "c-1");
  EXPECT_EQ(m->message.event.from_user, "alice");
  EXPECT_EQ(m->message.event.from_info, "");
}

TEST(RedisPayloadTest, RejectsMalformed) {
  for (const char* bad :
       {"", "R", "R21:n,7:expired", "R21:n,7:expired,x", "R201:n,7:expired,", "R2-1:n,7:expired,",
        "R21:n;7:expired,", "R21:n,8:expired,", "X21:n,7:expired,",
        "H11:7,13:1,1:e,1:e,0:,0:,0:,0:,", "H21:n,1:x,1:1,1:e,1:e,0:,0:,0:,0:,",
        "H21:n,1:0,1:1,1:e,1:e,0:,0:,0:,0:,", "E21:n,2:1a,1:e,0:,0:,0:,0:,", "R299999999999:n,"}) {
    EXPECT_FALSE(decode_fanout(bad)) << bad;
  }
}

}  // namespace
}  // namespace herald::engine::redis
