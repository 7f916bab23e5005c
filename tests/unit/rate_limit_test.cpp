// Unit tests for src/auth/rate_limit.*: TokenBucket's burst, refill and
// exact retry times under injected time, rate 0 (unlimited) and bad
// arguments; KeyedLimiter's per-key buckets, its bound on keys and which
// keys it evicts; ConcurrencyLimiter's counts, maximum and forgetting of
// released keys; and both shared limiters hammered from several threads,
// where the totals must come out exact.
#include "auth/rate_limit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace herald::auth {
namespace {

using Clock = TokenBucket::Clock;
using std::chrono::milliseconds;

// An arbitrary origin: the limiters only ever look at differences.
const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1000);
Clock::time_point at(int64_t ms) {
  return t0 + milliseconds(ms);
}

TEST(TokenBucket, StartsFullAndRefusesPastTheBurst) {
  TokenBucket b(10, 3);  // 10/s: a token every 100 ms
  EXPECT_TRUE(b.full(at(0)));
  EXPECT_EQ(b.take(at(0)), 0u);
  EXPECT_EQ(b.take(at(0)), 0u);
  EXPECT_EQ(b.take(at(0)), 0u);
  EXPECT_FALSE(b.full(at(0)));
  EXPECT_EQ(b.take(at(0)), 100u);  // the next token is 100 ms away
  EXPECT_EQ(b.take(at(40)), 60u);
  EXPECT_EQ(b.take(at(99)), 1u);
  EXPECT_EQ(b.take(at(100)), 0u);
  EXPECT_EQ(b.take(at(100)), 100u);
}

TEST(TokenBucket, RetryAfterIsExact) {
  // 3/s: a token every 333.33 ms, which no millisecond count hits exactly.
  TokenBucket b(3, 1);
  ASSERT_EQ(b.take(at(0)), 0u);
  const uint64_t retry = b.take(at(0));
  EXPECT_EQ(retry, 334u);
  EXPECT_EQ(b.peek(at(retry - 1)), 1u);
  EXPECT_EQ(b.take(at(retry - 1)), 1u);
  EXPECT_EQ(b.take(at(retry)), 0u);

  // Minute-scale rates (failed logins: 5 per minute).
  TokenBucket slow(5.0 / 60, 5);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(slow.take(at(0)), 0u);
  EXPECT_EQ(slow.take(at(0)), 12000u);
  EXPECT_EQ(slow.take(at(11999)), 1u);
  EXPECT_EQ(slow.take(at(12000)), 0u);
  EXPECT_EQ(slow.take(at(12000)), 12000u);
}

TEST(TokenBucket, RetryTimesHoldForManyRates) {
  // For each rate: drain, then follow every returned retry time exactly; each
  // must lead to a successful take, and one millisecond less must not.
  for (double rate : {0.5, 1.0, 3.0, 7.0, 13.0, 100.0, 333.0, 999.0}) {
    TokenBucket b(rate, 2);
    int64_t now = 5;
    ASSERT_EQ(b.take(at(now)), 0u);
    ASSERT_EQ(b.take(at(now)), 0u);
    for (int i = 0; i < 50; ++i) {
      const uint64_t retry = b.peek(at(now));
      ASSERT_GE(retry, 1u) << "rate " << rate;
      if (retry > 1) {
        ASSERT_NE(b.take(at(now + static_cast<int64_t>(retry) - 1)), 0u) << "rate " << rate;
      }
      now += static_cast<int64_t>(retry);
      ASSERT_EQ(b.take(at(now)), 0u) << "rate " << rate << " step " << i;
    }
  }
}

TEST(TokenBucket, RefillsUpToTheBurstOnly) {
  TokenBucket b(10, 2);
  ASSERT_EQ(b.take(at(0)), 0u);
  ASSERT_EQ(b.take(at(0)), 0u);
  // An hour idle refills two tokens, not 36,000.
  EXPECT_TRUE(b.full(at(3600 * 1000)));
  EXPECT_EQ(b.take(at(3600 * 1000)), 0u);
  EXPECT_EQ(b.take(at(3600 * 1000)), 0u);
  EXPECT_EQ(b.take(at(3600 * 1000)), 100u);
  // Partial refill: 150 ms gives 1.5 tokens.
  TokenBucket c(10, 5);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.take(at(0)), 0u);
  EXPECT_EQ(c.take(at(150)), 0u);
  EXPECT_EQ(c.take(at(150)), 50u);
  // 0.5 tokens left at 150 ms: 4.5 more take 450 ms.
  EXPECT_FALSE(c.full(at(599)));
  EXPECT_TRUE(c.full(at(600)));
}

