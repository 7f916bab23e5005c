// Node: the owner-side pipelines of publish, subscribe and history; see
// node.hpp for the threading design.
#include "core/node.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

#define XXH_INLINE_ALL  // xxhash.h as header-only: nothing to link
#include <xxhash.h>

#include "core/node_internal.hpp"
#include "engine/clock_and_epoch.hpp"
#include "protocol/messages.hpp"

namespace herald::core {

Failure storage_failure(bool unavailable, const std::string& why) {
  if (!unavailable) return Failure{protocol::ErrorCode::internal, "storage error: " + why, {}};
  return Failure{protocol::ErrorCode::unavailable,
                 "storage unavailable, nothing was stored; retry later: " + why,
                 {}};
}

ws::SharedFrame event_frame(const PublishRequest& req, std::optional<uint64_t> offset, int64_t ts) {
  ws::FrameWriter writer(req.data.size() + req.channel.size() + req.event.size() + 96);
  protocol::append_event(writer.payload(),
                         protocol::EventView{req.channel, req.event, req.data, offset, ts,
                                             req.from_client, req.from_user, req.from_info});
  return writer.finish(ws::Opcode::text, offset);
}

namespace {

// Serializes stored events as the JSON array of `event` messages used by
// `subscribed.events` and `history.events`.
std::string events_to_json(const std::string& channel,
                           const std::vector<engine::StoredEvent>& events) {
  std::string out = "[";
  for (const auto& e : events) {
    if (out.size() > 1) out += ',';
    protocol::append_event(out, protocol::EventView{channel, e.event, e.data, e.offset, e.ts_ms,
                                                    e.from_client, e.from_user, e.from_info});
  }
  out += ']';
  return out;
}

}  // namespace

std::optional<Failure> admit(const Namespace& ns, PublishRequest& req) {
  using protocol::ErrorCode;
  const auto& options = ns.options;
  const std::string where = ns.name.empty() ? "the defaults" : "namespace '" + ns.name + "'";
  if (req.data.size() > options.max_message_bytes)
    return Failure{ErrorCode::too_large,
                   "data is " + std::to_string(req.data.size()) + " bytes; " + where +
                       " allows at most " + std::to_string(options.max_message_bytes),
                   {}};
  if (!ns.schemas) return std::nullopt;
  auto verdict = ns.schemas->check(req.event, req.data);
  if (!verdict.declared) {
    if (!options.strict_events) return std::nullopt;
    return Failure{ErrorCode::validation_failed,
                   "event '" + req.event + "' is not declared by the schema of " + where,
                   {}};
  }
  if (!verdict.violations.empty())
    return Failure{ErrorCode::validation_failed,
                   "data does not match the schema of event '" + req.event + "' (" +
                       std::to_string(verdict.violations.size()) + " violation" +
                       (verdict.violations.size() == 1 ? ")" : "s)"),
                   schema::violations_to_json(verdict.violations)};
  if (verdict.stripped) req.data = std::move(*verdict.stripped);
  return std::nullopt;
}

uint64_t fingerprint(std::string_view user, std::string_view event, std::string_view data) {
  // Each part hashed on its own (XXH3 mixes in the length), the previous
  // hash as the seed of the next: ("ab", "c") and ("a", "bc") differ.
  uint64_t h = XXH3_64bits(user.data(), user.size());
  h = XXH3_64bits_withSeed(event.data(), event.size(), h);
  return XXH3_64bits_withSeed(data.data(), data.size(), h);
}

engine::Retention retention_of(const Namespace& ns) {
  return {ns.options.history_size, static_cast<int64_t>(ns.options.history_ttl.count())};
}

Node::Node(unsigned workers, engine::Engine& engine, NodeOptions options,
           std::shared_ptr<const NamespaceTable> namespaces)
    : engine_(engine), options_(options) {
  shards_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->namespaces = namespaces;
  }
}

Node::~Node() = default;

void Node::attach_worker(unsigned index, boost::asio::io_context& io,
                         metrics::WorkerCounters* counters) {
  Shard& shard = *shards_.at(index);
  shard.io = &io;
  if (counters) {
    shard.counters = counters;
  } else {
    shard.own_counters = std::make_unique<metrics::WorkerCounters>();
    shard.counters = shard.own_counters.get();
  }
  shard.store = engine_.open_shard(index, io.get_executor());
  if (shard.store->shared())
    shard.store->on_remote(
        [this, index](engine::RemoteMessage message) { on_remote(index, std::move(message)); });
  shard.expiry_timer = std::make_unique<boost::asio::steady_timer>(io);
}

