// herald-bench scenario `soak` (Herald protocol only): does the server give
// back what connections take, over a long run of connections coming and
// going (issue 17 item 4)?
//
// For --duration, --connections members are kept open: each connects,
// subscribes to <--channel>:<i mod --channels> and, while subscribed and
// without a publish in flight, takes part in --rate publishes/s (to its own
// channel). --churn-rate members a second are dropped, in turn: with a TCP
// RST (SO_LINGER 0, like a crashed client), with a FIN but no close frame
// (like a killed process), and with a close frame (a polite client); each
// dropped member reconnects at once. Every second the server's VmRSS,
// open fds (/proc/PID/status, /proc/PID/fd) and /metrics (open WebSocket
// connections = opened - closed, subscriptions, channels) are sampled.
// At the end every member is dropped with an RST and the bench waits (up to
// 10 s) for the server to report no open connection, then samples again.
//
// The verdict (what "no growth after warm-up" means, bench/README.md):
//   fds    after the end, with the soak's connections gone, the server holds
//          exactly the fds it held before the first one (an fd leaked per
//          connection shows at once; nothing else opens fds). "Before" is
//          taken once the server counts no open connection (up to 10 s: an
//          earlier client's may still be closing);
//   rss    the median RSS of the last --rss-window seconds is at most the
//          median of the --rss-window seconds after --settle (the warm-up) plus
//          --rss-margin percent: the same load on the same set of
//          connections should hold the same memory once the allocator's
//          arenas have grown to it; a leak grows with the connections opened;
//   errors no `error` reply, no server-initiated close, every reconnect
//          subscribed, events delivered.
// Needs --server-pid (the server on this machine) and --url.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "client.hpp"
#include "http_get.hpp"
#include "scenario.hpp"
#include "ws_loop.hpp"

