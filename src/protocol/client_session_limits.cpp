// ClientSession, abuse limits: the per-connection token buckets (commands,
// publishes, a namespace's publishes), the per-user publish bucket, the
// per-IP connection limits at admission, and rate_limited replies that end
// in close 4029 when ignored. The shared limiters are auth::AbuseLimits.
#include <boost/asio/ip/address_v6.hpp>

#include "protocol/client_session.hpp"
#include "protocol/messages.hpp"
#include "ws/frame_codec.hpp"

namespace herald::protocol {

std::string ClientSession::peer_string() const {
  const auto v6 = boost::asio::ip::address_v6(peer_);
  if (v6.is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  return v6.to_string();
}

void ClientSession::admit_from(const std::array<unsigned char, 16>& peer) {
  peer_ = peer;
  auto* abuse = ctx_.abuse;
  if (!abuse) return;
  const auto& c = abuse->config;
  if (!c.new_connections_per_ip_per_second && !c.connections_per_ip) return;
  const std::string ip = peer_string();
  if (const uint64_t wait = abuse->new_connections_per_ip.take(ip, ws::Clock::now())) {
    reply_rate_limited("too many new connections from " + ip, wait, {}, true);
    return;
  }
  if (c.connections_per_ip) {
    if (!abuse->connections_per_ip.acquire(ip)) {
      reply_rate_limited("too many connections from " + ip + " (rate_limits.connections_per_ip)",
                         1000, {}, true);
      return;
    }
    counted_ip_ = true;
  }
}

void ClientSession::reply_rate_limited(std::string_view message, uint64_t retry_after_ms,
                                       std::string_view id, bool close_now) {
  std::string out;
  append_error(out, ErrorCode::rate_limited, message, id, {}, retry_after_ms);
  send_text(out);
  ++violations_;
  const size_t limit = ctx_.abuse ? ctx_.abuse->config.violations_before_close : 0;
  if (close_now || (limit && violations_ >= limit))
    close(ws::close_code::rate_limited, "rate limited");
}

bool ClientSession::within_command_rate(const Command& cmd) {
  const auto& c = ctx_.abuse->config;
  auto* buckets = rare_ ? rare_->buckets.get() : nullptr;
  if (!c.commands_per_second && !c.publishes_per_second && !buckets) return true;
  if (!buckets)
    buckets =
        (rare().buckets = std::make_unique<Buckets>(Buckets{
             auth::TokenBucket(static_cast<double>(c.commands_per_second),
                               auth::burst_or_rate(c.commands_burst, c.commands_per_second)),
             auth::TokenBucket(static_cast<double>(c.publishes_per_second),
                               auth::burst_or_rate(c.publishes_burst, c.publishes_per_second)),
             {}}))
            .get();
  if (const uint64_t wait = buckets->commands.take(ws::Clock::now())) {
    reply_rate_limited("too many commands (rate_limits.commands_per_second)", wait, cmd.id);
    return false;
  }
  return true;
}

bool ClientSession::within_publish_rate(const Command& cmd) {
  const auto now = ws::Clock::now();
  auto* buckets = rare_ ? rare_->buckets.get() : nullptr;
  if (buckets) {
    if (const uint64_t wait = buckets->publishes.take(now)) {
      reply_rate_limited("too many publishes (rate_limits.publishes_per_second)", wait, cmd.id);
      return false;
    }
  }
  const core::Namespace* ns = ctx_.node.namespace_of(ctx_.worker, cmd.channel);
  if (ns && ns->options.publishes_per_second) {
    if (!buckets)
      buckets = (rare().buckets = std::make_unique<Buckets>(
                     Buckets{auth::TokenBucket(0, 0), auth::TokenBucket(0, 0), {}}))
                    .get();
    auto& list = buckets->namespaces;
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const auto& entry) { return entry.first == ns->name; });
    if (it == list.end()) {
      const auto& o = ns->options;
      list.emplace_back(ns->name, auth::TokenBucket(static_cast<double>(o.publishes_per_second),
                                                    auth::burst_or_rate(o.publishes_burst,
                                                                        o.publishes_per_second)));
      it = std::prev(list.end());
    }
    if (const uint64_t wait = it->second.take(now)) {
      reply_rate_limited(
          "too many publishes on namespace '" + ns->name + "' (publishes_per_second)", wait,
          cmd.id);
      return false;
    }
  }
  if (identity_ && ctx_.abuse->config.user_publishes_per_second) {
    if (const uint64_t wait = ctx_.abuse->user_publishes.take(identity_->user, now)) {
      reply_rate_limited("too many publishes by user " + identity_->user +
                             " (rate_limits.user_publishes_per_second)",
                         wait, cmd.id);
      return false;
    }
  }
  return true;
}

}  // namespace herald::protocol