void Node::detach_worker(unsigned index) {
  Shard& shard = *shards_.at(index);
  shard.expiry_timer.reset();
  shard.probing.clear();
  // The store's connections and timers (redis) live on this io_context too.
  shard.store.reset();
}

void Node::set_namespaces(std::shared_ptr<const NamespaceTable> namespaces) {
  for (unsigned w = 0; w < shards_.size(); ++w)
    post(w, [this, w, namespaces] { shards_[w]->namespaces = namespaces; });
}

const Namespace* Node::find_namespace(unsigned index, const std::string& channel,
                                      std::optional<Failure>& failure) const {
  const Namespace* ns = shards_[index]->namespaces->find(channel);
  if (!ns) {
    const auto name = config::namespace_of(channel);
    failure = Failure{protocol::ErrorCode::unknown_channel,
                      name.empty() ? "channel " + channel + " has no namespace (no ':')"
                                   : "namespace '" + std::string(name) + "' of channel " + channel +
                                         " is not configured",
                      {}};
  }
  return ns;
}

unsigned Node::owner_of(std::string_view channel) const {
  return static_cast<unsigned>(std::hash<std::string_view>{}(channel) % shards_.size());
}

const Namespace* Node::namespace_of(unsigned index, std::string_view channel) const {
  return shards_[index]->namespaces->find(channel);
}

LocalSubscribers& Node::local(unsigned index) {
  return shards_[index]->local;
}

void Node::deliver_to_workers(Shard& owner, const std::string& channel,
                              const ws::SharedFrame& frame) {
  auto it = owner.channels.find(channel);
  if (it == owner.channels.end()) return;
  const auto& counts = it->second.counts;
  const auto handed = std::chrono::steady_clock::now();
  for (unsigned w = 0; w < counts.size(); ++w) {
    if (counts[w] == 0) continue;
    post(w, [this, w, channel, frame, handed] {
      Shard& shard = *shards_[w];
      const auto now = std::chrono::steady_clock::now();
      shard.counters->stage(metrics::PublishStage::to_worker).observe(seconds_between(handed, now));
      if (!shard.first_delivery) shard.first_delivery = now;
      shard.local.deliver(channel, frame);
    });
  }
}

void Node::turn_flushed(unsigned index) {
  Shard& shard = *shards_[index];
  if (!shard.first_delivery) return;
  shard.counters->stage(metrics::PublishStage::to_write)
      .observe(seconds_since(*shard.first_delivery));
  shard.first_delivery.reset();
}

template <class T>
void Node::gather(unsigned from, std::function<T(unsigned)> f,
                  std::function<void(std::vector<T>)> done) {
  struct State {
    std::vector<T> results;
    size_t remaining;
    std::function<void(std::vector<T>)> done;
  };
  auto state = std::make_shared<State>(
      State{std::vector<T>(shards_.size()), shards_.size(), std::move(done)});
  for (unsigned w = 0; w < shards_.size(); ++w) {
    post(w, [this, w, from, f, state] {
      T result = f(w);
      post(from, [w, state, result = std::move(result)]() mutable {
        state->results[w] = std::move(result);
        if (--state->remaining == 0) state->done(std::move(state->results));
      });
    });
  }
}