namespace herald::bench {
namespace {

// Open fds of a process (entries of /proc/PID/fd), -1 when unreadable.
int64_t open_fds(uint64_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int64_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

struct Sample {
  double t = 0;  // seconds since the start
  int64_t rss = -1, fds = -1;
  double server_conns = -1, subscriptions = -1, channels = -1;
  uint64_t members_subscribed = 0, drops = 0, published = 0, events = 0;
};

enum class MState : uint8_t { idle, connecting, subscribed };

struct Member {
  Conn* conn = nullptr;
  MState state = MState::idle;
  bool publishing = false;  // a publish without its ack yet
  bool dropping = false;    // closed by us: not a failure
};

int64_t median(std::vector<int64_t> v) {
  if (v.empty()) return -1;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

class Soak final : public ClientHandler {
 public:
  Soak(const Options& o, Endpoint ep) : o_(o), ep_(ep), client_(Target::herald, ep, *this) {
    members_.resize(o.connections);
    prefix_ = o.channel + ":";
    data_ = "{\"seq\":1,\"pub\":0,\"t\":0,\"pad\":\"";
    const size_t overhead = data_.size() + 2;
    data_.append(o.size > overhead ? o.size - overhead : 0, 'x');
    data_ += "\"}";
  }
  int run();

  void on_ready(Conn& c, uint64_t) override {
    client_.subscribe(c, prefix_ + std::to_string(c.user % o_.channels));
  }
  void on_subscribed(Conn& c, uint64_t) override {
    Member& m = members_[c.user];
    if (m.state == MState::connecting) {
      m.state = MState::subscribed;
      --connecting_;
      ++subscribed_;
    }
  }
  void on_event(Conn&, std::string_view, uint64_t) override { ++events_; }
  void on_ack(Conn& c, uint64_t, uint64_t) override {
    members_[c.user].publishing = false;
    ++acked_;
  }
  void on_error(Conn& c, std::string_view msg, bool, uint64_t, uint64_t) override {
    ++errors_;
    if (first_error_.empty())
      first_error_ = "member " + std::to_string(c.user) + ": " + std::string(msg);
  }
  void on_closed(Conn& c, const CloseInfo& info) override {
    Member& m = members_[c.user];
    if (m.state == MState::connecting) --connecting_;
    if (m.state == MState::subscribed) --subscribed_;
    if (!m.dropping && !ending_) {
      ++failures_;
      if (first_error_.empty())
        first_error_ = "member " + std::to_string(c.user) + " lost: " + info.reason;
    }
    m = Member{};
    client_.loop().recycle(c);
  }

 private:
  void reconnect_idle();
  void publish_some(uint64_t count);
  void drop_some(uint64_t count);
  Sample sample(double t);
  int report(const std::vector<Sample>& samples, const Sample& before, const Sample& end);

  const Options& o_;
  Endpoint ep_;
  Client client_;
  std::vector<Member> members_;
  std::string prefix_, data_;
  uint64_t connecting_ = 0, subscribed_ = 0;
  uint64_t next_pub_ = 0, next_drop_ = 0, drop_kind_ = 0, pub_id_ = 0;
  uint64_t published_ = 0, acked_ = 0, events_ = 0, drops_ = 0, reconnects_ = 0;
  uint64_t errors_ = 0, failures_ = 0;
  bool ending_ = false;
  std::string first_error_;
};

// Every member without a connection connects again (handshakes in flight
// capped by --connect-concurrency).
void Soak::reconnect_idle() {
  for (uint64_t i = 0; i < members_.size() && connecting_ < o_.connect_concurrency; ++i) {
    Member& m = members_[i];
    if (m.state != MState::idle) continue;
    m.conn = &client_.connect(i);
    m.state = MState::connecting;
    ++connecting_;
    ++reconnects_;
  }
}

// `count` publishes from the next subscribed members without one in flight.
void Soak::publish_some(uint64_t count) {
  for (uint64_t tries = 0; count > 0 && tries < members_.size(); ++tries) {
    const uint64_t i = next_pub_++ % members_.size();
    Member& m = members_[i];
    if (m.state != MState::subscribed || m.publishing) continue;
    m.publishing = true;
    client_.publish(*m.conn, ++pub_id_, prefix_ + std::to_string(i % o_.channels), "soak", data_);
    ++published_;
    --count;
  }
}

// Drops `count` subscribed members, in turn by RST, FIN without a close
// frame, and close frame.
void Soak::drop_some(uint64_t count) {
  Loop& loop = client_.loop();
  for (uint64_t tries = 0; count > 0 && tries < members_.size(); ++tries) {
    // A stride coprime with most sizes spreads drops over the channels.
    next_drop_ = (next_drop_ + 7919) % members_.size();
    Member& m = members_[next_drop_];
    if (m.state != MState::subscribed) continue;
    m.dropping = true;
    ++drops_;
    --count;
    switch (drop_kind_++ % 3) {
      case 0:
        loop.reset(*m.conn, "dropped (RST)");
        break;
      case 1:
        loop.abort(*m.conn, "dropped (FIN, no close frame)");
        break;
      default:
        loop.close(*m.conn, 1000);
        break;
    }
  }
}

Sample Soak::sample(double t) {
  Sample s;
  s.t = t;
  s.rss = vm_rss_bytes(o_.server_pid);
  s.fds = open_fds(o_.server_pid);
  const HttpReply m = http_get(ep_, "/metrics", o_.api_key, 2000);
  if (m.status == 200) {
    const double opened = prometheus_value(m.body, "herald_ws_connections_opened_total");
    const double closed = prometheus_value(m.body, "herald_ws_connections_closed_total");
    if (opened >= 0 && closed >= 0) s.server_conns = opened - closed;
    s.subscriptions = prometheus_value(m.body, "herald_subscriptions");
    s.channels = prometheus_value(m.body, "herald_channels");
  }
  s.members_subscribed = subscribed_;
  s.drops = drops_;
  s.published = published_;
  s.events = events_;
  return s;
}

int Soak::run() {
  if (!o_.server_pid || open_fds(o_.server_pid) < 0 || vm_rss_bytes(o_.server_pid) < 0) {
    std::fprintf(stderr,
                 "herald-bench soak: needs --server-pid of a server it can read "
                 "(/proc/PID/fd, /proc/PID/status)\n");
    return kExitUsage;
  }
  std::fprintf(
      stderr,
      "herald-bench soak: %llu members on %llu channels, %llu publishes/s, %llu drops/s, "
      "%.0f s -> %s (server pid %llu)\n",
      static_cast<unsigned long long>(o_.connections), static_cast<unsigned long long>(o_.channels),
      static_cast<unsigned long long>(o_.rate), static_cast<unsigned long long>(o_.churn_rate),
      double(o_.duration_ns) / 1e9, o_.url.c_str(), static_cast<unsigned long long>(o_.server_pid));
  // The baseline: connections of an earlier client (a previous bench run)
  // may still be closing; wait (up to 10 s) until the server counts none,
  // else take it with the ones that stay.
  Sample before = sample(0);
  for (const uint64_t until = now_ns() + 10'000'000'000ull;
       before.server_conns != 0 && now_ns() < until;) {
    ::usleep(200'000);
    before = sample(0);
  }
  const int64_t fds_before = before.fds;
  Loop& loop = client_.loop();
  std::vector<Sample> samples;
  const uint64_t t0 = now_ns(), end = t0 + o_.duration_ns;
  uint64_t next_sample = t0 + 1'000'000'000, last_tick = t0, last_expiry = t0;
  double pub_credit = 0, drop_credit = 0;
  for (uint64_t now = t0; now < end; now = now_ns()) {
    reconnect_idle();
    // Publishes and drops at their rates, in 10 ms steps.
    if (now - last_tick >= 10'000'000) {
      const double dt = double(now - last_tick) / 1e9;
      last_tick = now;
      pub_credit = std::min(pub_credit + dt * double(o_.rate), double(o_.rate) + 1);
      drop_credit = std::min(drop_credit + dt * double(o_.churn_rate), double(o_.churn_rate) + 1);
      publish_some(static_cast<uint64_t>(pub_credit));
      pub_credit -= static_cast<uint64_t>(pub_credit);
      drop_some(static_cast<uint64_t>(drop_credit));
      drop_credit -= static_cast<uint64_t>(drop_credit);
    }
    loop.flush_pending();
    loop.run_once(5'000'000);
    now = now_ns();
    if (now - last_expiry >= 100'000'000) {
      loop.expire_handshakes(now, o_.handshake_timeout_ns);
      last_expiry = now;
    }
    if (now >= next_sample) {
      samples.push_back(sample(double(now - t0) / 1e9));
      next_sample += 1'000'000'000;
      const Sample& s = samples.back();
      if (o_.progress) {
        std::fprintf(stderr,
                     "[%6.1fs] rss %.1f MiB fds %lld server conns %.0f subscribed %llu drops %llu "
                     "published %llu events %llu\n",
                     s.t, double(s.rss) / 1048576.0, static_cast<long long>(s.fds), s.server_conns,
                     static_cast<unsigned long long>(s.members_subscribed),
                     static_cast<unsigned long long>(s.drops),
                     static_cast<unsigned long long>(s.published),
                     static_cast<unsigned long long>(s.events));
      }
    }
  }
  // The end: every member dropped with an RST, then wait for the server to
  // see them all gone.
  ending_ = true;
  for (Member& m : members_) {
    if (m.state != MState::idle) loop.reset(*m.conn, "end of the soak");
  }
  loop.run_once(0);
  Sample last;
  const uint64_t wait_until = now_ns() + 10'000'000'000ull;
  for (;;) {
    ::usleep(200'000);
    last = sample(double(now_ns() - t0) / 1e9);
    if ((last.server_conns == before.server_conns && last.fds == fds_before) ||
        now_ns() > wait_until)
      break;
  }
  return report(samples, before, last);
}

int Soak::report(const std::vector<Sample>& samples, const Sample& before, const Sample& end) {
  const int64_t fds_before = before.fds;
  // The windows: --rss-window seconds after --settle, and the last --rss-window.
  const double warm = double(o_.settle_ns) / 1e9, win = double(o_.window_ns) / 1e9;
  const double last_t = samples.empty() ? 0 : samples.back().t;
  std::vector<int64_t> rss_warm, rss_last, fds_warm, fds_last;
  for (const Sample& s : samples) {
    if (s.t >= warm && s.t < warm + win) {
      rss_warm.push_back(s.rss);
      fds_warm.push_back(s.fds);
    }
    if (s.t > last_t - win && s.t >= warm + win) {
      rss_last.push_back(s.rss);
      fds_last.push_back(s.fds);
    }
  }
  const int64_t rss_w = median(rss_warm), rss_l = median(rss_last);
  const bool windows_ok = !rss_warm.empty() && !rss_last.empty();
  const double rss_limit = double(rss_w) * (1.0 + double(o_.rss_margin_pct) / 100.0);
  const bool rss_ok = windows_ok && double(rss_l) <= rss_limit;
  const bool fds_ok = end.fds == fds_before && end.server_conns == before.server_conns;
  const bool traffic_ok = errors_ == 0 && failures_ == 0 && events_ > 0 && acked_ > 0 &&
                          client_.counters().protocol_errors == 0;
  const bool ok = rss_ok && fds_ok && traffic_ok;

  Report r;
  r.add("scenario", std::string("soak"));
  r.add("seconds", last_t, 1, "ran for", "s");
  r.add("members", o_.connections, "connections kept open");
  r.add("connections_opened", reconnects_, "connections opened in all");
  r.add("drops", drops_, "connections dropped (RST, FIN, close frame in turn)");
  r.add("published", published_, "publishes sent");
  r.add("acked", acked_, "publishes acknowledged");
  r.add("events", events_, "events received");
  r.add("errors", errors_, "error replies");
  r.add("failures", failures_, "connections lost or refused (not dropped by us)");
  r.add("fds_before", uint64_t(std::max<int64_t>(fds_before, 0)), "server fds before");
  r.add("server_conns_before", before.server_conns, 0, "server's open connections before");
  r.add("fds_warm_median", double(median(fds_warm)), 0, "server fds, warm-up window median");
  r.add("fds_last_median", double(median(fds_last)), 0, "server fds, last window median");
  r.add("fds_end", double(end.fds), 0, "server fds after all dropped");
  r.add("server_conns_end", end.server_conns, 0, "server's open connections after all dropped");
  r.add("rss_warm_median_mib", double(rss_w) / 1048576.0, 1, "server RSS, warm-up window median",
        "MiB");
  r.add("rss_last_median_mib", double(rss_l) / 1048576.0, 1, "server RSS, last window median",
        "MiB");
  r.add("rss_limit_mib", rss_limit / 1048576.0, 1, "allowed (warm-up + --rss-margin)", "MiB");
  r.add("rss_end_mib", double(end.rss) / 1048576.0, 1, "server RSS after all dropped", "MiB");
  r.add_bool("fds_ok", fds_ok, "fds back to before, no connection left");
  r.add_bool("rss_ok", rss_ok, "no RSS growth after warm-up");
  r.add_bool("traffic_ok", traffic_ok, "no error, no lost connection, events flowed");
  r.add_bool("ok", ok, "verdict");
  if (!first_error_.empty()) r.add("first_error", first_error_, "first error");
  std::printf("%s\n%s", r.json().c_str(), r.table().c_str());
  std::printf(
      "samples (t s, rss MiB, fds, server conns, subscriptions, subscribed, drops, "
      "published, events):\n");
  for (const Sample& s : samples) {
    std::printf("  %6.1f %8.1f %6lld %7.0f %7.0f %7llu %8llu %9llu %10llu\n", s.t,
                double(s.rss) / 1048576.0, static_cast<long long>(s.fds), s.server_conns,
                s.subscriptions, static_cast<unsigned long long>(s.members_subscribed),
                static_cast<unsigned long long>(s.drops),
                static_cast<unsigned long long>(s.published),
                static_cast<unsigned long long>(s.events));
  }
  std::printf("  end    %8.1f %6lld %7.0f %7.0f\n", double(end.rss) / 1048576.0,
              static_cast<long long>(end.fds), end.server_conns, end.subscriptions);
  std::printf("verdict: %s\n", ok ? "ok (no growth after warm-up)" : "FAILED");
  return ok ? kExitOk : kExitFailed;
}

}  // namespace

int run_soak(const Options& o) {
  if (o.target != Target::herald) {
    std::fprintf(stderr, "herald-bench soak: Herald target only\n");
    return kExitUsage;
  }
  Endpoint ep;
  std::string err;
  if (!parse_ws_url(o.url, ep, err)) {
    std::fprintf(stderr, "herald-bench: --url: %s\n", err.c_str());
    return kExitUsage;
  }
  if (o.settle_ns + 2 * o.window_ns > o.duration_ns) {
    std::fprintf(stderr,
                 "herald-bench soak: --duration must cover --settle and two --rss-window\n");
    return kExitUsage;
  }
  Soak s(o, ep);
  return s.run();
}

}  // namespace herald::bench
