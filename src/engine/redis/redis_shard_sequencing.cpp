// RedisShardStore's side for several nodes (redis_shard_store.hpp): watches,
// pub/sub messages fed to each watched channel's ChannelSequencer, and what
// the sequencers ask for: gap fills, the check after a (re)subscription,
// a new epoch after Redis lost writes, hand-overs to the core.
#include <spdlog/spdlog.h>

#include <charconv>
#include <utility>

#include "engine/clock_and_epoch.hpp"
#include "engine/redis/fanout_payload.hpp"
#include "engine/redis/redis_replies.hpp"
#include "engine/redis/redis_shard_store.hpp"

namespace herald::engine::redis {

void RedisShardStore::watch(const std::string& channel, bool on) {
  if (on) {
    if (watched_.contains(channel)) return;
    watched_.try_emplace(channel, ++next_watch_id_, channel, options_.max_held_per_channel);
    hub_->watch(pubsub_channel(channel), channel, mailbox_);
  } else {
    if (watched_.erase(channel) == 0) return;
    hub_->unwatch(pubsub_channel(channel), mailbox_);
    deliver();  // an op of it held at the head goes now
  }
}

void RedisShardStore::pubsub_message(const std::string& channel, const std::string& payload) {
  auto it = watched_.find(channel);
  if (it == watched_.end()) return;  // unwatched since
  auto m = decode_fanout(payload);
  if (!m || m->origin == origin_) return;  // own echo: its reply hands it over
  m->message.channel = channel;
  // Neither stored nor ordered with the stream: handed over as they come.
  if (m->message.kind == RemoteMessage::Kind::ephemeral ||
      m->message.kind == RemoteMessage::Kind::join ||
      m->message.kind == RemoteMessage::Kind::leave) {
    hand_over(std::move(m->message));
    return;
  }
  ChannelSequencer::Out out;
  if (m->message.kind == RemoteMessage::Kind::reset)
    it->second.seq.remote_reset(m->message.reason, out);
  else
    it->second.seq.remote_event(m->message.epoch, std::move(m->message.event), out);
  std::weak_ptr<int> alive = alive_;
  act(channel, it->second.id, out);
  if (!alive.expired()) deliver();  // an op it held may go now
}

void RedisShardStore::pubsub_subscribed(const std::string& channel) {
  auto it = watched_.find(channel);
  if (it == watched_.end()) return;
  send_check(channel, it->second.id, 0);
}

void RedisShardStore::act(const std::string& channel, uint64_t watch_id,
                          ChannelSequencer::Out& out) {
  if (out.rolled_back) renew_epoch(channel, *out.rolled_back);
  if (out.fill) send_fill(channel, watch_id, *out.fill);
  std::weak_ptr<int> alive = alive_;
  for (RemoteMessage& m : out.handed) {
    hand_over(std::move(m));
    if (alive.expired()) return;
  }
}

void RedisShardStore::renew_epoch(const std::string& channel, const std::string& epoch) {
  spdlog::warn(
      "redis engine: channel '{}' went back to fewer events than were already delivered "
      "under its epoch (Redis restarted from an older snapshot, or failed over to a replica "
      "that lagged): it starts a new epoch",
      channel);
  Op op;
  op.channel = channel;
  op.kind = Kind::write;
  op.args = {"EVAL",
             "if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then "
             "redis.call('HSET', KEYS[1], 'epoch', ARGV[2]) return 1 end return 0",
             "1",
             channel_key(options_.prefix, channel, "meta"),
             epoch,
             random_epoch()};
  submit(std::move(op));
}

void RedisShardStore::send_fill(const std::string& channel, uint64_t watch_id,
                                ChannelSequencer::Fill fill, unsigned tries) {
  const auto ignore = [](Result&&) {};
  side_command(channel, {"MULTI"}, ignore);
  side_command(channel, {"HGET", channel_key(options_.prefix, channel, "meta"), "epoch"}, ignore);
  side_command(channel,
               {"XRANGE", channel_key(options_.prefix, channel, "stream"),
                "(" + decimal(fill.after), decimal(fill.upto)},
               ignore);
  side_command(channel, {"EXEC"}, [this, channel, watch_id, fill, tries](Result&& r) {
    if (closing_) return;
    if (must_refill(r, tries)) {
      refill_later(channel, watch_id, fill, tries + 1);
      return;
    }
    filled(channel, watch_id, fill.id, std::move(r));
  });
}

bool RedisShardStore::must_refill(const Result& r, unsigned tries) const {
  const Reply* reply = std::get_if<Reply>(&r);
  return router_ && reply && reply->is_error() && reply->str.starts_with("EXECABORT") &&
         tries < kMaxClusterTries;
}

void RedisShardStore::refill_later(const std::string& channel, uint64_t watch_id,
                                   ChannelSequencer::Fill fill, unsigned tries) {
  auto timer = std::make_shared<boost::asio::steady_timer>(retry_timer_.get_executor());
  timer->expires_after(kClusterRetryPause);
  timer->async_wait([this, timer, channel, watch_id, fill, tries,
                     alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired() || closing_ || !watched(channel, watch_id)) return;
    send_fill(channel, watch_id, fill, tries);
  });
}