void Node::publish(unsigned from, PublishRequest req, std::function<void(PublishResult)> done) {
  std::optional<Failure> failure;
  const Namespace* ns = find_namespace(from, req.channel, failure);
  if (ns) failure = admit(*ns, req);
  if (failure) {
    done(PublishResult{std::move(failure), std::nullopt});
    return;
  }
  const engine::Retention keep = retention_of(*ns);
  const int64_t key_window = ns->options.idempotency_window.count();
  const size_t max_keys = ns->options.idempotency_max_keys;
  // Only channels with a TTL need the owner's expiry bookkeeping (decided
  // here, where the namespace was already looked up, not twice per publish
  // at the owner).
  const bool has_ttl = ttl_ms(*ns) > 0;
  const unsigned owner = owner_of(req.channel);
  const auto sent = std::chrono::steady_clock::now();
  post(owner, [this, owner, from, keep, key_window, max_keys, has_ttl, sent, req = std::move(req),
               done = std::move(done)]() mutable {
    const int64_t ts = engine::system_now_ms();
    const auto arrived = std::chrono::steady_clock::now();
    shards_[owner]
        ->counters->stage(metrics::PublishStage::to_owner)
        .observe(seconds_between(sent, arrived));
    if (req.ephemeral) {
      deliver_to_workers(*shards_[owner], req.channel, event_frame(req, std::nullopt, ts));
      if (shards_[owner]->store->shared()) broadcast_ephemeral(owner, req, ts);
      shards_[owner]->counters->publish_delivery_seconds.observe(seconds_since(arrived));
      post(from, [done = std::move(done)] { done(PublishResult{}); });
      return;
    }
    Shard& shard = *shards_[owner];
    const std::string channel = req.channel;
    auto append = [this, owner, from, keep, key_window, max_keys, has_ttl, ts, arrived,
                   req = std::move(req), done = std::move(done)]() mutable {
      engine::NewEvent ev{req.event, req.data, req.from_client, req.from_user,
                          ts,        keep,     req.from_info};
      if (!req.idempotency_key.empty()) {
        ev.fingerprint = fingerprint(req.from_user, req.event, req.data);
        ev.idempotency_key = std::move(req.idempotency_key);
        ev.idempotency_window_ms = key_window;
        ev.idempotency_max_keys = max_keys;
      }
      const std::string channel = req.channel;
      const auto appending = std::chrono::steady_clock::now();
      shards_[owner]->store->append(
          channel, std::move(ev),
          [this, owner, from, ts, arrived, appending, has_ttl, req = std::move(req),
           done = std::move(done)](engine::AppendResult r) mutable {
            auto& counters = *shards_[owner]->counters;
            counters.engine_append_seconds.observe(seconds_since(appending));
            PublishResult result;
            if (r.conflict) {
              result.failure = Failure{
                  protocol::ErrorCode::idempotency_conflict,
                  "idempotency_key " + r.idempotency_key + " was already used on " + req.channel +
                      " for another event or data (offset " + std::to_string(r.offset) + ")",
                  {}};
            } else if (!r.ok) {
              result.failure = storage_failure(r.unavailable, r.error);
            } else if (r.replayed) {
              result.offset = r.offset;  // stored before: nothing to deliver again
              result.replayed = true;
            } else {
              result.offset = r.offset;
              deliver_to_workers(*shards_[owner], req.channel, event_frame(req, r.offset, ts));
              counters.publish_delivery_seconds.observe(seconds_since(arrived));
              if (has_ttl) {
                if (const Namespace* ns = shards_[owner]->namespaces->find(req.channel);
                    ns && ttl_ms(*ns) > 0)
                  note_created(owner, req.channel, *ns, r.created_ms);
              }
            }
            post(from, [this, from, done = std::move(done), result = std::move(result),
                        answered = std::chrono::steady_clock::now()] {
              shards_[from]
                  ->counters->stage(metrics::PublishStage::ack)
                  .observe(seconds_since(answered));
              done(result);
            });
          });
    };
    // A channel with a TTL may have expired while nobody used it (e.g. while
    // the server was down): find out before storing into its old epoch.
    const Namespace* ns = has_ttl ? shard.namespaces->find(channel) : nullptr;
    if (ns && ttl_ms(*ns) > 0)
      with_fresh_channel(owner, channel, *ns, std::move(append));
    else
      append();
  });
}

void Node::subscribe(unsigned from, SubscribeRequest req,
                     std::function<void(SubscribeResult)> done) {
  const unsigned owner = owner_of(req.channel);
  post(owner, [this, owner, from, req = std::move(req), done = std::move(done)]() mutable {
    Shard& shard = *shards_[owner];
    auto& counts = shard.channels[req.channel].counts;
    if (counts.empty()) {
      counts.resize(shards_.size());
      shard.counters->channels.add();
      shard.store->watch(req.channel, true);  // before the read below
    }
    ++counts[from];  // matched by the unsubscribe() that follows a failure too

    std::optional<Failure> failure;
    const Namespace* ns = find_namespace(owner, req.channel, failure);
    if (!ns) {
      post(from, [done = std::move(done), failure = std::move(failure)] {
        done(SubscribeResult{failure, {}, 0, std::nullopt, {}});
      });
      return;
    }
    if (tracks_presence(*ns)) presence_subscribe_begin(shard, req);
    subscribe_read(owner, from, std::move(req), std::move(done));
  });
}

