// herald-bench scenarios `connect` and `idle`: C connections, each
// subscribed to its own channel (bench:conn:N / bench:idle:N).
//
//   connect  opens the C connections as fast as possible, at most
//            --connect-concurrency (256) handshakes in flight (counted until
//            the connection is ready: WebSocket upgrade done, for NATS also
//            INFO read); each subscribes once ready. Reports handshake
//            completions per second, the time until all were open and until
//            all were subscribed, and the failures.
//   idle     reads the server's VmRSS (/proc/PID/status) before connecting,
//            opens and subscribes the C connections the same way, lets the
//            server settle (--settle, 2 s; pings are answered meanwhile),
//            reads VmRSS again with every connection still open, reports the
//            difference per connection, then closes them. With --events N
//            each connection, once subscribed, publishes N events (--size
//            bytes, the shape of every herald-bench publish) to its channel
//            and counts as set up when it received them back, so the figure
//            includes what the server keeps for a channel holding N events.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "client.hpp"
#include "histogram.hpp"
#include "scenario.hpp"
#include "ws_loop.hpp"

namespace herald::bench {
namespace {

// Seconds since the process started (/proc/PID/stat field 22 against
// /proc/uptime), -1 when unreadable.
double process_age_s(uint64_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  const size_t rp = line.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(line.substr(rp + 2));
  std::string field;
  unsigned long long start = 0;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) start = std::stoull(field);
  }
  std::ifstream u("/proc/uptime");
  double up = 0;
  if (!(u >> up) || start == 0) return -1;
  const long hz = sysconf(_SC_CLK_TCK);
  return up - double(start) / double(hz > 0 ? hz : 100);
}

struct Slot {
  Conn* conn = nullptr;
  bool ready = false, subscribed = false, failed = false;
  uint64_t events = 0;  // --events: received back
};

class Conns final : public ClientHandler {
 public:
  Conns(const Options& o, Endpoint ep, bool idle)
      : o_(o), idle_(idle), client_(o.target, std::move(ep), *this) {
    client_.set_connect_first(o.connect_first);
    client_.set_pipeline_connect(o.pipeline_connect);
    // idle: the first o.warmup connections are opened before the baseline
    // RSS is read, so one-time costs (code pages touched for the first time,
    // lazily built tables) do not count as per-connection memory.
    slots_.resize(o.connections + (idle ? o.warmup : 0));
    prefix_ = client_.wire_channel(idle ? "bench:idle:" : "bench:conn:");
    events_ = idle ? o.events_per_channel : 0;
    data_ = "{\"seq\":1,\"pub\":0,\"t\":0,\"pad\":\"";  // as history.cpp's
    const size_t overhead = data_.size() + 2;
    data_.append(o.size > overhead ? o.size - overhead : 0, 'x');
    data_ += "\"}";
  }
  int run();
  void connect_until(uint64_t target, uint64_t deadline);

  void on_ready(Conn& c, uint64_t now) override {
    Slot& s = slots_[c.user];
    if (s.ready) return;
    s.ready = true;
    --inflight_;
    ++opened_;
    t_last_open_ = now;
    handshake_.record(now - c.started_ns);
    if ((o_.connect_first || !o_.tokens.empty()) && !o_.pipeline_connect)
      auth_.record(now - c.upgraded_ns);
    client_.subscribe(c, prefix_ + std::to_string(c.user));
  }
  void on_subscribed(Conn& c, uint64_t recv_ns) override {
    Slot& s = slots_[c.user];
    if (s.subscribed) return;
    s.subscribed = true;
    if (events_ == 0) return set_up(recv_ns, c);
    const std::string wire = prefix_ + std::to_string(c.user);
    for (uint64_t i = 0; i < events_; ++i) client_.publish(c, i + 1, wire, "bench", data_);
  }
  void on_event(Conn& c, std::string_view, uint64_t recv_ns) override {
    Slot& s = slots_[c.user];
    if (!s.subscribed || s.events >= events_) {
      ++unexpected_events_;
      return;
    }
    if (++s.events == events_) set_up(recv_ns, c);
  }
  // Subscribed, and with --events its events came back.
  void set_up(uint64_t recv_ns, Conn& c) {
    ++subscribed_;
    t_last_sub_ = recv_ns;
    subscribe_.record(recv_ns - c.started_ns);
  }
  void on_ack(Conn&, uint64_t, uint64_t) override {}
  void on_error(Conn& c, std::string_view msg, bool, uint64_t, uint64_t) override {
    ++errors_;
    if (first_error_.empty())
      first_error_ = "connection " + std::to_string(c.user) + ": " + std::string(msg);
  }
  void on_closed(Conn& c, const CloseInfo& info) override {
    if (closing_) return;  // our own close at the end
    Slot& s = slots_[c.user];
    if (s.failed) return;
    s.failed = true;
    ++failures_;
    if (!s.ready) --inflight_;
    ++close_reasons_[std::string(
                         s.ready ? (s.subscribed ? "after subscribing: " : "before subscribed: ")
                                 : "during handshake: ") +
                     info.reason];
    if (first_error_.empty())
      first_error_ = "connection " + std::to_string(c.user) + ": " + info.reason;
  }

