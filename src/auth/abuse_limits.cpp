// AbuseLimits: the process-wide limiters of [rate_limits]; see abuse_limits.hpp.
#include "auth/abuse_limits.hpp"

namespace herald::auth {

namespace {

uint32_t to_u32(size_t n) {
  return static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX));
}

}  // namespace

AbuseLimits::AbuseLimits(const config::RateLimitsConfig& c)
    : config(c),
      new_connections_per_ip(static_cast<double>(c.new_connections_per_ip_per_second),
                             burst_or_rate(0, c.new_connections_per_ip_per_second),
                             c.max_tracked_keys),
      // N per minute, all of them usable at once.
      auth_failures_per_ip(static_cast<double>(c.auth_failures_per_ip_per_minute) / 60.0,
                           static_cast<double>(c.auth_failures_per_ip_per_minute),
                           c.max_tracked_keys),
      user_publishes(static_cast<double>(c.user_publishes_per_second),
                     burst_or_rate(c.user_publishes_burst, c.user_publishes_per_second),
                     c.max_tracked_keys),
      connections_per_ip(to_u32(c.connections_per_ip)),
      connections_per_user(to_u32(c.connections_per_user)) {}

}  // namespace herald::auth