void Node::subscribe_read(unsigned owner, unsigned from, SubscribeRequest req,
                          std::function<void(SubscribeResult)> done) {
  Shard& shard = *shards_[owner];
  std::optional<Failure> failure;
  const Namespace* ns = find_namespace(owner, req.channel, failure);
  if (!ns) {  // a reload removed its namespace since the subscribe arrived
    presence_admit(shard, req, nullptr, false);
    post(from, [done = std::move(done), failure = std::move(failure)] {
      done(SubscribeResult{failure, {}, 0, std::nullopt, {}});
    });
    return;
  }
  // Recovery the namespace does not allow is answered like recovery of
  // events that are gone: recovered false, no events.
  const bool recovery_refused = req.recover && !ns->options.recover;

  const size_t cap = options_.max_history_request;
  engine::HistoryQuery query;
  query.retention = retention_of(*ns);
  if (recovery_refused) {
    query.limit = 0;
  } else if (req.recover) {
    query.after = req.recover->offset;
    query.limit = cap + 1;  // one more than allowed tells "too many to recover"
  } else {
    query.limit = std::min<uint64_t>(req.history.value_or(0), cap);
  }
  const std::string channel = req.channel;  // `req` moves into the callback below
  const auto reading = std::chrono::steady_clock::now();
  shard.store->read(
      channel, query,
      [this, owner, from, recovery_refused, reading, req = std::move(req),
       done = std::move(done)](engine::HistoryResult h) mutable {
        Shard& shard = *shards_[owner];
        shard.counters->history_read_seconds.observe(seconds_since(reading));
        const Namespace* ns = shard.namespaces->find(req.channel);
        if (h.ok && ns && ttl_ms(*ns) > 0 && note_created(owner, req.channel, *ns, h.created_ms)) {
          // Expired: destroyed just now; read the channel's new life.
          subscribe_read(owner, from, std::move(req), std::move(done));
          return;
        }
        SubscribeResult result;
        if (auto refused = presence_admit(shard, req, ns, h.ok)) {
          result.failure = std::move(refused);
        } else if (!h.ok) {
          result.failure = storage_failure(h.unavailable, h.error);
        } else {
          result.epoch = h.epoch;
          result.offset = h.last_offset;
          bool include_events = !req.recover;
          if (recovery_refused) {
            result.recovered = false;
          } else if (req.recover) {
            const auto& want = *req.recover;
            const bool same_epoch = want.epoch == h.epoch && want.offset <= h.last_offset;
            const bool nothing_missed = want.offset == h.last_offset;
            const bool all_held = !h.events.empty() && h.events.front().offset == want.offset + 1 &&
                                  h.events.back().offset == h.last_offset &&
                                  h.events.size() <= options_.max_history_request;
            result.recovered = same_epoch && (nothing_missed || all_held);
            include_events = *result.recovered;
          }
          result.events_json =
              include_events ? events_to_json(req.channel, h.events) : std::string("[]");
        }
        post(from, [done = std::move(done), result = std::move(result)] { done(result); });
      });
}

void Node::unsubscribe(unsigned from, std::string channel, std::string client) {
  const unsigned owner = owner_of(channel);
  post(owner, [this, owner, from, channel = std::move(channel), client = std::move(client)] {
    Shard& shard = *shards_[owner];
    auto it = shard.channels.find(channel);
    if (it == shard.channels.end()) return;
    auto& counts = it->second.counts;
    if (counts[from] > 0) --counts[from];
    presence_unsubscribe(shard, channel, client);
    erase_if_idle(shard, channel);
  });
}

void Node::erase_if_idle(Shard& shard, const std::string& channel) {
  auto it = shard.channels.find(channel);
  if (it == shard.channels.end()) return;
  const auto& counts = it->second.counts;
  if (!std::all_of(counts.begin(), counts.end(), [](uint32_t c) { return c == 0; })) return;
  if (it->second.presence && !it->second.presence->idle()) return;
  // The last member's leave still goes to the other nodes (shared stores);
  // with no subscriber here it reaches nobody else.
  if (it->second.presence && it->second.presence->has_announcements()) {
    flush_announcements(shard, channel);
    it = shard.channels.find(channel);
  }
  shard.channels.erase(it);
  shard.counters->channels.sub();
  shard.store->watch(channel, false);
}

