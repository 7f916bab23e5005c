// presence::merge_presence: every node's members (as the redis engine reads
// them) as one presence answer, with one node's limit semantics.
#include "presence/merged_presence.hpp"

#include <gtest/gtest.h>

namespace herald::presence {
namespace {

using engine::PresenceMember;

TEST(MergedPresence, ListsEveryMemberAndCountsDistinctVerifiedUsers) {
  const std::vector<PresenceMember> all{
      {"c1", "ana", R"({"n":1})"}, {"c2", "ana", ""}, {"c3", "", ""}, {"c4", "bob", ""}};
  const auto r = merge_presence(all, 1000, true);
  EXPECT_EQ(r.clients, 4u);
  EXPECT_EQ(r.users, 2u);  // ana's two tabs once, the anonymous one not at all
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.members_json,
            R"([{"client":"c1","user":"ana","info":{"n":1}},{"client":"c2","user":"ana"},)"
            R"({"client":"c3"},{"client":"c4","user":"bob"}])");
  EXPECT_EQ(merge_presence(all, 1000, false).members_json, "[]");  // stats: no list built
}

TEST(MergedPresence, OverTheMemberLimitAnswersCountsOnly) {
  const std::vector<PresenceMember> all{{"c1", "a", ""}, {"c2", "b", ""}, {"c3", "c", ""}};
  const auto at = merge_presence(all, 3, true);
  EXPECT_TRUE(at.complete);
  EXPECT_EQ(at.users, 3u);
  const auto over = merge_presence(all, 2, true);
  EXPECT_FALSE(over.complete);
  EXPECT_EQ(over.clients, 3u);
  EXPECT_EQ(over.users, std::nullopt);
  EXPECT_EQ(over.members_json, "[]");
}

TEST(MergedPresence, NoMembersIsAnEmptyCompleteList) {
  const auto r = merge_presence({}, 1000, true);
  EXPECT_EQ(r.clients, 0u);
  EXPECT_EQ(r.users, 0u);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.members_json, "[]");
}

}  // namespace
}  // namespace herald::presence