void RedisShardStore::filled(const std::string& channel, uint64_t watch_id, uint64_t fill_id,
                             Result&& r) {
  Watched* w = watched(channel, watch_id);
  if (!w) return;
  ChannelSequencer::Out out;
  Reply* reply = std::get_if<Reply>(&r);
  std::optional<std::vector<StoredEvent>> entries;
  std::optional<std::string> epoch;
  if (reply && reply->kind == Reply::Kind::array && reply->elements.size() == 2) {
    const Reply& e = reply->elements[0];
    if (e.kind == Reply::Kind::string) epoch = e.str;
    if (e.kind == Reply::Kind::string || e.is_nil()) entries = to_entries(reply->elements[1]);
  }
  if (entries) {
    w->seq.fill_answered(fill_id, epoch, std::move(*entries), out);
  } else {
    // The op it held gives up: never an ack the node could not order.
    if (w->seq.fill_failed(fill_id, out) && !ops_.empty() && ops_.front().held &&
        ops_.front().channel == channel) {
      Op& op = ops_.front();
      const std::string why =
          unavailable(std::holds_alternative<Failure>(r)
                          ? std::get<Failure>(r).message
                          : "unexpected reply to the gap fill " + to_string(std::get<Reply>(r)));
      if (op.kind == Kind::append) {
        op.append = AppendResult{};
        op.append.error = why;
        op.append.unavailable = true;
      } else if (op.kind == Kind::read) {
        op.history = HistoryResult{};
        op.history.error = why;
        op.history.unavailable = true;
      }
    }
  }
  std::weak_ptr<int> alive = alive_;
  act(channel, watch_id, out);
  if (!alive.expired()) deliver();
}

void RedisShardStore::send_check(const std::string& channel, uint64_t watch_id, unsigned attempt) {
  Watched* w = watched(channel, watch_id);
  if (!w) return;
  side_command(channel, {"HMGET", channel_key(options_.prefix, channel, "meta"), "epoch", "last"},
               [this, channel, watch_id, attempt, floor = w->seq.floor()](Result&& r) {
                 if (!checked(channel, watch_id, floor, std::move(r)))
                   check_later(channel, watch_id, attempt + 1);
               });
}

void RedisShardStore::check_later(const std::string& channel, uint64_t watch_id, unsigned attempt) {
  const auto pause = std::min(std::chrono::milliseconds(50L << std::min(attempt, 5u)),
                              options_.connection.reconnect_max);
  auto timer = std::make_shared<boost::asio::steady_timer>(mailbox_->executor, pause);
  timer->async_wait([this, timer, alive = std::weak_ptr<int>(alive_), channel, watch_id,
                     attempt](const boost::system::error_code&) {
    if (alive.expired() || closing_) return;
    send_check(channel, watch_id, attempt);
  });
}

bool RedisShardStore::checked(const std::string& channel, uint64_t watch_id,
                              const ChannelSequencer::Floor& floor, Result&& r) {
  Watched* w = watched(channel, watch_id);
  if (!w) return true;
  const Reply* reply = std::get_if<Reply>(&r);
  if (!reply || reply->kind != Reply::Kind::array || reply->elements.size() != 2) return false;
  const Reply& epoch = reply->elements[0];
  const Reply& last = reply->elements[1];
  ChannelSequencer::Out out;
  if (epoch.is_nil()) {
    w->seq.check_answered(std::nullopt, 0, floor, out);
  } else if (epoch.kind == Reply::Kind::string && last.kind == Reply::Kind::string) {
    uint64_t n = 0;
    if (std::from_chars(last.str.data(), last.str.data() + last.str.size(), n).ec != std::errc())
      return true;  // not a number: nothing to learn from it, now or later
    w->seq.check_answered(epoch.str, n, floor, out);
  }
  std::weak_ptr<int> alive = alive_;
  act(channel, watch_id, out);
  if (!alive.expired()) deliver();
  return true;
}

}  // namespace herald::engine::redis