TEST(TokenBucket, TakesSeveralOrFractionalTokens) {
  TokenBucket b(4, 10);  // a token every 250 ms
  EXPECT_EQ(b.take(at(0), 7), 0u);
  EXPECT_EQ(b.take(at(0), 4), 250u);  // 3 left, 1 missing
  EXPECT_EQ(b.take(at(0), 3), 0u);
  EXPECT_EQ(b.take(at(0), 0.5), 125u);
  EXPECT_EQ(b.take(at(125), 0.5), 0u);
  // More than the burst can never be taken.
  EXPECT_EQ(b.take(at(1000000), 11), TokenBucket::kNever);
  EXPECT_EQ(b.take(at(1000000), 10), 0u);
  // Taking nothing always works and changes nothing.
  EXPECT_EQ(b.take(at(1000000), 0), 0u);
  EXPECT_EQ(b.take(at(1000000), 1), 250u);
}

TEST(TokenBucket, RateZeroIsUnlimited) {
  TokenBucket b(0, 0);
  EXPECT_TRUE(b.unlimited());
  for (int i = 0; i < 100000; ++i) ASSERT_EQ(b.take(at(0)), 0u);
  EXPECT_EQ(b.take(at(0), 1e12), 0u);
  EXPECT_TRUE(b.full(at(0)));
}

TEST(TokenBucket, TimeGoingBackwardsGivesNothingAway) {
  // Threads may pass times a little out of order to a shared bucket.
  TokenBucket b(10, 1);
  ASSERT_EQ(b.take(at(1000)), 0u);
  EXPECT_EQ(b.take(at(990)), 110u);
  EXPECT_EQ(b.take(at(1100)), 0u);
}

TEST(TokenBucket, PeekTakesNothing) {
  TokenBucket b(10, 1);
  EXPECT_EQ(b.peek(at(0)), 0u);
  EXPECT_EQ(b.peek(at(0)), 0u);
  EXPECT_EQ(b.take(at(0)), 0u);
  EXPECT_EQ(b.peek(at(0)), 100u);
  EXPECT_EQ(b.peek(at(30)), 70u);
}

TEST(TokenBucket, RefusesBadArguments) {
  EXPECT_THROW(TokenBucket(-1, 1), std::invalid_argument);
  EXPECT_THROW(TokenBucket(std::numeric_limits<double>::infinity(), 1), std::invalid_argument);
  EXPECT_THROW(TokenBucket(std::numeric_limits<double>::quiet_NaN(), 1), std::invalid_argument);
  EXPECT_THROW(TokenBucket(1, 0), std::invalid_argument);
  EXPECT_THROW(TokenBucket(1, -2), std::invalid_argument);
  EXPECT_THROW(TokenBucket(1, std::numeric_limits<double>::infinity()), std::invalid_argument);
  EXPECT_NO_THROW(TokenBucket(0, -5));  // unlimited: the burst does not matter
}

TEST(KeyedLimiter, KeysHaveTheirOwnBuckets) {
  KeyedLimiter l(1, 2, 100);
  EXPECT_EQ(l.take("10.0.0.1", at(0)), 0u);
  EXPECT_EQ(l.take("10.0.0.1", at(0)), 0u);
  EXPECT_EQ(l.take("10.0.0.1", at(0)), 1000u);
  EXPECT_EQ(l.take("10.0.0.2", at(0)), 0u);
  EXPECT_EQ(l.peek("10.0.0.1", at(500)), 500u);
  EXPECT_EQ(l.peek("never-seen", at(500)), 0u);
  EXPECT_EQ(l.take("10.0.0.1", at(1000)), 0u);
  EXPECT_EQ(l.size(), 2u);
}

TEST(KeyedLimiter, PeekCreatesNothing) {
  KeyedLimiter l(1, 2, 100);
  EXPECT_EQ(l.peek("a", at(0)), 0u);
  EXPECT_EQ(l.size(), 0u);
}

TEST(KeyedLimiter, RateZeroStoresNothing) {
  KeyedLimiter l(0, 0, 10);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(l.take("k" + std::to_string(i), at(0)), 0u);
  EXPECT_EQ(l.size(), 0u);
}

TEST(KeyedLimiter, StaysWithinMaxKeys) {
  for (size_t shards : {1u, 4u, 16u, 64u}) {
    KeyedLimiter l(1, 5, 50, shards);
    for (int i = 0; i < 5000; ++i) {
      l.take("192.0.2." + std::to_string(i), at(i));
      ASSERT_LE(l.size(), 50u) << shards << " shards, after key " << i;
    }
    EXPECT_GT(l.size(), 0u);
  }
}

TEST(KeyedLimiter, EvictsRefilledBucketsBeforeBusyOnes) {
  // One shard of three keys, so the order is observable.
  KeyedLimiter l(1, 1, 3, 1);
  ASSERT_EQ(l.take("oldest", at(0)), 0u);       // empty; full again at 1000
  ASSERT_EQ(l.take("light", at(10), 0.1), 0u);  // full again at 110
  ASSERT_EQ(l.take("recent", at(20)), 0u);      // full again at 1020
  // A fourth key at 500: "light" has refilled and goes, although "oldest"
  // was used less recently.
  ASSERT_EQ(l.take("new", at(500)), 0u);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.take("oldest", at(500)), 500u);  // still remembered as empty
  EXPECT_EQ(l.take("recent", at(500)), 520u);
  EXPECT_EQ(l.take("new", at(500)), 1000u);
}