void Node::history(unsigned from, HistoryRequest req, std::function<void(HistoryResult)> done) {
  std::optional<Failure> failure;
  const Namespace* ns = find_namespace(from, req.channel, failure);
  if (!ns) {
    done(HistoryResult{std::move(failure), {}, 0, {}});
    return;
  }
  req.query.retention = retention_of(*ns);
  const unsigned owner = owner_of(req.channel);
  req.query.limit = std::min(req.query.limit, options_.max_history_request);
  post(owner, [this, owner, from, req = std::move(req), done = std::move(done)]() mutable {
    history_read(owner, from, std::move(req), std::move(done));
  });
}

void Node::history_read(unsigned owner, unsigned from, HistoryRequest req,
                        std::function<void(HistoryResult)> done) {
  const std::string channel = req.channel;
  const engine::HistoryQuery query = req.query;
  const auto reading = std::chrono::steady_clock::now();
  shards_[owner]->store->read(
      channel, query,
      [this, owner, from, reading, req = std::move(req),
       done = std::move(done)](engine::HistoryResult h) mutable {
        shards_[owner]->counters->history_read_seconds.observe(seconds_since(reading));
        const Namespace* ns = shards_[owner]->namespaces->find(req.channel);
        if (h.ok && ns && ttl_ms(*ns) > 0 && note_created(owner, req.channel, *ns, h.created_ms)) {
          history_read(owner, from, std::move(req), std::move(done));  // its new, empty life
          return;
        }
        HistoryResult result;
        if (!h.ok) {
          result.failure = storage_failure(h.unavailable, h.error);
        } else {
          result.epoch = h.epoch;
          result.offset = h.last_offset;
          result.events_json = events_to_json(req.channel, h.events);
        }
        post(from, [done = std::move(done), result = std::move(result)] { done(result); });
      });
}

void Node::stats(unsigned from, std::function<void(NodeStats)> done) {
  gather<NodeStats>(
      from,
      [this](unsigned w) {
        NodeStats s;
        for (const auto& [name, ch] : shards_[w]->channels) {
          uint64_t subs = 0;
          for (uint32_t c : ch.counts) subs += c;
          if (subs == 0) continue;
          ++s.channels;
          s.subscriptions += subs;
        }
        return s;
      },
      [done = std::move(done)](std::vector<NodeStats> parts) {
        NodeStats total;
        for (const auto& p : parts) {
          total.channels += p.channels;
          total.subscriptions += p.subscriptions;
        }
        done(total);
      });
}

void Node::channels(unsigned from, std::string prefix, size_t limit,
                    std::function<void(ChannelsResult)> done) {
  gather<ChannelsResult>(
      from,
      [this, prefix, limit](unsigned w) {
        ChannelsResult r;
        for (const auto& [name, ch] : shards_[w]->channels) {
          if (!name.starts_with(prefix)) continue;
          uint64_t subs = 0;
          for (uint32_t c : ch.counts) subs += c;
          if (subs == 0) continue;
          ++r.total;
          r.channels.push_back(ChannelCount{name, subs});
        }
        // Each owner sends at most `limit`: the first `limit` by name overall
        // are among them.
        auto by_name = [](const ChannelCount& a, const ChannelCount& b) {
          return a.channel < b.channel;
        };
        if (r.channels.size() > limit) {
          std::partial_sort(r.channels.begin(), r.channels.begin() + limit, r.channels.end(),
                            by_name);
          r.channels.resize(limit);
        }
        return r;
      },
      [limit, done = std::move(done)](std::vector<ChannelsResult> parts) {
        ChannelsResult all;
        for (auto& p : parts) {
          all.total += p.total;
          for (auto& c : p.channels) all.channels.push_back(std::move(c));
        }
        std::sort(
            all.channels.begin(), all.channels.end(),
            [](const ChannelCount& a, const ChannelCount& b) { return a.channel < b.channel; });
        if (all.channels.size() > limit) all.channels.resize(limit);
        done(std::move(all));
      });
}

}  // namespace herald::core
