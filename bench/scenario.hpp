// herald-bench: what every scenario shares: the command-line options, the
// scenario registry, CPU sampling and the result report (one JSON line, then
// a readable table).
//
// A scenario is a function from Options to an exit code; it drives its own
// Loop (ws_loop.hpp) and fills a Report. Adding one = writing
// `int run_<name>(const Options&)` in its own .cpp and listing it in
// kScenarios (herald_bench.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "client.hpp"

namespace herald::bench {

// Exit codes of herald-bench.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // lost, duplicated, out of order, errors, timed out
inline constexpr int kExitUsage = 2;   // bad arguments or setup failure (could not connect)

struct Options {
  std::string scenario;
  std::string url = "ws://127.0.0.1:8080/ws";
  // fanout, rooms: subscriber i connects to subscriber_urls[i % n] (several
  // nodes of one cluster); empty: every connection goes to `url`.
  std::vector<std::string> subscriber_urls;
  Target target = Target::herald;
  std::string channel = "bench:fanout";
  uint64_t subscribers = 1000;
  uint64_t publishers = 1;
  uint64_t messages = 200000;  // in total, split evenly between publishers
  uint64_t size = 100;         // bytes of each publish's `data` object
  uint64_t window = 64;        // unacknowledged publishes per publisher (churn 1024)
  uint64_t rate = 0;           // publishes per second over all publishers, 0 = max
  uint64_t duration_ns = 0;    // with rate: messages = rate x duration (rooms default 5 s)
  bool timed_publish = false;  // max rate (--rate 0) with --duration: publish for duration_ns,
                               // `messages` is then only a cap
  uint64_t rooms = 1000;       // rooms: channels bench:room:0..K-1
  uint64_t subscribers_per_room = 10;  // rooms
  bool spread_random = false;          // rooms: pseudo-random room per publish (else round-robin)
  uint64_t connections = 10000;        // connect, idle, history
  uint64_t requests = 20000;           // history: requests in total
  uint64_t stored = 1000;              // history: events stored before reading
  uint64_t limit = 100;                // history: events asked for per request
  uint64_t settle_ns = 2'000'000'000;  // idle: wait before reading the server's RSS again
  uint64_t warmup = 100;               // idle: connections opened before the baseline RSS
  uint64_t events_per_channel = 0;     // idle: events each connection publishes to its channel
  uint64_t duration_limit_ns = 60'000'000'000;  // global deadline for the whole run
  uint64_t drain_timeout_ns = 5'000'000'000;    // wait for deliveries after the last ack
  uint64_t connect_concurrency = 200;           // connects (up to "subscribed") in flight
  uint64_t handshake_timeout_ns = 10'000'000'000;
  uint64_t server_pid = 0;  // when set, the server's CPU use is sampled from /proc
  bool progress = true;     // one progress line a second on stderr
  bool smoke = false;
  // connect, idle, fanout, rooms (Herald target): each connection first
  // sends `connect` and waits for `connected`, with token i % N of
  // --token-file (N lines) or, with only --connect-first, without a token.
  std::string token_file;
  std::vector<std::string> tokens;
  bool connect_first = false;
  bool pipeline_connect = false;  // do not wait for `connected` before subscribing
  // fanout, rooms (Herald target): every publish carries a unique
  // `idempotency_key` (<run prefix>-<publisher>-<id>); a `replayed` ack fails the run.
  bool idempotency_keys = false;
  // churn: --connections members on --channels channels <--channel>:<i>,
  // the first --churners of them (un)subscribing at --churn-rate ops/s while
  // --rate publishes/s go round-robin to the channels.
  uint64_t channels = 100;
  uint64_t churners = 1000;
  uint64_t churn_rate = 2000;
  std::string presence;         // on, off (--url: how the server is set), both (--herald)
  bool join_leave = true;       // with presence on: join_leave too
  std::string herald;           // start this herald binary per run (temporary config)
  uint64_t server_workers = 2;  // --workers of the started herald
  std::string api_key;          // for the HTTP API of a --url server with [[api.keys]]
  uint64_t rounds = 1;          // churn: runs of each mode, alternating order
  // soak: the verdict's windows (--window seconds after --settle, and the
  // last --window) and how much more RSS the last may hold (percent).
  uint64_t window_ns = 20'000'000'000;
  uint64_t rss_margin_pct = 10;

  // The token of connection i, or null.
  const std::string* token_for(uint64_t i) const {
    return tokens.empty() ? nullptr : &tokens[i % tokens.size()];
  }
  // How connections identify: "none" (no `connect`), "connect" (`connect`
  // without a token), "token".
  const char* auth_mode() const {
    return !tokens.empty() ? "token" : connect_first ? "connect" : "none";
  }
};

// CPU time of a process (user + system), from /proc/<pid>/stat; pid 0 is
// this process. Returns -1 when it cannot be read.
double process_cpu_seconds(uint64_t pid);

// Busy and total CPU time of the whole machine (all cores), from /proc/stat.
struct HostCpu {
  double busy = 0, total = 0;
};
HostCpu host_cpu();

// VmRSS of a process in bytes (/proc/PID/status), -1 when unreadable.
int64_t vm_rss_bytes(uint64_t pid);

// Scheduler time of a process, summed over its threads (/proc/PID/task/*/
// schedstat): on a CPU, and runnable but waiting for one. pid 0 is this
// process. Both -1 when unavailable.
struct SchedTime {
  double run_s = -1, wait_s = -1;
};
SchedTime sched_time(uint64_t pid);

// Ordered result fields: printed as one JSON object on one line, then as a
// table. Numbers are formatted when added.
class Report {
 public:
  void add(const std::string& key, uint64_t v, const std::string& label = {},
           const std::string& unit = {});
  void add(const std::string& key, double v, int decimals, const std::string& label = {},
           const std::string& unit = {});
  void add(const std::string& key, const std::string& v, const std::string& label = {});
  void add_bool(const std::string& key, bool v, const std::string& label = {});
  std::string json() const;
  std::string table() const;

 private:
  struct Field {
    std::string key, json, text, label, unit;
  };
  std::vector<Field> fields_;
};

std::string json_escape(const std::string& s);

int run_fanout(const Options& o);
int run_rooms(const Options& o);
int run_connect(const Options& o);
int run_idle(const Options& o);
int run_history(const Options& o);
int run_churn(const Options& o);
int run_soak(const Options& o);
int run_selftest(const Options& o);

}  // namespace herald::bench