TEST(KeyedLimiter, EvictsTheLeastRecentlyUsedWhenNoneHasRefilled) {
  KeyedLimiter l(1, 1, 3, 1);
  ASSERT_EQ(l.take("a", at(0)), 0u);
  ASSERT_EQ(l.take("b", at(10)), 0u);
  ASSERT_EQ(l.take("c", at(20)), 0u);
  // Using "a" (refused, but used) makes "b" the least recently used.
  ASSERT_EQ(l.take("a", at(30)), 970u);
  ASSERT_EQ(l.take("d", at(40)), 0u);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.take("a", at(40)), 960u);  // kept
  EXPECT_EQ(l.take("c", at(40)), 980u);  // kept
  EXPECT_EQ(l.take("b", at(40)), 0u);    // forgotten: a fresh, full bucket
}

TEST(KeyedLimiter, RefusesBadArguments) {
  EXPECT_THROW(KeyedLimiter(1, 1, 0), std::invalid_argument);
  EXPECT_THROW(KeyedLimiter(1, 1, 10, 0), std::invalid_argument);
  EXPECT_THROW(KeyedLimiter(-1, 1, 10), std::invalid_argument);
  EXPECT_THROW(KeyedLimiter(1, 0, 10), std::invalid_argument);
  EXPECT_NO_THROW(KeyedLimiter(1, 1, 3, 16));  // fewer keys than shards
}

TEST(KeyedLimiter, ThreadsGetExactlyTheBurst) {
  // Eight threads take from 16 shared keys at one instant: exactly `burst`
  // takes per key may succeed, whatever the interleaving.
  constexpr int kThreads = 8, kKeys = 16, kBurst = 100, kTriesPerKey = 60;
  KeyedLimiter l(1, kBurst, 1000, 4);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      int mine = 0;
      for (int i = 0; i < kTriesPerKey; ++i)
        for (int k = 0; k < kKeys; ++k)
          if (l.take("user-" + std::to_string(k), at(0)) == 0) ++mine;
      granted += mine;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), kKeys * kBurst);
  EXPECT_EQ(l.size(), static_cast<size_t>(kKeys));
}

TEST(ConcurrencyLimiter, CountsUpToTheMaximum) {
  ConcurrencyLimiter c(2);
  EXPECT_TRUE(c.acquire("10.0.0.1"));
  EXPECT_TRUE(c.acquire("10.0.0.1"));
  EXPECT_FALSE(c.acquire("10.0.0.1"));
  EXPECT_EQ(c.count("10.0.0.1"), 2u);
  EXPECT_TRUE(c.acquire("10.0.0.2"));
  c.release("10.0.0.1");
  EXPECT_EQ(c.count("10.0.0.1"), 1u);
  EXPECT_TRUE(c.acquire("10.0.0.1"));
  EXPECT_FALSE(c.acquire("10.0.0.1"));
}

TEST(ConcurrencyLimiter, ForgetsKeysWithNoHolders) {
  ConcurrencyLimiter c(3);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(c.acquire("k" + std::to_string(i)));
  EXPECT_EQ(c.size(), 100u);
  for (int i = 0; i < 100; ++i) c.release("k" + std::to_string(i));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.count("k1"), 0u);
}

TEST(ConcurrencyLimiter, ReleaseWithoutAcquireIsIgnored) {
  ConcurrencyLimiter c(1);
  c.release("ghost");
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(c.acquire("ghost"));
  c.release("ghost");
  c.release("ghost");  // one too many: must not go below zero
  EXPECT_TRUE(c.acquire("ghost"));
  EXPECT_FALSE(c.acquire("ghost"));
}

TEST(ConcurrencyLimiter, MaxZeroIsUnlimited) {
  ConcurrencyLimiter c(0);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(c.acquire("same"));
  EXPECT_EQ(c.size(), 0u);
  c.release("same");
}

TEST(ConcurrencyLimiter, ThreadsCountExactly) {
  // Threads acquire a few keys as far as the maximum lets them, then release
  // what they got: the grants per key never exceed the maximum at once, add
  // up to exactly the maximum while everything is held, and all entries are
  // gone at the end.
  constexpr int kThreads = 8, kKeys = 5, kMax = 37;
  ConcurrencyLimiter c(kMax, 4);
  std::atomic<int> granted{0};
  std::vector<std::vector<int>> got(kThreads, std::vector<int>(kKeys));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round)
        for (int k = 0; k < kKeys; ++k) {
          const std::string key = "ip-" + std::to_string(k);
          if (c.acquire(key)) {
            ++got[t][k];
            ++granted;
          }
        }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), kKeys * kMax);
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(c.count("ip-" + std::to_string(k)), uint32_t{kMax});

  // Release concurrently, interleaved with churn on other keys.
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k)
        for (int i = 0; i < got[t][k]; ++i) {
          c.release("ip-" + std::to_string(k));
          const std::string churn = "churn-" + std::to_string(t);
          ASSERT_TRUE(c.acquire(churn));
          c.release(churn);
        }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.size(), 0u);
}

}  // namespace
}  // namespace herald::auth
