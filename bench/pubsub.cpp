// herald-bench scenarios `fanout` and `rooms`, one engine: K channels
// ("rooms") with S subscribers each, P publishers sending M publishes in
// total, windowed by acks, at max rate or at a fixed total rate.
//
//   fanout  K = 1: S subscribers on --channel (bench:fanout).
//   rooms   K = --rooms channels bench:room:0..K-1, --subscribers-per-room S
//           each; publishes go round-robin (or pseudo-randomly) over the
//           rooms; M = --rate x --duration unless --messages is given.
//
// Each subscriber checks every event's (pub, seq) for loss, duplication and
// order (seq counts per publisher per room, the only order a server has to
// keep), that it belongs to its room (`room` in the data, rooms only), and
// records its latency (receive time - the send time carried in the data).
//
// Phases: connect subscribers (at most --connect-concurrency setting up at
// once, each until its subscription is confirmed) -> connect publishers ->
// publish -> drain (until every expected delivery arrived, or
// --drain-timeout after the last ack) -> report. A global deadline
// (--duration-limit) bounds it all. The wire protocol is the target's
// (client.hpp): Herald v1 and its peers, the raw peer, or NATS.
//
// Several nodes (--subscriber-urls A,B,C): publishers connect to --url,
// subscriber i to the (i mod n)-th of those URLs, so with Herald nodes
// sharing an engine (redis) most deliveries cross nodes; loss, order and
// latency are checked and measured exactly as on one server (the nodes run
// on this machine: one clock).
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "client.hpp"
#include "histogram.hpp"
#include "scan.hpp"
#include "scenario.hpp"
#include "seq_tracker.hpp"
#include "ws_loop.hpp"