 private:
  int report();

  const Options& o_;
  const bool idle_;
  Client client_;
  std::vector<Slot> slots_;
  std::string prefix_;
  uint64_t events_ = 0;  // --events (idle only)
  std::string data_;     // what --events publishes
  uint64_t next_ = 0, inflight_ = 0, opened_ = 0, subscribed_ = 0, failures_ = 0, errors_ = 0;
  uint64_t unexpected_events_ = 0;
  bool closing_ = false, timed_out_ = false;
  uint64_t t_start_ = 0, t_last_open_ = 0, t_last_sub_ = 0, t_settled_ = 0;
  int64_t rss_before_ = -1, rss_after_ = -1;
  double server_age_s_ = -1;
  double cpu_0_ = 0, cpu_1_ = 0;
  uint64_t t_connected_ = 0;
  Histogram handshake_, subscribe_;  // from connect() to ready / to subscribed
  Histogram auth_;                   // with `connect` first: upgrade done -> `connected`
  double server_cpu_0_ = -1, server_cpu_1_ = -1;
  HostCpu host_0_, host_1_;
  std::map<std::string, uint64_t> close_reasons_;
  std::string first_error_;
};

int Conns::run() {
  if (idle_ && o_.server_pid) {
    server_age_s_ = process_age_s(o_.server_pid);
    if (vm_rss_bytes(o_.server_pid) < 0) {
      std::fprintf(stderr, "herald-bench: cannot read VmRSS of pid %llu\n",
                   static_cast<unsigned long long>(o_.server_pid));
      return kExitUsage;
    }
  }
  std::fprintf(stderr, "herald-bench %s (%s): %llu connections, %llu handshakes in flight -> %s\n",
               idle_ ? "idle" : "connect", target_name(o_.target),
               static_cast<unsigned long long>(slots_.size()),
               static_cast<unsigned long long>(o_.connect_concurrency), o_.url.c_str());
  Loop& loop = client_.loop();
  cpu_0_ = process_cpu_seconds(0);
  if (o_.server_pid) server_cpu_0_ = process_cpu_seconds(o_.server_pid);
  host_0_ = host_cpu();
  t_start_ = now_ns();
  const uint64_t deadline = t_start_ + o_.duration_limit_ns;
  const uint64_t warmup = idle_ ? o_.warmup : 0;
  if (warmup > 0) {
    connect_until(warmup, deadline);
    const uint64_t until = now_ns() + std::min<uint64_t>(o_.settle_ns, 500'000'000);
    for (uint64_t now = now_ns(); now < until; now = now_ns()) {
      loop.run_once(static_cast<int64_t>(until - now));
    }
  }
  if (idle_ && o_.server_pid) rss_before_ = vm_rss_bytes(o_.server_pid);
  connect_until(slots_.size(), deadline);
  cpu_1_ = process_cpu_seconds(0);
  if (o_.server_pid) server_cpu_1_ = process_cpu_seconds(o_.server_pid);
  host_1_ = host_cpu();
  t_connected_ = now_ns();
  if (idle_ && !timed_out_) {
    // Let the server settle with every connection open; keep answering.
    const uint64_t until = now_ns() + o_.settle_ns;
    for (uint64_t now = now_ns(); now < until; now = now_ns()) {
      loop.run_once(static_cast<int64_t>(until - now));
    }
    t_settled_ = now_ns();
    if (o_.server_pid) rss_after_ = vm_rss_bytes(o_.server_pid);
  }
  const int rc = report();
  closing_ = true;
  for (size_t i = 0; i < loop.conns().size(); ++i) {
    Conn& c = *loop.conns()[i];
    if (c.state != ConnState::closed) loop.close(c);
  }
  return rc;
}

