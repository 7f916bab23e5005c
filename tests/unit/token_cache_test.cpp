// Unit tests for auth::TokenCache, the per-worker cache of verified tokens:
// a hit returns the claims verified before, never past their exp; a
// connection token never answers for a subscription token; the cache stays
// within its capacity.
#include <gtest/gtest.h>

#include "auth/authenticator.hpp"

namespace herald::auth {
namespace {

Claims claims_until(int64_t exp, std::string sub = "ana") {
  Claims c;
  c.sub = std::move(sub);
  c.exp = exp;
  return c;
}

TEST(TokenCache, HitUntilExpiryOnly) {
  TokenCache cache(10);
  const auto key = TokenCache::key_of(TokenKind::connection, "tok-1");
  EXPECT_EQ(cache.find(key, 100), nullptr);
  cache.put(key, claims_until(200), 100);
  auto hit = cache.find(key, 199);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->sub, "ana");
  EXPECT_EQ(cache.find(key, 200), nullptr);  // expired: verify again (and refuse)
}

TEST(TokenCache, KindAndBytesMakeTheKey) {
  TokenCache cache(10);
  cache.put(TokenCache::key_of(TokenKind::connection, "tok"), claims_until(200), 100);
  EXPECT_EQ(cache.find(TokenCache::key_of(TokenKind::subscription, "tok"), 100), nullptr);
  EXPECT_EQ(cache.find(TokenCache::key_of(TokenKind::connection, "tok "), 100), nullptr);
  EXPECT_NE(cache.find(TokenCache::key_of(TokenKind::connection, "tok"), 100), nullptr);
}

TEST(TokenCache, StaysWithinCapacity) {
  TokenCache cache(3);
  for (int i = 0; i < 3; ++i)
    cache.put(TokenCache::key_of(TokenKind::connection, std::to_string(i)), claims_until(200), 100);
  // Full: expired entries go first (none here), then everything, then the new one.
  cache.put(TokenCache::key_of(TokenKind::connection, "new"), claims_until(200), 100);
  int held = 0;
  for (const char* t : {"0", "1", "2", "new"})
    held += cache.find(TokenCache::key_of(TokenKind::connection, t), 100) != nullptr;
  EXPECT_LE(held, 3);
  EXPECT_NE(cache.find(TokenCache::key_of(TokenKind::connection, "new"), 100), nullptr);
}

TEST(TokenCache, CapacityZeroCachesNothing) {
  TokenCache cache(0);
  EXPECT_FALSE(cache.enabled());
  const auto key = TokenCache::key_of(TokenKind::connection, "t");
  cache.put(key, claims_until(200), 100);
  EXPECT_EQ(cache.find(key, 100), nullptr);
}

}  // namespace
}  // namespace herald::auth
