// presence::ChannelPresence: members, users, limits, and the pending-subscribe
// bookkeeping that keeps presence exact when an unsubscribe overtakes its
// subscribe's read.
#include "presence/channel_presence.hpp"

#include <gtest/gtest.h>

namespace herald::presence {
namespace {

Member m(std::string client, std::string user = {}, std::string info = {}) {
  return Member{std::move(client), std::move(user), std::move(info)};
}

Admission join(ChannelPresence& p, Member member, Limits limits = {}) {
  p.begin(member.client);
  return p.admit(std::move(member), limits, true, true);
}

TEST(ChannelPresence, SecondTabOfAUserIsOneUserAndFlagsEdgesOnce) {
  ChannelPresence p;
  ASSERT_EQ(join(p, m("c1", "ana", R"({"n":1})")), Admission::admitted);
  ASSERT_EQ(join(p, m("c2", "ana")), Admission::admitted);
  ASSERT_EQ(join(p, m("c3", "bob")), Admission::admitted);
  EXPECT_EQ(p.clients(), 3u);
  EXPECT_EQ(p.users(), 2u);
  p.remove("c1", true);
  p.remove("c2", true);
  const auto a = p.take_announcements();
  ASSERT_EQ(a.size(), 5u);
  EXPECT_TRUE(a[0].join && a[0].user_edge);   // ana's first tab
  EXPECT_TRUE(a[1].join && !a[1].user_edge);  // ana's second tab
  EXPECT_TRUE(a[2].join && a[2].user_edge);   // bob
  EXPECT_TRUE(!a[3].join && !a[3].user_edge);
  EXPECT_EQ(a[3].member.info, R"({"n":1})");  // a leave carries the member's info
  EXPECT_TRUE(!a[4].join && a[4].user_edge);  // ana's last tab
  EXPECT_EQ(p.users(), 1u);
  EXPECT_TRUE(p.take_announcements().empty());
}

TEST(ChannelPresence, UnsubscribeBeforeTheReadCompletesLeavesNoMember) {
  ChannelPresence p;
  p.begin("c1");
  p.remove("c1", true);  // the connection closed while its read was in flight
  EXPECT_FALSE(p.idle());
  EXPECT_EQ(p.admit(m("c1", "ana"), {}, true, true), Admission::cancelled);
  EXPECT_TRUE(p.idle());
  EXPECT_EQ(p.clients(), 0u);
  EXPECT_FALSE(p.has_announcements());
}

TEST(ChannelPresence, FailedReadWaitsForItsUnsubscribe) {
  ChannelPresence p;
  p.begin("c1");
  EXPECT_EQ(p.admit(m("c1"), {}, false, true), Admission::failed);
  EXPECT_FALSE(p.idle());
  p.remove("c1", true);
  EXPECT_TRUE(p.idle());
  EXPECT_FALSE(p.has_announcements());
}

TEST(ChannelPresence, MaxUsersCountsDistinctUsersAndAnonymousEach) {
  ChannelPresence p;
  const Limits two{1000, 2};
  EXPECT_EQ(join(p, m("c1", "ana"), two), Admission::admitted);
  EXPECT_EQ(join(p, m("c2", "ana"), two), Admission::admitted);  // second tab
  EXPECT_EQ(join(p, m("c3"), two), Admission::admitted);         // anonymous: a person
  EXPECT_EQ(join(p, m("c4", "bob"), two), Admission::full);
  EXPECT_EQ(join(p, m("c5"), two), Admission::full);
  EXPECT_EQ(join(p, m("c6", "ana"), two), Admission::admitted);  // ana is already in
  p.remove("c4", true);                                          // the refused one's match
  p.remove("c3", true);
  EXPECT_EQ(join(p, m("c7", "bob"), two), Admission::admitted);
  EXPECT_EQ(p.clients(), 4u);
  EXPECT_EQ(p.users(), 2u);
}

TEST(ChannelPresence, OverTheMemberLimitKeepsCountsOnlyUntilEmpty) {
  ChannelPresence p;
  const Limits three{3, 0};
  for (const char* c : {"c1", "c2", "c3"}) ASSERT_EQ(join(p, m(c, c), three), Admission::admitted);
  EXPECT_TRUE(p.complete());
  ASSERT_EQ(join(p, m("c4", "u4"), three), Admission::admitted);
  EXPECT_FALSE(p.complete());
  EXPECT_EQ(p.clients(), 4u);
  EXPECT_EQ(p.users(), std::nullopt);
  EXPECT_EQ(p.members_json(), "[]");
  // The joins from before the switch still go out; c4's does not.
  EXPECT_EQ(p.take_announcements().size(), 3u);
  EXPECT_FALSE(p.has_announcements());
  for (const char* c : {"c1", "c2", "c3", "c4"}) p.remove(c, true);
  EXPECT_FALSE(p.has_announcements());
  EXPECT_TRUE(p.idle());
  ASSERT_EQ(join(p, m("c5", "u5"), three), Admission::admitted);
  EXPECT_TRUE(p.complete());
  EXPECT_EQ(p.members_json(), R"([{"client":"c5","user":"u5"}])");
}

TEST(ChannelPresence, ClearMembersKeepsPendingSubscribesOfTheNextLife) {
  ChannelPresence p;
  ASSERT_EQ(join(p, m("c1", "ana")), Admission::admitted);
  p.begin("c2");  // its read is queued after the removal
  p.clear_members();
  EXPECT_EQ(p.clients(), 0u);
  p.remove("c1", true);  // the destroyed member's unsubscribe: no leave
  EXPECT_FALSE(p.has_announcements());
  EXPECT_EQ(p.admit(m("c2", "bob"), {}, true, true), Admission::admitted);
  EXPECT_EQ(p.clients(), 1u);
  EXPECT_EQ(p.members_json(), R"([{"client":"c2","user":"bob"}])");
}

TEST(ChannelPresence, RemoteAnnouncementsQueueInOrderAndChangeNoMember) {
  ChannelPresence p;
  ASSERT_EQ(join(p, m("c1", "ana")), Admission::admitted);
  p.announce_remote(Announcement{true, m("r1", "bob"), true});
  p.remove("c1", true);
  EXPECT_EQ(p.clients(), 0u);  // r1 is another node's: not a member here
  const auto a = p.take_announcements();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_TRUE(a[0].join && !a[0].remote);
  EXPECT_TRUE(a[1].join && a[1].remote && a[1].user_edge);
  EXPECT_EQ(a[1].member.client, "r1");
  EXPECT_TRUE(!a[2].join && !a[2].remote);
}

TEST(ChannelPresence, RemoteAnnouncementsAreDroppedWhileCountsOnly) {
  ChannelPresence p;
  const Limits one{1, 0};
  ASSERT_EQ(join(p, m("c1", "ana"), one), Admission::admitted);
  ASSERT_EQ(join(p, m("c2", "bob"), one), Admission::admitted);
  ASSERT_FALSE(p.complete());
  p.take_announcements();
  p.announce_remote(Announcement{true, m("r1", "cy"), true});
  EXPECT_FALSE(p.has_announcements());
}

}  // namespace
}  // namespace herald::presence
