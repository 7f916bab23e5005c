// herald-bench scenario `fanout`: S subscribers on one channel, P publishers
// sending M publishes (in total) to it, windowed by acks or at a fixed rate.
// Each subscriber checks every event's (pub, seq) for loss, duplication and
// order and records its latency (receive time - the publisher's send time
// carried in the event's data).
//
// Phases: connect subscribers (at most --connect-concurrency setting up at
// once, each until its "subscribed" reply) -> connect publishers -> publish
// -> drain (until every expected delivery arrived, or --drain-timeout after
// the last ack) -> report. A global deadline (--duration-limit) bounds it all.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "histogram.hpp"
#include "scenario.hpp"
#include "seq_tracker.hpp"
#include "ws_loop.hpp"

namespace herald::bench {
namespace {

constexpr uint64_t kRoleSub = 1, kRolePub = 2;
constexpr int kMaxConnectAttempts = 3;

uint64_t make_user(uint64_t role, uint64_t idx) { return (role << 32) | idx; }
uint64_t user_role(uint64_t u) { return u >> 32; }
uint64_t user_index(uint64_t u) { return u & 0xFFFFFFFFu; }

// The `type` of a server message, which the server always writes first.
std::string_view message_type(std::string_view m) {
  constexpr std::string_view k = "{\"type\":\"";
  size_t start;
  if (m.substr(0, k.size()) == k) {
    start = k.size();
  } else {
    const size_t p = m.find("\"type\":\"");
    if (p == std::string_view::npos) return {};
    start = p + 8;
  }
  const size_t end = m.find('"', start);
  if (end == std::string_view::npos) return {};
  return m.substr(start, end - start);
}

// Finds `key` (e.g. "\"seq\":") in [p, end) and parses the unsigned integer
// after it; advances p past the number. False when missing or not a number.
bool find_uint(const char*& p, const char* end, std::string_view key, uint64_t& out) {
  const void* f = memmem(p, static_cast<size_t>(end - p), key.data(), key.size());
  if (!f) return false;
  const char* q = static_cast<const char*>(f) + key.size();
  uint64_t v = 0;
  const char* start = q;
  while (q < end && *q >= '0' && *q <= '9' && q - start < 20) v = v * 10 + uint64_t(*q++ - '0');
  if (q == start) return false;
  out = v;
  p = q;
  return true;
}

void append_uint(std::string& s, uint64_t v) {
  char buf[24];
  char* e = buf + sizeof buf;
  char* b = e;
  do {
    *--b = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  s.append(b, static_cast<size_t>(e - b));
}

size_t digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Publisher p's share of n messages.
std::vector<uint64_t> split(uint64_t n, uint64_t publishers) {
  std::vector<uint64_t> v(publishers);
  for (uint64_t p = 0; p < publishers; ++p) v[p] = n / publishers + (p < n % publishers ? 1 : 0);
  return v;
}

enum class Phase { connect_subs, connect_pubs, publish, drain, done };

struct Sub {
  Conn* conn = nullptr;
  int attempts = 0;
  bool subscribed = false;
  uint64_t received = 0;
};

struct Pub {
  Conn* conn = nullptr;
  int attempts = 0;
  bool open = false;
  bool dead = false;       // connection lost: sends no more
  uint64_t count = 0;      // publishes this publisher must send
  uint64_t sent = 0;       // seqs 1..sent were sent
  uint64_t acked = 0;
  uint64_t errors = 0;
  uint64_t inflight = 0;
  uint64_t first_due_ns = 0;  // rate mode: when seq 1 is due
  uint64_t last_ack_ns = 0;
  // Send times of unacked publishes by id (a power-of-two ring at least
  // twice the window; a slot is trusted only if it holds the acked id).
  std::vector<std::pair<uint64_t, uint64_t>> sent_at;  // (id, send ns)
};

class Fanout final : public Handler {
 public:
  explicit Fanout(const Options& o, Endpoint ep)
      : o_(o), loop_(std::move(ep), *this), seq_(o.subscribers, split(o.messages, o.publishers)) {
    subs_.resize(o.subscribers);
    pubs_.resize(o.publishers);
    const auto counts = split(o.messages, o.publishers);
    for (uint64_t p = 0; p < o.publishers; ++p) {
      pubs_[p].count = counts[p];
      pubs_[p].sent_at.resize(std::bit_ceil(2 * o.window), {0, 0});
    }
    subscribe_msg_ = "{\"type\":\"subscribe\",\"id\":1,\"channel\":\"" + o.channel + "\"}";
    pad_.assign(o.size, 'x');
    // {"type":"publish","id":N,"channel":"C","event":"bench","data":{"seq":N,"pub":P,"t":T,"pad":"..."}}
    pub_head_ = "{\"type\":\"publish\",\"id\":";
    pub_mid_ = ",\"channel\":\"" + o.channel + "\",\"event\":\"bench\",\"data\":{\"seq\":";
  }

  int run();

  // Handler
  void on_open(Conn& c) override;
  void on_text(Conn& c, std::string_view msg, uint64_t recv_ns) override;
  void on_closed(Conn& c, const CloseInfo& info) override;

 private:
  void start_connects();
  void on_sub_text(Sub& s, uint64_t si, std::string_view msg, uint64_t recv_ns);
  void on_pub_text(Pub& p, std::string_view msg, uint64_t recv_ns);
  void on_event(uint64_t si, std::string_view msg, uint64_t recv_ns);
  // Sends what the window and the rate allow; returns the time the next
  // publish is due (rate mode), or 0.
  uint64_t pump(uint64_t now);
  void send_publish(Pub& p, uint64_t pi, uint64_t now);
  void check_publish_done(uint64_t now);
  void fatal(std::string why);
  void progress(uint64_t now);
  int report();

  const Options& o_;
  Loop loop_;
  Phase phase_ = Phase::connect_subs;
  std::vector<Sub> subs_;
  std::vector<Pub> pubs_;
  uint64_t next_sub_ = 0, next_pub_ = 0;  // next to connect
  uint64_t setting_up_ = 0;               // started, not yet subscribed/open
  uint64_t subscribed_ = 0, pubs_open_ = 0, subs_closed_ = 0;
  std::string fatal_;  // set: abort with kExitUsage

  // Results.
  Histogram latency_;
  Histogram ack_latency_;  // publish -> ack
  SeqTracker seq_;
  uint64_t deliveries_ = 0, malformed_ = 0;
  uint64_t sub_errors_ = 0, pings_ = 0, unexpected_closes_ = 0, connect_retries_ = 0;
  std::map<std::string, uint64_t> close_reasons_;
  std::string first_error_;
  uint64_t t_start_ = 0, t_connected_ = 0, t_first_pub_ = 0, t_last_ack_ = 0, t_last_delivery_ = 0;
  uint64_t t_drain_ = 0, t_end_ = 0;
  bool timed_out_ = false;
  double cpu_self_0_ = 0, cpu_server_0_ = -1, cpu_self_1_ = 0, cpu_server_1_ = -1;
  HostCpu host_0_, host_1_;
  SchedTime sched_self_0_, sched_self_1_, sched_server_0_, sched_server_1_;
  uint64_t window_full_ = 0;  // rate mode: a due publish waited for the window
  uint64_t rate_max_lag_ = 0;  // rate mode: latest a publish left after its slot
  uint64_t last_progress_ = 0, last_progress_deliveries_ = 0, last_expiry_check_ = 0;

  size_t data_at_ = 0;  // where "data" was in the last event (fast path)
  std::string subscribe_msg_, pad_, pub_head_, pub_mid_, scratch_;
};

void Fanout::fatal(std::string why) {
  if (fatal_.empty()) fatal_ = std::move(why);
}

void Fanout::start_connects() {
  while (phase_ == Phase::connect_subs && next_sub_ < subs_.size() &&
         setting_up_ < o_.connect_concurrency) {
    Sub& s = subs_[next_sub_];
    ++s.attempts;
    s.conn = &loop_.connect(make_user(kRoleSub, next_sub_));
    ++next_sub_;
    ++setting_up_;
  }
  while (phase_ == Phase::connect_pubs && next_pub_ < pubs_.size() &&
         setting_up_ < o_.connect_concurrency) {
    Pub& p = pubs_[next_pub_];
    ++p.attempts;
    p.conn = &loop_.connect(make_user(kRolePub, next_pub_));
    ++next_pub_;
    ++setting_up_;
  }
}

void Fanout::on_open(Conn& c) {
  if (user_role(c.user) == kRoleSub) {
    loop_.send_text(c, subscribe_msg_);
    return;
  }
  Pub& p = pubs_[user_index(c.user)];
  p.open = true;
  --setting_up_;
  ++pubs_open_;
}

void Fanout::on_closed(Conn& c, const CloseInfo& info) {
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
      Conn& n = loop_.connect(c.user);
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
  if (first_error_.empty()) {
    first_error_ = std::string(who) + " " + std::to_string(idx) + " lost: " + info.reason;
  }
  if (!sub) {
    Pub& p = pubs_[idx];
    p.dead = true;
    p.inflight = 0;
    check_publish_done(now_ns());
  }
}

void Fanout::on_text(Conn& c, std::string_view msg, uint64_t recv_ns) {
  const uint64_t idx = user_index(c.user);
  if (user_role(c.user) == kRoleSub) {
    on_sub_text(subs_[idx], idx, msg, recv_ns);
  } else {
    on_pub_text(pubs_[idx], msg, recv_ns);
  }
}

void Fanout::on_sub_text(Sub& s, uint64_t si, std::string_view msg, uint64_t recv_ns) {
  // Hot path: events.
  constexpr std::string_view kEvent = "{\"type\":\"event\"";
  if (msg.size() > kEvent.size() && std::memcmp(msg.data(), kEvent.data(), kEvent.size()) == 0) {
    ++s.received;
    on_event(si, msg, recv_ns);
    return;
  }
  const std::string_view type = message_type(msg);
  if (type == "event") {
    ++s.received;
    on_event(si, msg, recv_ns);
  } else if (type == "ping") {
    ++pings_;
    loop_.send_text(*s.conn, "{\"type\":\"pong\"}");
  } else if (type == "subscribed") {
    if (!s.subscribed) {
      s.subscribed = true;
      ++subscribed_;
      --setting_up_;
    }
  } else if (type == "error") {
    ++sub_errors_;
    if (first_error_.empty()) first_error_ = "subscriber " + std::to_string(si) + ": " + std::string(msg);
    if (!s.subscribed) fatal("subscribe refused: " + std::string(msg));
  }
  // Anything else (connected, unsubscribed, ...) is not part of this scenario.
}

void Fanout::on_pub_text(Pub& p, std::string_view msg, uint64_t recv_ns) {
  const std::string_view type = message_type(msg);
  if (type == "ack") {
    ++p.acked;
    const char* q = msg.data();
    uint64_t id = 0;
    if (find_uint(q, msg.data() + msg.size(), "\"id\":", id)) {
      const auto& slot = p.sent_at[id & (p.sent_at.size() - 1)];
      if (slot.first == id) ack_latency_.record(recv_ns > slot.second ? recv_ns - slot.second : 0);
    }
    if (p.inflight) --p.inflight;
    p.last_ack_ns = recv_ns;
    if (p.sent == p.count && p.inflight == 0) check_publish_done(recv_ns);
  } else if (type == "error") {
    ++p.errors;
    if (p.inflight) --p.inflight;
    if (first_error_.empty()) first_error_ = "publisher: " + std::string(msg);
    if (p.sent == p.count && p.inflight == 0) check_publish_done(recv_ns);
  } else if (type == "ping") {
    ++pings_;
    loop_.send_text(*p.conn, "{\"type\":\"pong\"}");
  }
}

// Parses the digits at p (at most 20); false when there are none.
inline bool parse_digits(const char*& p, const char* end, uint64_t& out) {
  const char* start = p;
  uint64_t v = 0;
  while (p < end && static_cast<unsigned>(*p - '0') < 10 && p - start < 20) v = v * 10 + uint64_t(*p++ - '0');
  out = v;
  return p != start;
}

// Whether [p, end) starts with `lit`.
inline bool at(const char* p, const char* end, std::string_view lit) {
  return static_cast<size_t>(end - p) >= lit.size() && std::memcmp(p, lit.data(), lit.size()) == 0;
}

void Fanout::on_event(uint64_t si, std::string_view msg, uint64_t recv_ns) {
  ++deliveries_;
  t_last_delivery_ = recv_ns;
  const char* const begin = msg.data();
  const char* const end = begin + msg.size();
  uint64_t seq = 0, pub = 0, t = 0;
  // Fast path: the data object sits where it was in the previous event
  // (the server's events differ only in a few digits) and is exactly what
  // the publishers wrote: {"seq":N,"pub":P,"t":T,...
  constexpr std::string_view kData = "\"data\":{\"seq\":";
  bool ok = false;
  if (data_at_ + kData.size() <= msg.size() && std::memcmp(begin + data_at_, kData.data(), kData.size()) == 0) {
    const char* p = begin + data_at_ + kData.size();
    ok = parse_digits(p, end, seq) && at(p, end, ",\"pub\":") && parse_digits(p += 7, end, pub) &&
         at(p, end, ",\"t\":") && parse_digits(p += 5, end, t);
  }
  if (!ok) {
    // Slow path: search. Our fields are inside "data"; searching from there
    // keeps channel or event names from matching.
    const void* d = memmem(begin, msg.size(), "\"data\":", 7);
    const char* p = static_cast<const char*>(d);
    ok = d && find_uint(p, end, "\"seq\":", seq) && find_uint(p, end, "\"pub\":", pub) &&
         find_uint(p, end, "\"t\":", t);
    if (ok && at(static_cast<const char*>(d), end, kData)) {
      data_at_ = static_cast<size_t>(static_cast<const char*>(d) - begin);
    }
  }
  if (!ok) {
    ++malformed_;
    return;
  }
  if (seq_.record(si, pub, seq) == SeqTracker::Result::invalid) return;
  latency_.record(recv_ns > t ? recv_ns - t : 0);
}

void Fanout::send_publish(Pub& p, uint64_t pi, uint64_t now) {
  const uint64_t seq = ++p.sent;
  ++p.inflight;
  p.sent_at[seq & (p.sent_at.size() - 1)] = {seq, now};
  // The data object: {"seq":N,"pub":P,"t":T,"pad":"x..."} padded to --size.
  const size_t fixed = 7 + digits(seq) + 7 + digits(pi) + 5 + digits(now) + 8 + 2;
  const size_t pad = o_.size > fixed ? o_.size - fixed : 0;
  std::string& m = scratch_;
  m.clear();
  m += pub_head_;
  append_uint(m, seq);
  m += pub_mid_;
  append_uint(m, seq);
  m += ",\"pub\":";
  append_uint(m, pi);
  m += ",\"t\":";
  append_uint(m, now);
  m += ",\"pad\":\"";
  m.append(pad_.data(), pad);
  m += "\"}}";
  loop_.send_text(*p.conn, m);
}

uint64_t Fanout::pump(uint64_t now) {
  if (phase_ != Phase::publish) return 0;
  uint64_t next_due = 0;
  for (uint64_t pi = 0; pi < pubs_.size(); ++pi) {
    Pub& p = pubs_[pi];
    if (p.dead) continue;
    while (p.sent < p.count) {
      if (o_.rate) {
        // Publisher pi sends its k-th message at first_due + k * P / rate.
        const uint64_t due =
            p.first_due_ns + static_cast<uint64_t>(double(p.sent) * 1e9 * double(pubs_.size()) / double(o_.rate));
        if (due > now) {
          if (!next_due || due < next_due) next_due = due;
          break;
        }
        if (p.inflight >= o_.window) {
          ++window_full_;
          break;
        }
      } else if (p.inflight >= o_.window) {
        break;
      }
      if (o_.rate) {
        const uint64_t due = p.first_due_ns + static_cast<uint64_t>(double(p.sent) * 1e9 * double(pubs_.size()) /
                                                                    double(o_.rate));
        if (now > due) rate_max_lag_ = std::max(rate_max_lag_, now - due);
      }
      send_publish(p, pi, now);
    }
  }
  return next_due;
}

void Fanout::check_publish_done(uint64_t now) {
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

void Fanout::progress(uint64_t now) {
  if (!o_.progress) return;
  if (now - last_progress_ < 1'000'000'000) return;
  const double dt = double(now - last_progress_) / 1e9;
  uint64_t sent = 0, acked = 0;
  for (const Pub& p : pubs_) {
    sent += p.sent;
    acked += p.acked;
  }
  std::fprintf(stderr, "[%6.1fs] %-8s subscribed %llu/%llu  published %llu acked %llu  deliveries %llu (%.0f/s)\n",
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

int Fanout::run() {
  t_start_ = now_ns();
  last_progress_ = t_start_;
  const uint64_t deadline = t_start_ + o_.duration_limit_ns;
  const uint64_t expected_per_msg = subs_.size();

  std::fprintf(stderr, "herald-bench fanout: %llu subscribers, %llu publishers, %llu messages of %llu bytes -> %s\n",
               static_cast<unsigned long long>(o_.subscribers), static_cast<unsigned long long>(o_.publishers),
               static_cast<unsigned long long>(o_.messages), static_cast<unsigned long long>(o_.size),
               o_.url.c_str());
  while (phase_ != Phase::done) {
    uint64_t now = now_ns();
    if (!fatal_.empty()) break;
    if (now >= deadline) {
      timed_out_ = true;
      break;
    }
    if (phase_ == Phase::connect_subs || phase_ == Phase::connect_pubs) {
      if (now - last_expiry_check_ > 100'000'000) {
        loop_.expire_handshakes(now, o_.handshake_timeout_ns);
        last_expiry_check_ = now;
      }
      start_connects();
    }
    uint64_t next_due = pump(now);
    loop_.flush_pending();

    // Wait for socket events, at most until the next due publish, the end
    // of the drain, the deadline, or 100 ms (progress, timeouts).
    uint64_t wake = std::min(deadline, now + 100'000'000);
    if (next_due) wake = std::min(wake, next_due);
    if (phase_ == Phase::drain) wake = std::min(wake, t_last_ack_ + o_.drain_timeout_ns);
    loop_.run_once(static_cast<int64_t>(wake > now ? wake - now : 0));
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
      uint64_t sent = 0;
      for (const Pub& p : pubs_) sent += p.sent;
      if (seq_.unique() >= sent * expected_per_msg || now >= t_last_ack_ + o_.drain_timeout_ns ||
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
  for (size_t i = 0; i < loop_.conns().size(); ++i) {
    Conn& c = *loop_.conns()[i];
    if (c.state != ConnState::closed) loop_.close(c);
  }
  if (!fatal_.empty()) {
    std::fprintf(stderr, "herald-bench: setup failed: %s\n", fatal_.c_str());
    return kExitUsage;
  }
  if (timed_out_ && reached != Phase::drain && reached != Phase::publish) {
    std::fprintf(stderr, "herald-bench: --duration-limit reached while connecting (%llu/%llu subscribed)\n",
                 static_cast<unsigned long long>(subscribed_), static_cast<unsigned long long>(subs_.size()));
    return kExitUsage;
  }
  return report();
}

int Fanout::report() {
  uint64_t sent = 0, acked = 0, pub_errors = 0;
  for (const Pub& p : pubs_) {
    sent += p.sent;
    acked += p.acked;
    pub_errors += p.errors;
  }
  const uint64_t expected = sent * subs_.size();
  const uint64_t lost = expected > seq_.unique() ? expected - seq_.unique() : 0;
  const uint64_t malformed = malformed_ + seq_.invalid();
  const uint64_t t_last = std::max(t_last_delivery_, t_first_pub_);
  const double window_s = double(t_last - t_first_pub_) / 1e9;
  const uint64_t ack_end = t_last_ack_ ? t_last_ack_ : t_end_;
  const double pub_s = double(ack_end - t_first_pub_) / 1e9;
  const double meas_s = double(t_end_ - t_first_pub_) / 1e9;
  auto us = [](uint64_t ns) { return double(ns) / 1e3; };

  Report r;
  r.add("scenario", std::string("fanout"));
  r.add("subscribers", uint64_t(subs_.size()));
  r.add("publishers", uint64_t(pubs_.size()));
  r.add("messages", o_.messages);
  r.add("size", o_.size, "size", "bytes");
  r.add("deliveries", deliveries_);
  r.add("deliveries_per_sec", window_s > 0 ? double(deliveries_) / window_s : 0.0, 0, "deliveries/s");
  r.add("publishes_per_sec", pub_s > 0 ? double(acked) / pub_s : 0.0, 0, "publishes/s (acked)");
  r.add("p50_us", us(latency_.quantile(0.50)), 1, "latency p50", "us");
  r.add("p90_us", us(latency_.quantile(0.90)), 1, "latency p90", "us");
  r.add("p99_us", us(latency_.quantile(0.99)), 1, "latency p99", "us");
  r.add("p999_us", us(latency_.quantile(0.999)), 1, "latency p99.9", "us");
  r.add("max_us", us(latency_.max()), 1, "latency max", "us");
  r.add("lost", lost);
  r.add("duplicated", seq_.duplicated());
  r.add("out_of_order", seq_.out_of_order());
  r.add("duration_s", window_s, 3, "duration (first publish -> last delivery)", "s");
  // Extras.
  r.add("window", o_.window);
  r.add("ack_p50_us", us(ack_latency_.quantile(0.50)), 1, "publish -> ack p50", "us");
  r.add("ack_p99_us", us(ack_latency_.quantile(0.99)), 1, "publish -> ack p99", "us");
  r.add("rate", o_.rate, "rate (0 = max)", "publishes/s");
  r.add("published", sent);
  r.add("acked", acked);
  r.add("publish_errors", pub_errors);
  r.add("subscriber_errors", sub_errors_);
  r.add("malformed", malformed);
  r.add("unexpected_closes", unexpected_closes_);
  r.add("pings_answered", pings_ + loop_.counters().pings_answered);
  r.add("connect_s", double(t_connected_ - t_start_) / 1e9, 3, "connect time", "s");
  r.add_bool("timed_out", timed_out_);
  if (seq_.approximate()) r.add_bool("anomaly_counts_approximate", true);
  if (o_.rate) {
    r.add("rate_window_stalls", window_full_, "rate: times the window held due publishes back");
    r.add("rate_max_lag_us", us(rate_max_lag_), 1, "rate: latest publish behind its slot", "us");
  }
  if (meas_s >= 0.2) {  // CPU times tick at 10 ms: shorter runs would be noise
    r.add("bench_cpu_pct", 100.0 * (cpu_self_1_ - cpu_self_0_) / meas_s, 1, "bench CPU (100 = 1 core)", "%");
    if (cpu_server_0_ >= 0 && cpu_server_1_ >= 0) {
      r.add("server_cpu_pct", 100.0 * (cpu_server_1_ - cpu_server_0_) / meas_s, 1, "server CPU (100 = 1 core)",
            "%");
    }
  }
  if (host_1_.total > host_0_.total && meas_s >= 0.2) {
    // All cores together, in percent of one core like the two above, so
    // host - bench - server is what other processes took.
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    r.add("host_cpu_pct", 100.0 * (host_1_.busy - host_0_.busy) / meas_s, 1, "host CPU, all processes",
          "% (all " + std::to_string(ncpu) + " cores busy = " + std::to_string(100 * ncpu) + ")");
  }
  if (meas_s >= 0.2 && sched_self_0_.wait_s >= 0 && sched_self_1_.wait_s >= 0) {
    // Runnable but not running: > 0 means the CPU, not the peer, held a
    // process back (other processes, or bench and server competing).
    r.add("bench_runq_wait_pct", 100.0 * (sched_self_1_.wait_s - sched_self_0_.wait_s) / meas_s, 1,
          "bench waiting for a CPU", "% of the run");
    if (sched_server_0_.wait_s >= 0 && sched_server_1_.wait_s >= 0) {
      r.add("server_runq_wait_pct", 100.0 * (sched_server_1_.wait_s - sched_server_0_.wait_s) / meas_s, 1,
            "server threads waiting for a CPU", "% of the run (summed over threads)");
    }
  }
  const auto& lc = loop_.counters();
  r.add("bench_reads", lc.reads);
  r.add("bench_bytes_in", lc.bytes_in);
  if (!first_error_.empty()) r.add("first_error", first_error_);

  std::printf("%s\n", r.json().c_str());
  std::printf("\nherald-bench fanout  %s\n%s", o_.url.c_str(), r.table().c_str());
  for (const auto& [why, n] : close_reasons_) {
    std::printf("  closed: %llu x %s\n", static_cast<unsigned long long>(n), why.c_str());
  }
  std::fflush(stdout);

  const bool ok = lost == 0 && seq_.duplicated() == 0 && seq_.out_of_order() == 0 && malformed == 0 && pub_errors == 0 &&
                  sub_errors_ == 0 && unexpected_closes_ == 0 && !timed_out_ && sent == o_.messages;
  if (!ok) std::fprintf(stderr, "herald-bench: FAILED (see lost/duplicated/out_of_order/errors above)\n");
  return ok ? kExitOk : kExitFailed;
}

}  // namespace

int run_fanout(const Options& o) {
  Endpoint ep;
  std::string err;
  if (!parse_ws_url(o.url, ep, err)) {
    std::fprintf(stderr, "herald-bench: --url: %s\n", err.c_str());
    return kExitUsage;
  }
  Fanout f(o, std::move(ep));
  return f.run();
}

}  // namespace herald::bench