// Opens connections (at most --connect-concurrency in flight) until
// `target` of them are subscribed or failed, or the deadline passes.
void Conns::connect_until(uint64_t target, uint64_t deadline) {
  Loop& loop = client_.loop();
  uint64_t last_progress = now_ns(), last_expiry = last_progress;
  while (subscribed_ + failures_ < target) {
    uint64_t now = now_ns();
    if (now >= deadline) {
      timed_out_ = true;
      break;
    }
    while (next_ < target && inflight_ < o_.connect_concurrency) {
      slots_[next_].conn = &client_.connect(next_, o_.token_for(next_));
      ++next_;
      ++inflight_;
    }
    loop.flush_pending();
    loop.run_once(static_cast<int64_t>(std::min<uint64_t>(deadline - now, 100'000'000)));
    now = now_ns();
    if (now - last_expiry >= 100'000'000) {
      // Connect + upgrade, then ready + subscribed, each within the limit.
      loop.expire_handshakes(now, o_.handshake_timeout_ns);
      for (uint64_t i = 0; i < next_; ++i) {
        Slot& s = slots_[i];
        if (!s.subscribed && !s.failed && s.conn->state == ConnState::open &&
            now - s.conn->started_ns > o_.handshake_timeout_ns) {
          loop.abort(*s.conn, s.ready ? "not subscribed within --handshake-timeout"
                                      : "not ready within --handshake-timeout");
        }
      }
      last_expiry = now;
    }
    if (o_.progress && now - last_progress >= 1'000'000'000) {
      std::fprintf(stderr, "[%6.1fs] open %llu subscribed %llu failed %llu of %llu\n",
                   double(now - t_start_) / 1e9, static_cast<unsigned long long>(opened_),
                   static_cast<unsigned long long>(subscribed_),
                   static_cast<unsigned long long>(failures_),
                   static_cast<unsigned long long>(slots_.size()));
      last_progress = now;
    }
  }
}