namespace herald::bench {
namespace {

constexpr uint64_t kRoleSub = 1, kRolePub = 2;
constexpr int kMaxConnectAttempts = 3;

uint64_t make_user(uint64_t role, uint64_t idx) {
  return (role << 32) | idx;
}
uint64_t user_role(uint64_t u) {
  return u >> 32;
}
uint64_t user_index(uint64_t u) {
  return u & 0xFFFFFFFFu;
}

// Publisher p's share of n messages.
std::vector<uint64_t> split(uint64_t n, uint64_t publishers) {
  std::vector<uint64_t> v(publishers);
  for (uint64_t p = 0; p < publishers; ++p) v[p] = n / publishers + (p < n % publishers ? 1 : 0);
  return v;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

enum class Phase { connect_subs, connect_pubs, publish, drain, done };

struct Sub {
  Conn* conn = nullptr;
  int attempts = 0;
  bool subscribed = false;
  uint32_t room = 0, local = 0;  // room, and index among the room's subscribers
  uint64_t received = 0;
};

struct Pub {
  Conn* conn = nullptr;
  int attempts = 0;
  bool open = false;
  bool dead = false;   // connection lost: sends no more
  uint64_t count = 0;  // publishes this publisher must send
  uint64_t sent = 0;   // publishes sent; the k-th (1-based) has id k
  uint64_t acked = 0;
  uint64_t errors = 0;
  uint64_t inflight = 0;
  uint64_t first_due_ns = 0;  // rate mode: when the first publish is due
  uint64_t last_ack_ns = 0;
  // Send times of unacked publishes by id (a power-of-two ring at least
  // twice the window; a slot is trusted only if it holds the acked id).
  std::vector<std::pair<uint64_t, uint64_t>> sent_at;  // (id, send ns)
};

class PubSub final : public ClientHandler {
 public:
  PubSub(const Options& o, Endpoint ep, std::vector<Endpoint> sub_eps, bool rooms_scenario);

  int run();

  // ClientHandler
  void on_ready(Conn& c, uint64_t now) override;
  void on_subscribed(Conn& c, uint64_t recv_ns) override;
  void on_event(Conn& c, std::string_view data, uint64_t recv_ns) override;
  void on_ack(Conn& c, uint64_t id, uint64_t recv_ns) override;
  void on_error(Conn& c, std::string_view msg, bool has_id, uint64_t id, uint64_t recv_ns) override;
  void on_closed(Conn& c, const CloseInfo& info) override;

 private:
  // The room of publisher pi's k-th publish (0-based).
  uint32_t room_of(uint64_t pi, uint64_t k) const {
    if (rooms_ == 1) return 0;
    if (random_) return static_cast<uint32_t>(splitmix64((pi << 40) ^ k ^ 0x5EEDULL) % rooms_);
    return static_cast<uint32_t>((k * pubs_.size() + pi) % rooms_);
  }
  // The token of a subscriber (its index) or publisher (subscribers + its
  // index), or null.
  const std::string* token_of(uint64_t user) const {
    const uint64_t i = user_index(user);
    return o_.token_for(user_role(user) == kRoleSub ? i : subs_.size() + i);
  }
  // The loop endpoint a subscriber (round-robin over --subscriber-urls) or
  // publisher (--url) connects to.
  uint32_t endpoint_of(uint64_t user) const {
    if (user_role(user) != kRoleSub || sub_endpoints_.empty()) return 0;
    return sub_endpoints_[user_index(user) % sub_endpoints_.size()];
  }
  void start_connects();
  // Fails connections not set up (subscribed / ready) within
  // --handshake-timeout of their connect(); they are retried.
  void expire_setups(uint64_t now);
  uint64_t pump(uint64_t now);
  void send_publish(Pub& p, uint64_t pi, uint64_t now);
  void check_publish_done(uint64_t now);
  void fatal(std::string why);
  void progress(uint64_t now);
  int report();

  const Options& o_;
  const bool rooms_scenario_;
  const uint64_t rooms_, per_room_;
  const bool random_;
  Client client_;
  Phase phase_ = Phase::connect_subs;
  std::vector<Sub> subs_;
  std::vector<Pub> pubs_;
  // --subscriber-urls: the loop's endpoint of each of them (subscriber i
  // uses sub_endpoints_[i % n]); empty: --url (endpoint 0) for everyone.
  std::vector<uint32_t> sub_endpoints_;
  std::vector<std::string> wire_;         // per room: channel name on the wire
  std::vector<uint64_t> room_seq_;        // [pi * K + room]: seqs sent by pi to room
  std::vector<SeqTracker> trackers_;      // per room
  uint64_t next_sub_ = 0, next_pub_ = 0;  // next to connect
  uint64_t setting_up_ = 0;               // started, not yet subscribed/open
  uint64_t subscribed_ = 0, pubs_open_ = 0, subs_closed_ = 0;
  std::string fatal_;  // set: abort with kExitUsage

  // Results.
  Histogram latency_;
  Histogram ack_latency_;  // publish -> ack
  uint64_t expected_ = 0;  // deliveries owed for what was sent
  uint64_t unique_ = 0;    // distinct (subscriber, publisher, seq) received
  uint64_t duplicated_ = 0, out_of_order_ = 0, invalid_ = 0, misrouted_ = 0;
  uint64_t deliveries_ = 0, malformed_ = 0;
  uint64_t sub_errors_ = 0, unexpected_closes_ = 0, connect_retries_ = 0;
  std::map<std::string, uint64_t> close_reasons_;
  std::string first_error_;
  uint64_t t_start_ = 0, t_connected_ = 0, t_first_pub_ = 0, t_last_ack_ = 0, t_last_delivery_ = 0;
  uint64_t t_drain_ = 0, t_end_ = 0;
  bool timed_out_ = false;
  double cpu_self_0_ = 0, cpu_server_0_ = -1, cpu_self_1_ = 0, cpu_server_1_ = -1;
  HostCpu host_0_, host_1_;
  SchedTime sched_self_0_, sched_self_1_, sched_server_0_, sched_server_1_;
  uint64_t window_full_ = 0;   // rate mode: a due publish waited for the window
  uint64_t rate_max_lag_ = 0;  // rate mode: latest a publish left after its slot
  uint64_t last_progress_ = 0, last_progress_deliveries_ = 0, last_expiry_check_ = 0;

  size_t seq_at_ = 0;  // where "seq": was in the last event (fast path)
  std::string pad_, data_;
  // --idempotency-keys: "<key_prefix_><publisher>-<id>", unique per run (the
  // prefix is random), so runs against the same server never replay.
  std::string key_prefix_, key_;
  uint64_t replayed_seen_ = 0;
};

PubSub::PubSub(const Options& o, Endpoint ep, std::vector<Endpoint> sub_eps, bool rooms_scenario)
    : o_(o),
      rooms_scenario_(rooms_scenario),
      rooms_(rooms_scenario ? o.rooms : 1),
      per_room_(rooms_scenario ? o.subscribers_per_room : o.subscribers),
      random_(o.spread_random),
      client_(o.target, std::move(ep), *this) {
  client_.set_connect_first(o.connect_first);
  client_.set_pipeline_connect(o.pipeline_connect);
  for (Endpoint& e : sub_eps) sub_endpoints_.push_back(client_.add_endpoint(std::move(e)));
  if (o.idempotency_keys) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(splitmix64(
                      now_ns() ^ (uint64_t(::getpid()) << 32) ^
                      uint64_t(std::chrono::system_clock::now().time_since_epoch().count()))));
    key_prefix_ = std::string("hb") + hex + "-";
  }
  subs_.resize(rooms_ * per_room_);
  for (uint64_t i = 0; i < subs_.size(); ++i) {
    subs_[i].room = static_cast<uint32_t>(i / per_room_);
    subs_[i].local = static_cast<uint32_t>(i % per_room_);
  }
  pubs_.resize(o.publishers);
  const auto counts = split(o.messages, o.publishers);
  for (uint64_t p = 0; p < o.publishers; ++p) {
    pubs_[p].count = counts[p];
    pubs_[p].sent_at.resize(std::bit_ceil(2 * o.window), {0, 0});
  }
  wire_.reserve(rooms_);
  for (uint64_t r = 0; r < rooms_; ++r) {
    wire_.push_back(
        client_.wire_channel(rooms_scenario ? "bench:room:" + std::to_string(r) : o.channel));
  }
  room_seq_.assign(o.publishers * rooms_, 0);
  // How many publishes each publisher will send to each room, so the
  // trackers know the valid seq range.
  std::vector<std::vector<uint64_t>> per_room(rooms_, std::vector<uint64_t>(o.publishers, 0));
  for (uint64_t p = 0; p < o.publishers; ++p) {
    if (rooms_ == 1 || o.timed_publish) {  // timed: counts are only caps
      for (uint64_t r = 0; r < rooms_; ++r) per_room[r][p] = counts[p];
      continue;
    }
    for (uint64_t k = 0; k < counts[p]; ++k) ++per_room[room_of(p, k)][p];
  }
  trackers_.reserve(rooms_);
  // Bitsets are only made for pairs that go out of order; share the budget.
  const uint64_t budget = (256ull << 20) / rooms_ + 4096;
  for (uint64_t r = 0; r < rooms_; ++r)
    trackers_.emplace_back(per_room_, std::move(per_room[r]), budget);
  pad_.assign(o.size, 'x');
}

void PubSub::fatal(std::string why) {
  if (fatal_.empty()) fatal_ = std::move(why);
}

void PubSub::start_connects() {
  while (phase_ == Phase::connect_subs && next_sub_ < subs_.size() &&
         setting_up_ < o_.connect_concurrency) {
    Sub& s = subs_[next_sub_];
    ++s.attempts;
    const uint64_t user = make_user(kRoleSub, next_sub_);
    s.conn = &client_.connect(user, token_of(user), endpoint_of(user));
    ++next_sub_;
    ++setting_up_;
  }
  while (phase_ == Phase::connect_pubs && next_pub_ < pubs_.size() &&
         setting_up_ < o_.connect_concurrency) {
    Pub& p = pubs_[next_pub_];
    ++p.attempts;
    p.conn =
        &client_.connect(make_user(kRolePub, next_pub_), token_of(make_user(kRolePub, next_pub_)));
    ++next_pub_;
    ++setting_up_;
  }
}

void PubSub::expire_setups(uint64_t now) {
  Loop& loop = client_.loop();
  loop.expire_handshakes(now, o_.handshake_timeout_ns);
  const uint64_t limit = o_.handshake_timeout_ns;
  for (uint64_t i = 0; i < next_sub_; ++i) {
    Sub& s = subs_[i];
    if (!s.subscribed && s.conn && s.conn->state == ConnState::open &&
        now - s.conn->started_ns > limit) {
      loop.abort(*s.conn, "not subscribed within --handshake-timeout");
    }
  }
  for (uint64_t i = 0; i < next_pub_; ++i) {
    Pub& p = pubs_[i];
    if (!p.open && p.conn && p.conn->state == ConnState::open && now - p.conn->started_ns > limit) {
      loop.abort(*p.conn, "not ready within --handshake-timeout");
    }
  }
}

void PubSub::on_ready(Conn& c, uint64_t) {
  if (user_role(c.user) == kRoleSub) {
    client_.subscribe(c, wire_[subs_[user_index(c.user)].room]);
    return;
  }
  Pub& p = pubs_[user_index(c.user)];
  p.open = true;
  --setting_up_;
  ++pubs_open_;
}

void PubSub::on_subscribed(Conn& c, uint64_t) {
  if (user_role(c.user) != kRoleSub) return;
  Sub& s = subs_[user_index(c.user)];
  if (!s.subscribed) {
    s.subscribed = true;
    ++subscribed_;
    --setting_up_;
  }
}

void PubSub::on_closed(Conn& c, const CloseInfo& info) {
  if (phase_ == Phase::done) return;  // our own close at the end
  const uint64_t idx = user_index(c.user);
  const bool sub = user_role(c.user) == kRoleSub;
  const bool set_up = sub ? subs_[idx].subscribed : pubs_[idx].open;
  const char* who = sub ? "subscriber" : "publisher";
  if (!set_up) {
    // Failed while connecting, upgrading or subscribing: retry a few times.
    int& attempts = sub ? subs_[idx].attempts : pubs_[idx].attempts;
    if (attempts < kMaxConnectAttempts) {
      ++attempts;
      ++connect_retries_;
      Conn& n = client_.connect(c.user, token_of(c.user), endpoint_of(c.user));
      (sub ? subs_[idx].conn : pubs_[idx].conn) = &n;
      return;
    }
    --setting_up_;
    fatal(std::string(who) + " " + std::to_string(idx) + " could not be set up: " + info.reason);
    return;
  }
  ++unexpected_closes_;
  if (sub) ++subs_closed_;
  ++close_reasons_[std::string(who) + ": " + info.reason];
  if (first_error_.empty())
    first_error_ = std::string(who) + " " + std::to_string(idx) + " lost: " + info.reason;
  if (!sub) {
    Pub& p = pubs_[idx];
    p.dead = true;
    p.inflight = 0;
    check_publish_done(now_ns());
  }
}

void PubSub::on_error(Conn& c, std::string_view msg, bool has_id, uint64_t, uint64_t recv_ns) {
  const uint64_t idx = user_index(c.user);
  if (user_role(c.user) == kRoleSub) {
    ++sub_errors_;
    if (first_error_.empty())
      first_error_ = "subscriber " + std::to_string(idx) + ": " + std::string(msg);
    if (!subs_[idx].subscribed) fatal("connect or subscribe refused: " + std::string(msg));
    return;
  }
  Pub& p = pubs_[idx];
  if (!p.open) {
    fatal("publisher " + std::to_string(idx) + ": connect refused: " + std::string(msg));
    return;
  }
  ++p.errors;
  if (first_error_.empty()) first_error_ = "publisher: " + std::string(msg);
  // A Herald error reply answers one publish; NATS errors answer none (the
  // PONG still comes, or the connection closes).
  if (has_id && p.inflight) --p.inflight;
  if (p.sent == p.count && p.inflight == 0) check_publish_done(recv_ns);
}

void PubSub::on_ack(Conn& c, uint64_t id, uint64_t recv_ns) {
  if (user_role(c.user) != kRolePub) return;
  Pub& p = pubs_[user_index(c.user)];
  ++p.acked;
  if (client_.counters().replayed_acks != replayed_seen_) {
    replayed_seen_ = client_.counters().replayed_acks;
    if (first_error_.empty()) {
      first_error_ = "publisher " + std::to_string(user_index(c.user)) + ": publish " +
                     std::to_string(id) + " acked as replayed (its idempotency_key was new)";
    }
  }
  const auto& slot = p.sent_at[id & (p.sent_at.size() - 1)];
  if (slot.first == id) ack_latency_.record(recv_ns > slot.second ? recv_ns - slot.second : 0);
  if (p.inflight) --p.inflight;
  p.last_ack_ns = recv_ns;
  if (p.sent == p.count && p.inflight == 0) check_publish_done(recv_ns);
}

void PubSub::on_event(Conn& c, std::string_view msg, uint64_t recv_ns) {
  if (user_role(c.user) != kRoleSub) return;  // publishers subscribe to nothing
  const uint64_t si = user_index(c.user);
  Sub& s = subs_[si];
  ++s.received;
  ++deliveries_;
  t_last_delivery_ = recv_ns;
  const char* const begin = msg.data();
  const char* const end = begin + msg.size();
  uint64_t seq = 0, pub = 0, t = 0, room = 0;
  const bool want_room = rooms_scenario_;
  // Fast path: the data object sits where it was in the previous event
  // (events differ only in a few digits) and is exactly what the publishers
  // wrote: {"seq":N,"pub":P,"t":T[,"room":R],...
  constexpr std::string_view kSeq = "\"seq\":";
  bool ok = false;
  if (seq_at_ + kSeq.size() <= msg.size() &&
      std::memcmp(begin + seq_at_, kSeq.data(), kSeq.size()) == 0) {
    const char* p = begin + seq_at_ + kSeq.size();
    ok = parse_digits(p, end, seq) && at(p, end, ",\"pub\":") && parse_digits(p += 7, end, pub) &&
         at(p, end, ",\"t\":") && parse_digits(p += 5, end, t) &&
         (!want_room || (at(p, end, ",\"room\":") && parse_digits(p += 8, end, room)));
  }
  if (!ok) {
    // Slow path: search. Our fields are inside "data" (Herald protocol);
    // searching from there keeps channel or event names from matching. A
    // NATS payload is the data object itself.
    const char* d = find_key(begin, end, "\"data\"");
    const char* p = d ? d : begin;
    ok = find_uint(p, end, "\"seq\"", seq) && find_uint(p, end, "\"pub\"", pub) &&
         find_uint(p, end, "\"t\"", t) && (!want_room || find_uint(p, end, "\"room\"", room));
    if (ok) {
      const void* k = memmem(d ? d : begin, static_cast<size_t>(end - (d ? d : begin)), kSeq.data(),
                             kSeq.size());
      if (k) seq_at_ = static_cast<size_t>(static_cast<const char*>(k) - begin);
    }
  }
  if (!ok) {
    ++malformed_;
    return;
  }
  if (want_room && room != s.room) {
    ++misrouted_;
    if (first_error_.empty()) {
      first_error_ = "subscriber " + std::to_string(si) + " of room " + std::to_string(s.room) +
                     " got an event of room " + std::to_string(room);
    }
    return;
  }
  switch (trackers_[s.room].record(s.local, pub, seq)) {
    case SeqTracker::Result::in_order:
      ++unique_;
      break;
    case SeqTracker::Result::out_of_order:
      ++unique_;
      ++out_of_order_;
      break;
    case SeqTracker::Result::duplicate:
      ++duplicated_;
      break;
    case SeqTracker::Result::invalid:
      ++invalid_;
      return;
  }
  latency_.record(recv_ns > t ? recv_ns - t : 0);
}

void PubSub::send_publish(Pub& p, uint64_t pi, uint64_t now) {
  const uint64_t k = p.sent;  // 0-based index of this publish
  const uint64_t id = ++p.sent;
  const uint32_t room = room_of(pi, k);
  const uint64_t seq = ++room_seq_[pi * rooms_ + room];
  expected_ += per_room_;
  ++p.inflight;
  p.sent_at[id & (p.sent_at.size() - 1)] = {id, now};
  // The data object: {"seq":N,"pub":P,"t":T[,"room":R],"pad":"x..."}
  // padded to --size.
  size_t fixed = 7 + digits(seq) + 7 + digits(pi) + 5 + digits(now) + 8 + 2;
  if (rooms_scenario_) fixed += 8 + digits(room);
  const size_t pad = o_.size > fixed ? o_.size - fixed : 0;
  std::string& m = data_;
  m.clear();
  m += "{\"seq\":";
  append_uint(m, seq);
  m += ",\"pub\":";
  append_uint(m, pi);
  m += ",\"t\":";
  append_uint(m, now);
  if (rooms_scenario_) {
    m += ",\"room\":";
    append_uint(m, room);
  }
  m += ",\"pad\":\"";
  m.append(pad_.data(), pad);
  m += "\"}";
  if (o_.idempotency_keys) {
    std::string& key = key_;
    key.assign(key_prefix_);
    append_uint(key, pi);
    key += '-';
    append_uint(key, id);
    client_.publish(*p.conn, id, wire_[room], "bench", m, key);
    return;
  }
  client_.publish(*p.conn, id, wire_[room], "bench", m);
}

uint64_t PubSub::pump(uint64_t now) {
  if (phase_ != Phase::publish) return 0;
  if (o_.timed_publish && now >= t_first_pub_ + o_.duration_ns) {
    // Time is up: what was sent is the count; wait for the acks.
    for (Pub& p : pubs_) p.count = p.sent;
    check_publish_done(now);
    return 0;
  }
  uint64_t next_due = 0;
  for (uint64_t pi = 0; pi < pubs_.size(); ++pi) {
    Pub& p = pubs_[pi];
    if (p.dead) continue;
    while (p.sent < p.count) {
      uint64_t due = 0;
      if (o_.rate) {
        // Publisher pi sends its k-th message at first_due + k * P / rate.
        due = p.first_due_ns +
              static_cast<uint64_t>(double(p.sent) * 1e9 * double(pubs_.size()) / double(o_.rate));
        if (due > now) {
          if (!next_due || due < next_due) next_due = due;
          break;
        }
      }
      if (p.inflight >= o_.window) {
        if (o_.rate) ++window_full_;
        break;
      }
      if (o_.rate && now > due) rate_max_lag_ = std::max(rate_max_lag_, now - due);
      send_publish(p, pi, now);
    }
  }
  return next_due;
}

void PubSub::check_publish_done(uint64_t now) {
  if (phase_ != Phase::publish) return;
  for (const Pub& p : pubs_) {
    if (!p.dead && (p.sent < p.count || p.inflight > 0)) return;
  }
  t_last_ack_ = 0;
  for (const Pub& p : pubs_) t_last_ack_ = std::max(t_last_ack_, p.last_ack_ns);
  if (!t_last_ack_) t_last_ack_ = now;
  t_drain_ = now;
  phase_ = Phase::drain;
}

void PubSub::progress(uint64_t now) {
  if (!o_.progress) return;
  if (now - last_progress_ < 1'000'000'000) return;
  const double dt = double(now - last_progress_) / 1e9;
  uint64_t sent = 0, acked = 0;
  for (const Pub& p : pubs_) {
    sent += p.sent;
    acked += p.acked;
  }
  std::fprintf(
      stderr,
      "[%6.1fs] %-8s subscribed %llu/%llu  published %llu acked %llu  deliveries %llu (%.0f/s)\n",
      double(now - t_start_) / 1e9,
      phase_ == Phase::connect_subs   ? "connect"
      : phase_ == Phase::connect_pubs ? "connect"
      : phase_ == Phase::publish      ? "publish"
                                      : "drain",
      static_cast<unsigned long long>(subscribed_), static_cast<unsigned long long>(subs_.size()),
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(deliveries_),
      double(deliveries_ - last_progress_deliveries_) / dt);
  last_progress_ = now;
  last_progress_deliveries_ = deliveries_;
}

int PubSub::run() {
  t_start_ = now_ns();
  last_progress_ = t_start_;
  const uint64_t deadline = t_start_ + o_.duration_limit_ns;
  Loop& loop = client_.loop();

  std::fprintf(stderr,
               "herald-bench %s (%s): %llu room(s) x %llu subscribers, %llu publishers, %llu "
               "messages of %llu "
               "bytes%s -> %s\n",
               rooms_scenario_ ? "rooms" : "fanout", target_name(o_.target),
               static_cast<unsigned long long>(rooms_), static_cast<unsigned long long>(per_room_),
               static_cast<unsigned long long>(o_.publishers),
               static_cast<unsigned long long>(o_.messages),
               static_cast<unsigned long long>(o_.size),
               o_.rate ? (" at " + std::to_string(o_.rate) + "/s").c_str() : "", o_.url.c_str());
  while (phase_ != Phase::done) {
    uint64_t now = now_ns();
    if (!fatal_.empty()) break;
    if (now >= deadline) {
      timed_out_ = true;
      break;
    }
    if (phase_ == Phase::connect_subs || phase_ == Phase::connect_pubs) {
      if (now - last_expiry_check_ > 100'000'000) {
        expire_setups(now);
        last_expiry_check_ = now;
      }
      start_connects();
    }
    const uint64_t next_due = pump(now);
    loop.flush_pending();

    // Wait for socket events, at most until the next due publish, the end
    // of the drain, the deadline, or 100 ms (progress, timeouts).
    uint64_t wake = std::min(deadline, now + 100'000'000);
    if (next_due) wake = std::min(wake, next_due);
    if (phase_ == Phase::publish && o_.timed_publish)
      wake = std::min(wake, t_first_pub_ + o_.duration_ns);
    if (phase_ == Phase::drain) wake = std::min(wake, t_last_ack_ + o_.drain_timeout_ns);
    loop.run_once(static_cast<int64_t>(wake > now ? wake - now : 0));
    now = now_ns();

    if (phase_ == Phase::connect_subs && subscribed_ == subs_.size()) {
      phase_ = Phase::connect_pubs;
      std::fprintf(stderr, "[%6.1fs] %llu subscribers subscribed (%llu connect retries)\n",
                   double(now - t_start_) / 1e9, static_cast<unsigned long long>(subscribed_),
                   static_cast<unsigned long long>(connect_retries_));
    }
    if (phase_ == Phase::connect_pubs) {
      start_connects();
      if (pubs_open_ == pubs_.size()) {
        phase_ = Phase::publish;
        t_connected_ = now;
        t_first_pub_ = now;
        cpu_self_0_ = process_cpu_seconds(0);
        host_0_ = host_cpu();
        sched_self_0_ = sched_time(0);
        if (o_.server_pid) sched_server_0_ = sched_time(o_.server_pid);
        if (o_.server_pid) cpu_server_0_ = process_cpu_seconds(o_.server_pid);
        for (uint64_t pi = 0; pi < pubs_.size(); ++pi) {
          // Spread publishers' rate slots evenly.
          pubs_[pi].first_due_ns =
              o_.rate ? now + static_cast<uint64_t>(double(pi) * 1e9 / double(o_.rate)) : now;
        }
      }
    }
    if (phase_ == Phase::drain) {
      if (unique_ >= expected_ || now >= t_last_ack_ + o_.drain_timeout_ns ||
          subs_closed_ == subs_.size()) {
        phase_ = Phase::done;
      }
    }
    progress(now);
  }
  t_end_ = now_ns();
  cpu_self_1_ = process_cpu_seconds(0);
  host_1_ = host_cpu();
  sched_self_1_ = sched_time(0);
  if (o_.server_pid) sched_server_1_ = sched_time(o_.server_pid);
  if (o_.server_pid) cpu_server_1_ = process_cpu_seconds(o_.server_pid);
  const Phase reached = phase_;
  phase_ = Phase::done;
  for (size_t i = 0; i < loop.conns().size(); ++i) {
    Conn& c = *loop.conns()[i];
    if (c.state != ConnState::closed) loop.close(c);
  }
  if (!fatal_.empty()) {
    std::fprintf(stderr, "herald-bench: setup failed: %s\n", fatal_.c_str());
    return kExitUsage;
  }
  if (timed_out_ && reached != Phase::drain && reached != Phase::publish) {
    std::fprintf(stderr,
                 "herald-bench: --duration-limit reached while connecting (%llu/%llu subscribed)\n",
                 static_cast<unsigned long long>(subscribed_),
                 static_cast<unsigned long long>(subs_.size()));
    return kExitUsage;
  }
  return report();
}

int PubSub::report() {
  uint64_t sent = 0, acked = 0, pub_errors = 0, planned = 0;
  for (const Pub& p : pubs_) {
    sent += p.sent;
    acked += p.acked;
    pub_errors += p.errors;
    planned += p.count;
  }
  bool approximate = false;
  for (const auto& t : trackers_) approximate |= t.approximate();
  const uint64_t lost = expected_ > unique_ ? expected_ - unique_ : 0;
  const uint64_t malformed = malformed_ + invalid_;
  const uint64_t t_last = std::max(t_last_delivery_, t_first_pub_);
  const double window_s = double(t_last - t_first_pub_) / 1e9;
  const uint64_t ack_end = t_last_ack_ ? t_last_ack_ : t_end_;
  const double pub_s = double(ack_end - t_first_pub_) / 1e9;
  const double meas_s = double(t_end_ - t_first_pub_) / 1e9;
  auto us = [](uint64_t ns) { return double(ns) / 1e3; };
  const auto& cc = client_.counters();
  const bool ok = lost == 0 && duplicated_ == 0 && out_of_order_ == 0 && malformed == 0 &&
                  misrouted_ == 0 && pub_errors == 0 && sub_errors_ == 0 &&
                  unexpected_closes_ == 0 && cc.protocol_errors == 0 && !timed_out_ &&
                  cc.replayed_acks == 0 && sent == planned;

  Report r;
  r.add("scenario", std::string(rooms_scenario_ ? "rooms" : "fanout"));
  r.add("target", std::string(target_name(o_.target)));
  r.add("subscribers", uint64_t(subs_.size()), "subscribers (total)");
  // Servers the subscribers were spread over (--subscriber-urls), 1 without.
  r.add("subscriber_nodes", uint64_t(sub_endpoints_.empty() ? 1 : sub_endpoints_.size()),
        "servers the subscribers are spread over");
  r.add("publishers", uint64_t(pubs_.size()));
  if (rooms_scenario_) {
    r.add("rooms", rooms_);
    r.add("subscribers_per_room", per_room_);
  }
  r.add("messages", o_.timed_publish ? sent : o_.messages,
        o_.timed_publish ? "messages (sent in --duration)" : "");
  r.add("size", o_.size, "size", "bytes");
  r.add("deliveries", deliveries_);
  r.add("deliveries_per_sec", window_s > 0 ? double(deliveries_) / window_s : 0.0, 0,
        "deliveries/s");
  r.add("publishes_per_sec", pub_s > 0 ? double(acked) / pub_s : 0.0, 0, "publishes/s (acked)");
  r.add("p50_us", us(latency_.quantile(0.50)), 1, "latency p50", "us");
  r.add("p90_us", us(latency_.quantile(0.90)), 1, "latency p90", "us");
  r.add("p99_us", us(latency_.quantile(0.99)), 1, "latency p99", "us");
  r.add("p999_us", us(latency_.quantile(0.999)), 1, "latency p99.9", "us");
  r.add("max_us", us(latency_.max()), 1, "latency max", "us");
  r.add("lost", lost);
  r.add("duplicated", duplicated_);
  r.add("out_of_order", out_of_order_);
  r.add("duration_s", window_s, 3, "duration (first publish -> last delivery)", "s");
  // Extras.
  r.add("window", o_.window);
  r.add("rate", o_.rate, "rate (0 = max)", "publishes/s");
  if (o_.timed_publish)
    r.add("publish_for_s", double(o_.duration_ns) / 1e9, 3, "published for", "s");
  r.add("published", sent);
  r.add("acked", acked);
  r.add("ack_p50_us", us(ack_latency_.quantile(0.50)), 1, "publish -> ack p50", "us");
  r.add("ack_p99_us", us(ack_latency_.quantile(0.99)), 1, "publish -> ack p99", "us");
  r.add_bool("idempotency_keys", o_.idempotency_keys,
             "every publish with a unique idempotency_key");
  r.add("replayed", cc.replayed_acks, "acks marked replayed (must be 0)");
  if (rooms_scenario_) {
    r.add("spread", std::string(random_ ? "random" : "roundrobin"));
    r.add("misrouted", misrouted_, "misrouted (event of another room)");
  }
  r.add("publish_errors", pub_errors);
  r.add("subscriber_errors", sub_errors_);
  r.add("malformed", malformed);
  r.add("protocol_errors", cc.protocol_errors);
  r.add("unexpected_closes", unexpected_closes_);
  r.add("pings_answered", cc.pings_answered + client_.loop().counters().pings_answered);
  r.add("connect_s", double(t_connected_ - t_start_) / 1e9, 3, "connect time", "s");
  r.add("auth", std::string(o_.auth_mode()), "first message (none, connect, token)");
  if (!o_.tokens.empty()) r.add("tokens", uint64_t(o_.tokens.size()), "distinct tokens (lines)");
  r.add_bool("timed_out", timed_out_);
  if (approximate) r.add_bool("anomaly_counts_approximate", true);
  if (o_.rate) {
    // Whether the server kept up with the requested rate (acked publishes/s
    // within 5% of it); if not, latencies are measured from late sends.
    r.add_bool("rate_held", pub_s > 0 && double(acked) / pub_s >= 0.95 * double(o_.rate),
               "rate: held (acked >= 95% of --rate)");
    r.add("rate_window_stalls", window_full_, "rate: times the window held due publishes back");
    r.add("rate_max_lag_us", us(rate_max_lag_), 1, "rate: latest publish behind its slot", "us");
  }
  if (meas_s >= 0.2) {  // CPU times tick at 10 ms: shorter runs would be noise
    r.add("bench_cpu_pct", 100.0 * (cpu_self_1_ - cpu_self_0_) / meas_s, 1,
          "bench CPU (100 = 1 core)", "%");
    if (cpu_server_0_ >= 0 && cpu_server_1_ >= 0) {
      r.add("server_cpu_pct", 100.0 * (cpu_server_1_ - cpu_server_0_) / meas_s, 1,
            "server CPU (100 = 1 core)", "%");
      r.add("server_cpu_s", cpu_server_1_ - cpu_server_0_, 3, "server CPU (first publish -> end)",
            "s");
    }
  }
  if (host_1_.total > host_0_.total && meas_s >= 0.2) {
    // All cores together, in percent of one core like the two above, so
    // host - bench - server is what other processes took.
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    r.add("host_cpu_pct", 100.0 * (host_1_.busy - host_0_.busy) / meas_s, 1,
          "host CPU, all processes",
          "% (all " + std::to_string(ncpu) + " cores busy = " + std::to_string(100 * ncpu) + ")");
  }
  if (meas_s >= 0.2 && sched_self_0_.wait_s >= 0 && sched_self_1_.wait_s >= 0) {
    // Runnable but not running: > 0 means the CPU, not the peer, held a
    // process back (other processes, or bench and server competing).
    r.add("bench_runq_wait_pct", 100.0 * (sched_self_1_.wait_s - sched_self_0_.wait_s) / meas_s, 1,
          "bench waiting for a CPU", "% of the run");
    // Threads that exited take their counts along (a dying server): skip then.
    if (sched_server_0_.wait_s >= 0 && sched_server_1_.wait_s >= sched_server_0_.wait_s) {
      r.add("server_runq_wait_pct",
            100.0 * (sched_server_1_.wait_s - sched_server_0_.wait_s) / meas_s, 1,
            "server threads waiting for a CPU", "% of the run (summed over threads)");
    }
  }
  const auto& lc = client_.loop().counters();
  r.add("bench_reads", lc.reads);
  r.add("bench_bytes_in", lc.bytes_in);
  if (!first_error_.empty()) r.add("first_error", first_error_);
  r.add_bool("ok", ok, "passed");

  std::printf("%s\n", r.json().c_str());
  std::printf("\nherald-bench %s  %s  (target %s)\n%s", rooms_scenario_ ? "rooms" : "fanout",
              o_.url.c_str(), target_name(o_.target), r.table().c_str());
  for (const auto& [why, n] : close_reasons_) {
    std::printf("  closed: %llu x %s\n", static_cast<unsigned long long>(n), why.c_str());
  }
  std::fflush(stdout);
  if (!ok)
    std::fprintf(stderr, "herald-bench: FAILED (see lost/duplicated/out_of_order/errors above)\n");
  return ok ? kExitOk : kExitFailed;
}

int run_pubsub(const Options& o, bool rooms) {
  Endpoint ep;
  std::string err;
  if (!parse_ws_url(o.url, ep, err)) {
    std::fprintf(stderr, "herald-bench: --url: %s\n", err.c_str());
    return kExitUsage;
  }
  std::vector<Endpoint> sub_eps(o.subscriber_urls.size());
  for (size_t i = 0; i < sub_eps.size(); ++i) {
    if (!parse_ws_url(o.subscriber_urls[i], sub_eps[i], err)) {
      std::fprintf(stderr, "herald-bench: --subscriber-urls %s: %s\n", o.subscriber_urls[i].c_str(),
                   err.c_str());
      return kExitUsage;
    }
  }
  PubSub s(o, std::move(ep), std::move(sub_eps), rooms);
  return s.run();
}

}  // namespace

int run_fanout(const Options& o) {
  return run_pubsub(o, false);
}
int run_rooms(const Options& o) {
  return run_pubsub(o, true);
}

}  // namespace herald::bench
