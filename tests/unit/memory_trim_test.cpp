// When the server returns freed memory to the OS (server/memory_trim.hpp):
// the trigger's rule, tick by tick.
#include "server/memory_trim.hpp"

#include <gtest/gtest.h>

namespace herald::server {
namespace {

TEST(TrimTrigger, TrimsOnceTheCountHalvesByAtLeastTheMinimum) {
  TrimTrigger t;
  EXPECT_FALSE(t.update(0));
  EXPECT_FALSE(t.update(5000));
  EXPECT_FALSE(t.update(20000));  // the peak
  EXPECT_FALSE(t.update(12000));  // down, not yet by half
  EXPECT_TRUE(t.update(9000));    // half or less: trim, and the peak restarts at 9000
  EXPECT_EQ(t.peak, 9000u);
  EXPECT_FALSE(t.update(8000));
  EXPECT_TRUE(t.update(4000));
  EXPECT_FALSE(t.update(4000));  // nothing more closed: no second trim
  EXPECT_TRUE(t.update(0));
  EXPECT_FALSE(t.update(0));
}

TEST(TrimTrigger, SmallDropsNeverTrim) {
  TrimTrigger t;
  EXPECT_FALSE(t.update(TrimTrigger::kMinDrop - 1));
  EXPECT_FALSE(t.update(0));  // all closed, but fewer than kMinDrop
  EXPECT_FALSE(t.update(TrimTrigger::kMinDrop));
  EXPECT_TRUE(t.update(0));  // exactly kMinDrop closed
}

TEST(TrimTrigger, SteadyChurnNeverTrims) {
  // Connections replaced as fast as they drop (bench soak): the count wobbles
  // around its level and never halves.
  TrimTrigger t;
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(t.update(2000 - static_cast<size_t>(i % 7)));
}

TEST(TrimTrigger, ANewWaveRaisesThePeakAgain) {
  TrimTrigger t;
  t.update(10000);
  EXPECT_TRUE(t.update(100));
  t.update(30000);
  EXPECT_FALSE(t.update(20000));
  EXPECT_TRUE(t.update(10000));
}

}  // namespace
}  // namespace herald::server