int Conns::report() {
  const uint64_t n = slots_.size();
  auto ms = [&](uint64_t t) { return t ? double(t - t_start_) / 1e6 : 0.0; };
  auto us = [](uint64_t ns) { return double(ns) / 1e3; };
  const double open_s = t_last_open_ ? double(t_last_open_ - t_start_) / 1e9 : 0.0;
  const auto& cc = client_.counters();
  const bool rss_ok = !idle_ || !o_.server_pid || (rss_before_ >= 0 && rss_after_ >= 0);
  const bool ok = failures_ == 0 && errors_ == 0 && subscribed_ == n && !timed_out_ &&
                  cc.protocol_errors == 0 && unexpected_events_ == 0 && rss_ok;

  Report r;
  r.add("scenario", std::string(idle_ ? "idle" : "connect"));
  r.add("target", std::string(target_name(o_.target)));
  r.add("connections", n);
  r.add("opened", opened_);
  r.add("subscribed", subscribed_);
  r.add("failures", failures_, "failures (connections lost or refused)");
  if (!idle_)
    r.add("connections_per_sec", open_s > 0 ? double(opened_) / open_s : 0.0, 0,
          "connections/s (ready)");
  r.add("all_open_ms", ms(t_last_open_), 1, opened_ == n ? "all open after" : "last opened after",
        "ms");
  r.add("all_subscribed_ms", ms(t_last_sub_), 1,
        subscribed_ == n ? "all subscribed after" : "last subscribed after", "ms");
  r.add("handshake_p50_us", us(handshake_.quantile(0.5)), 1, "connect -> ready p50", "us");
  r.add("handshake_p99_us", us(handshake_.quantile(0.99)), 1, "connect -> ready p99", "us");
  r.add("subscribe_p99_us", us(subscribe_.quantile(0.99)), 1, "connect -> subscribed p99", "us");
  r.add("concurrency", o_.connect_concurrency, "handshakes in flight (max)");
  r.add("auth", std::string(o_.auth_mode()), "first message (none, connect, token)");
  if (!o_.tokens.empty()) r.add("tokens", uint64_t(o_.tokens.size()), "distinct tokens (lines)");
  if (o_.pipeline_connect) r.add_bool("pipeline_connect", true, "subscribe sent with connect");
  if ((o_.connect_first || !o_.tokens.empty()) && !o_.pipeline_connect) {
    r.add("auth_p50_us", us(auth_.quantile(0.5)), 1, "upgrade -> connected p50", "us");
    r.add("auth_p99_us", us(auth_.quantile(0.99)), 1, "upgrade -> connected p99", "us");
  }
  const double conn_s = double(t_connected_ - t_start_) / 1e9;
  if (conn_s >= 0.2) {
    r.add("bench_cpu_pct", 100.0 * (cpu_1_ - cpu_0_) / conn_s, 1,
          "bench CPU while connecting (100 = 1 core)", "%");
  }
  if (server_cpu_0_ >= 0 && server_cpu_1_ >= 0) {
    // CPU ticks are 10 ms: over ~1 s of connecting, about 1% resolution.
    const double cpu = server_cpu_1_ - server_cpu_0_;
    r.add("server_cpu_s", cpu, 3, "server CPU while connecting", "s");
    if (n) {
      r.add("server_cpu_us_per_conn", 1e6 * cpu / double(n), 1, "server CPU per connection", "us");
    }
    if (conn_s >= 0.2)
      r.add("server_cpu_pct", 100.0 * cpu / conn_s, 1, "server CPU while connecting", "%");
  }
  if (conn_s >= 0.2 && host_1_.total > host_0_.total) {
    r.add("host_cpu_pct", 100.0 * (host_1_.busy - host_0_.busy) / conn_s, 1,
          "host CPU while connecting, all processes", "% (100 = 1 core)");
  }
  if (idle_) {
    if (rss_before_ >= 0 && rss_after_ >= 0) {
      const double total = double(rss_after_ - rss_before_);
      r.add("rss_before_bytes", uint64_t(rss_before_), "server VmRSS before", "bytes");
      r.add("rss_after_bytes", uint64_t(rss_after_), "server VmRSS with all open", "bytes");
      r.add("rss_total_bytes", total, 0, "server VmRSS growth", "bytes");
      const uint64_t measured = n - o_.warmup;  // connections opened after the baseline
      r.add("warmup_connections", o_.warmup, "connections open before the baseline");
      r.add("rss_per_connection_bytes", measured ? total / double(measured) : 0.0, 0,
            "server VmRSS per connection", "bytes");
      r.add("server_age_s", server_age_s_, 1, "server running for (before connecting)", "s");
      if (n && total / double(n) < 256) {
        std::fprintf(
            stderr,
            "herald-bench: warning: under 256 bytes of RSS per connection: the server probably "
            "reused "
            "memory freed by earlier connections; measure idle on a freshly started server\n");
      }
    } else {
      r.add_bool("rss_measured", false, "server VmRSS measured (needs --server-pid)");
    }
    r.add("settle_ms", double(o_.settle_ns) / 1e6, 0, "settle time", "ms");
    r.add("events_per_channel", events_, "events each channel holds");
  }
  r.add("errors", errors_, "error replies");
  r.add("protocol_errors", cc.protocol_errors);
  r.add("unexpected_events", unexpected_events_);
  r.add("pings_answered", cc.pings_answered + client_.loop().counters().pings_answered);
  r.add_bool("timed_out", timed_out_);
  if (!first_error_.empty()) r.add("first_error", first_error_);
  r.add_bool("ok", ok, "passed");

  std::printf("%s\n", r.json().c_str());
  std::printf("\nherald-bench %s  %s  (target %s)\n%s", idle_ ? "idle" : "connect", o_.url.c_str(),
              target_name(o_.target), r.table().c_str());
  for (const auto& [why, k] : close_reasons_) {
    std::printf("  closed: %llu x %s\n", static_cast<unsigned long long>(k), why.c_str());
  }
  std::fflush(stdout);
  if (!ok) std::fprintf(stderr, "herald-bench: FAILED (see failures/errors above)\n");
  return ok ? kExitOk : kExitFailed;
}

int run_conns(const Options& o, bool idle) {
  Endpoint ep;
  std::string err;
  if (!parse_ws_url(o.url, ep, err)) {
    std::fprintf(stderr, "herald-bench: --url: %s\n", err.c_str());
    return kExitUsage;
  }
  Conns s(o, std::move(ep), idle);
  return s.run();
}

}  // namespace

int run_connect(const Options& o) {
  return run_conns(o, false);
}
int run_idle(const Options& o) {
  return run_conns(o, true);
}

}  // namespace herald::bench
