// herald-bench scenario `history` (Herald protocol only): latency of reading
// the newest events of a channel with the WebSocket `history` request.
//
// Phases: one connection publishes --stored E events of --size bytes to a
// fresh channel (<--channel>:<start time>, so that repeated runs against one
// server do not share history), windowed by acks -> --connections C
// connections each send `history` with `limit` = --limit L, one request
// outstanding per connection, until --requests R replies arrived in total ->
// report. Each reply must carry offset E and exactly min(L, E) events (an
// engine that keeps fewer than E events, history.size, fails the check);
// latency is request send -> reply receive.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "client.hpp"
#include "histogram.hpp"
#include "scan.hpp"
#include "scenario.hpp"
#include "ws_loop.hpp"

namespace herald::bench {
namespace {

constexpr uint64_t kSeeder = ~uint64_t{0};

// How many events a history reply holds: each is an object starting with
// its type (the reply itself is {"type":"history",...}).
uint64_t count_events(std::string_view msg) {
  constexpr std::string_view k = "{\"type\":\"event\"";
  uint64_t n = 0;
  for (size_t at = msg.find(k); at != std::string_view::npos; at = msg.find(k, at + k.size())) ++n;
  return n;
}

class History final : public ClientHandler {
 public:
  History(const Options& o, Endpoint ep) : o_(o), client_(o.target, std::move(ep), *this) {
    channel_ = client_.wire_channel(o.channel + ":" + std::to_string(now_ns()));
    // The shape of every herald-bench publish (bench/schema/events.json, so
    // that a server validating the bench namespace accepts it), of --size
    // bytes in total (at least the fixed part).
    data_ = "{\"seq\":1,\"pub\":0,\"t\":0,\"pad\":\"";
    const size_t overhead = data_.size() + 2;
    data_.append(o.size > overhead ? o.size - overhead : 0, 'x');
    data_ += "\"}";
    conns_.resize(o.connections);
  }

  int run();

  void on_ready(Conn& c, uint64_t) override {
    if (c.user == kSeeder)
      seeder_ready_ = true;
    else
      ++ready_;
  }
  void on_subscribed(Conn&, uint64_t) override {}
  void on_event(Conn&, std::string_view, uint64_t) override { ++unexpected_; }
  void on_ack(Conn&, uint64_t, uint64_t) override {
    ++acked_;
    --inflight_;
  }
  void on_error(Conn& c, std::string_view msg, bool, uint64_t, uint64_t) override {
    ++errors_;
    if (c.user == kSeeder) --inflight_;
    if (first_error_.empty()) first_error_ = std::string(msg.substr(0, 300));
  }
  void on_closed(Conn&, const CloseInfo& info) override {
    if (closing_) return;
    ++closed_;
    if (first_error_.empty()) first_error_ = "connection closed: " + info.reason;
  }
  void on_history(Conn& c, std::string_view msg, uint64_t recv_ns) override {
    Slot& s = conns_[c.user];
    latency_.record(recv_ns - s.sent_ns);
    s.busy = false;
    ++replies_;
    const char* p = msg.data();
    uint64_t offset = 0;
    const uint64_t events = count_events(msg);
    if (!find_uint(p, msg.data() + msg.size(), "\"offset\"", offset) || offset != o_.stored ||
        events != std::min(o_.limit, o_.stored)) {
      ++wrong_;
      if (first_error_.empty())
        first_error_ = "history reply with offset " + std::to_string(offset) + " and " +
                       std::to_string(events) + " events";
    }
  }

 private:
  struct Slot {
    Conn* conn = nullptr;
    bool busy = false;
    uint64_t sent_ns = 0;
  };
  bool seed(uint64_t deadline);
  bool connect_all(uint64_t deadline);
  void read(uint64_t deadline);
  int report();

