// The abuse limits of [rate_limits] that span connections and workers:
// connections per IP and per user, new connections per IP, refused tokens
// per IP and publishes per user. One object per process, shared by every
// worker (its limiters are thread-safe and bounded by
// rate_limits.max_tracked_keys). The per-connection buckets (commands,
// publishes) live in each session (protocol::ClientSession) instead.
#pragma once

#include "auth/rate_limit.hpp"
#include "config/config.hpp"

namespace herald::auth {

struct AbuseLimits {
  explicit AbuseLimits(const config::RateLimitsConfig& config);

  const config::RateLimitsConfig config;
  KeyedLimiter new_connections_per_ip;
  KeyedLimiter auth_failures_per_ip;
  KeyedLimiter user_publishes;
  ConcurrencyLimiter connections_per_ip;
  ConcurrencyLimiter connections_per_user;
};

// A token bucket's burst from config: `burst`, or the rate when 0.
inline double burst_or_rate(size_t burst, size_t rate) {
  return static_cast<double>(burst ? burst : rate);
}

}  // namespace herald::auth