  const Options& o_;
  Client client_;
  std::string channel_, data_;
  std::vector<Slot> conns_;
  bool seeder_ready_ = false, closing_ = false, timed_out_ = false;
  uint64_t ready_ = 0, acked_ = 0, inflight_ = 0, errors_ = 0, closed_ = 0, unexpected_ = 0;
  uint64_t sent_ = 0, replies_ = 0, wrong_ = 0;
  uint64_t t_read_start_ = 0, t_read_end_ = 0;
  double cpu_0_ = 0, cpu_1_ = 0, server_cpu_0_ = -1, server_cpu_1_ = -1;
  Histogram latency_;
  std::string first_error_;
};

bool History::seed(uint64_t deadline) {
  Loop& loop = client_.loop();
  Conn& c = client_.connect(kSeeder);
  while (!seeder_ready_) {
    if (now_ns() >= deadline || closed_ || c.state == ConnState::closed) return false;
    loop.run_once(100'000'000);
  }
  uint64_t sent = 0;
  while (acked_ < o_.stored) {
    if (now_ns() >= deadline) return false;
    if (errors_ || closed_) return false;
    while (sent < o_.stored && inflight_ < o_.window) {
      client_.publish(c, ++sent, channel_, "bench", data_);
      ++inflight_;
    }
    loop.flush_pending();
    loop.run_once(100'000'000);
  }
  return true;
}

bool History::connect_all(uint64_t deadline) {
  Loop& loop = client_.loop();
  for (uint64_t i = 0; i < conns_.size(); ++i) conns_[i].conn = &client_.connect(i);
  while (ready_ < conns_.size()) {
    if (now_ns() >= deadline || closed_) return false;
    loop.run_once(100'000'000);
  }
  return true;
}

void History::read(uint64_t deadline) {
  Loop& loop = client_.loop();
  t_read_start_ = now_ns();
  uint64_t last_progress = t_read_start_;
  while (replies_ < o_.requests) {
    for (uint64_t i = 0; i < conns_.size() && sent_ < o_.requests; ++i) {
      Slot& s = conns_[i];
      if (s.busy || s.conn->state != ConnState::open) continue;
      s.busy = true;
      s.sent_ns = now_ns();
      client_.history(*s.conn, ++sent_, channel_, o_.limit);
    }
    loop.flush_pending();
    const uint64_t now = now_ns();
    if (now >= deadline || closed_ || errors_) {
      timed_out_ = now >= deadline;
      break;
    }
    loop.run_once(static_cast<int64_t>(std::min<uint64_t>(deadline - now, 100'000'000)));
    if (o_.progress && now - last_progress >= 1'000'000'000) {
      std::fprintf(stderr, "[%6.1fs] history replies %llu of %llu\n",
                   double(now - t_read_start_) / 1e9, static_cast<unsigned long long>(replies_),
                   static_cast<unsigned long long>(o_.requests));
      last_progress = now;
    }
  }
  t_read_end_ = now_ns();
}

int History::run() {
  std::fprintf(stderr,
               "herald-bench history: %llu events of %llu B on %s, then %llu requests of the "
               "newest %llu over %llu connections -> %s\n",
               static_cast<unsigned long long>(o_.stored), static_cast<unsigned long long>(o_.size),
               channel_.c_str(), static_cast<unsigned long long>(o_.requests),
               static_cast<unsigned long long>(o_.limit),
               static_cast<unsigned long long>(o_.connections), o_.url.c_str());
  const uint64_t deadline = now_ns() + o_.duration_limit_ns;
  if (!seed(deadline)) {
    std::fprintf(stderr, "herald-bench: could not store %llu events (%llu acked): %s\n",
                 static_cast<unsigned long long>(o_.stored),
                 static_cast<unsigned long long>(acked_),
                 first_error_.empty() ? "timed out" : first_error_.c_str());
    return kExitUsage;
  }
  if (!connect_all(deadline)) {
    std::fprintf(stderr, "herald-bench: could not open %llu connections: %s\n",
                 static_cast<unsigned long long>(o_.connections),
                 first_error_.empty() ? "timed out" : first_error_.c_str());
    return kExitUsage;
  }
  cpu_0_ = process_cpu_seconds(0);
  if (o_.server_pid) server_cpu_0_ = process_cpu_seconds(o_.server_pid);
  read(deadline);
  cpu_1_ = process_cpu_seconds(0);
  if (o_.server_pid) server_cpu_1_ = process_cpu_seconds(o_.server_pid);
  const int rc = report();
  closing_ = true;
  client_.loop().close_all_now();
  return rc;
}

int History::report() {
  const double secs = double(t_read_end_ - t_read_start_) / 1e9;
  auto us = [&](double q) { return double(latency_.quantile(q)) / 1e3; };
  const auto& cc = client_.counters();
  const bool ok = replies_ == o_.requests && wrong_ == 0 && errors_ == 0 && closed_ == 0 &&
                  unexpected_ == 0 && cc.protocol_errors == 0 && !timed_out_;
  Report r;
  r.add("scenario", std::string("history"));
  r.add("target", std::string(target_name(o_.target)));
  r.add("stored", o_.stored, "events stored in the channel");
  r.add("size", o_.size, "bytes of each event's data", "B");
  r.add("limit", o_.limit, "events asked for per request");
  r.add("connections", o_.connections, "connections (one request outstanding each)");
  r.add("requests", replies_, "replies");
  r.add("requests_per_sec", secs > 0 ? double(replies_) / secs : 0.0, 0, "requests/s");
  r.add("p50_us", us(0.5), 1, "latency p50", "us");
  r.add("p90_us", us(0.9), 1, "latency p90", "us");
  r.add("p99_us", us(0.99), 1, "latency p99", "us");
  r.add("p999_us", us(0.999), 1, "latency p99.9", "us");
  r.add("max_us", double(latency_.max()) / 1e3, 1, "latency max", "us");
  r.add("duration_s", secs, 2, "reading took", "s");
  if (secs >= 0.2) {
    r.add("bench_cpu_pct", 100.0 * (cpu_1_ - cpu_0_) / secs, 1, "bench CPU (100 = 1 core)", "%");
    if (server_cpu_0_ >= 0 && server_cpu_1_ >= 0)
      r.add("server_cpu_pct", 100.0 * (server_cpu_1_ - server_cpu_0_) / secs, 1,
            "server CPU (100 = 1 core)", "%");
  }
  r.add("wrong", wrong_, "replies with the wrong offset or event count");
  r.add("errors", errors_, "error replies");
  r.add("protocol_errors", cc.protocol_errors);
  r.add_bool("timed_out", timed_out_);
  if (!first_error_.empty()) r.add("first_error", first_error_);
  r.add_bool("ok", ok, "passed");
  std::printf("%s\n", r.json().c_str());
  std::printf("\nherald-bench history  %s  (target %s)\n%s", o_.url.c_str(), target_name(o_.target),
              r.table().c_str());
  std::fflush(stdout);
  if (!ok) std::fprintf(stderr, "herald-bench: FAILED (see wrong/errors above)\n");
  return ok ? kExitOk : kExitFailed;
}

}  // namespace

int run_history(const Options& o) {
  if (o.target != Target::herald) {
    std::fprintf(stderr, "herald-bench: history needs --target herald\n");
    return kExitUsage;
  }
  Endpoint ep;
  std::string err;
  if (!parse_ws_url(o.url, ep, err)) {
    std::fprintf(stderr, "herald-bench: --url: %s\n", err.c_str());
    return kExitUsage;
  }
  History h(o, std::move(ep));
  return h.run();
}

}  // namespace herald::bench
