// herald-bench scenario `churn` (Herald protocol only): what presence and
// join/leave cost while subscriptions come and go (issue 11).
//
// One run: N connections (--connections) each `connect` (anonymous, to
// learn their client id) and subscribe to channel <prefix>:<i mod C>
// (--channel churn, --channels C); P publishers connect; after --settle the
// server's VmRSS is read (all N subscribed). Then, for --duration:
//
//   churn    the first K connections (--churners) are the churning set: at
//            --churn-rate ops/s in total, the next churner that has no
//            request outstanding unsubscribes (when subscribed) or
//            subscribes again to another, pseudo-random channel (when not);
//   fan-out  the publishers publish --rate messages/s in total, round-robin
//            over the C channels (so to channels with subscribers), windowed
//            by acks, data {"seq","pub","t","room","pad"} as in `rooms`.
//
// Every subscriber records the publish -> receive latency of each event
// (clock in the payload); `join`/`leave` messages are counted on their own
// and never enter the latency histogram. Then drain (replies, acks, events
// of the stable members, own joins) and the final presence check: `GET
// /api/channels/{c}/presence-stats` of every channel must answer the
// bench's own count of live subscriptions (subscribed replies minus
// unsubscribed replies).
//
// Checked throughout (each a failure, exit 1), from docs/protocol.md
// sections 6, 7 and 13: no event or join/leave of a channel before its
// `subscribed` reply or after its `unsubscribed` reply; the members that
// never churn get every event of their channel once and in order; with
// join_leave each subscribe is followed by the member's own `join` (after
// its reply), no member gets its own `leave`, anonymous joins/leaves carry
// user_joined/user_left true; without join_leave no join/leave at all; no
// error, no server-initiated unsubscribe or close.
//
// The server: --url (configured by the caller; --presence says how), or
// --herald BIN: the bench starts `BIN serve` itself on a free loopback port
// with a temporary config (memory engine, [namespaces.<prefix>] with
// presence and join_leave on or off), a fresh server per run, and by default
// runs presence on and off back to back (--presence both, --rounds R in
// alternating order) to report the ratios of one invocation.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client.hpp"
#include "histogram.hpp"
#include "http_get.hpp"
#include "scan.hpp"
#include "scenario.hpp"
#include "ws_loop.hpp"

extern char** environ;

namespace herald::bench {
namespace {

constexpr uint64_t kRoleMember = 1, kRolePub = 2;

uint64_t make_user(uint64_t role, uint64_t idx) {
  return (role << 32) | idx;
}
uint64_t user_role(uint64_t u) {
  return u >> 32;
}
uint64_t user_index(uint64_t u) {
  return u & 0xFFFFFFFFu;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// ---------------------------------------------------------------------------
// A Herald started by the bench: `herald serve` on a free loopback port, in
// a temporary directory holding its config and log.

class HeraldProcess {
 public:
  ~HeraldProcess() { stop(); }

  bool start(const Options& o, bool presence, bool join_leave, std::string& err) {
    char tmpl[] = "/tmp/herald-bench-churn-XXXXXX";
    if (!mkdtemp(tmpl)) {
      err = std::string("mkdtemp: ") + std::strerror(errno);
      return false;
    }
    dir_ = tmpl;
    const std::string config = dir_ + "/herald.toml";
    std::FILE* f = std::fopen(config.c_str(), "w");
    if (!f) {
      err = "cannot write " + config;
      return false;
    }
    std::fprintf(f,
                 "# written by herald-bench churn\n"
                 "[engine]\ntype = \"memory\"\n\n"
                 "[namespaces.%s]\npresence = %s\njoin_leave = %s\n",
                 o.channel.c_str(), presence ? "true" : "false",
                 presence && join_leave ? "true" : "false");
    std::fclose(f);
    port_ = free_port();
    if (!port_) {
      err = "no free port";
      return false;
    }
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    const std::string workers = std::to_string(o.server_workers);
    const std::string log = dir_ + "/server.log";
    // The server runs in the temporary directory: a relative path would no
    // longer name the binary there.
    char* abs = ::realpath(o.herald.c_str(), nullptr);
    if (!abs) {
      err = o.herald + ": " + std::strerror(errno);
      return false;
    }
    const std::string bin = abs;
    std::free(abs);
    const pid_t pid = ::fork();
    if (pid < 0) {
      err = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid == 0) {
      // The server must not outlive the bench, nor see the caller's
      // HERALD_* settings (the config file says everything).
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      std::vector<std::string> drop;
      for (char** e = environ; *e; ++e) {
        if (std::strncmp(*e, "HERALD_", 7) == 0) {
          const char* eq = std::strchr(*e, '=');
          drop.emplace_back(*e, eq ? static_cast<size_t>(eq - *e) : std::strlen(*e));
        }
      }
      for (const auto& k : drop) ::unsetenv(k.c_str());
      if (::chdir(dir_.c_str()) != 0) ::_exit(127);
      const int lf = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (lf >= 0) {
        ::dup2(lf, 1);
        ::dup2(lf, 2);
        ::close(lf);
      }
      const char* argv[] = {bin.c_str(), "serve",         "--listen",     listen.c_str(),
                            "--workers", workers.c_str(), "--static-dir", "",
                            "--config",  config.c_str(),  nullptr};
      ::execv(bin.c_str(), const_cast<char* const*>(argv));
      std::fprintf(stderr, "exec %s: %s\n", bin.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    pid_ = pid;
    // Ready when /healthz answers.
    std::string url_err;
    parse_ws_url("ws://127.0.0.1:" + std::to_string(port_) + "/ws", ep_, url_err);
    const uint64_t until = now_ns() + 10'000'000'000ull;
    while (now_ns() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        err = "herald exited at start:\n" + log_tail();
        return false;
      }
      if (http_get(ep_, "/healthz", {}, 1000).status == 200) return true;
      ::usleep(50'000);
    }
    err = "herald did not answer /healthz within 10 s:\n" + log_tail();
    return false;
  }

  // SIGTERM, then SIGKILL after 10 s; removes the directory unless `keep`.
  void stop(bool keep = false) {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      const uint64_t until = now_ns() + 10'000'000'000ull;
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (now_ns() > until) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        ::usleep(20'000);
      }
      pid_ = 0;
    }
    if (!dir_.empty() && !keep) {
      const std::string cmd = "rm -rf '" + dir_ + "'";
      if (std::system(cmd.c_str()) != 0)
        std::fprintf(stderr, "herald-bench: could not remove %s\n", dir_.c_str());
    }
    dir_.clear();
  }

  std::string log_tail() const {
    std::FILE* f = std::fopen((dir_ + "/server.log").c_str(), "r");
    if (!f) return "(no log)";
    std::string s;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
    std::fclose(f);
    return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
  }

  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }

 private:
  static uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(fd);
    return port;
  }

  pid_t pid_ = 0;
  uint16_t port_ = 0;
  std::string dir_;
  Endpoint ep_;
};

// ---------------------------------------------------------------------------
// One run against one server.

enum class MState : uint8_t { connecting, subscribing, subscribed, unsubscribing, idle };

struct Member {
  Conn* conn = nullptr;
  uint32_t channel = 0;  // subscribed to, or being (un)subscribed from/to
  MState state = MState::connecting;
  bool churner = false;
  bool own_join_pending = false;  // subscribed, own `join` not seen yet
  uint64_t op_sent_ns = 0;
  // For the stale join/leave count: when this member's current subscribe
  // was sent and answered, and its last unsubscribe answered (from where).
  uint64_t sub_sent_ns = 0, sub_reply_ns = 0, unsub_reply_ns = 0;
  int64_t left_channel = -1;
};

// Client id -> member index, looked up with string_views.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Pub {
  Conn* conn = nullptr;
  bool open = false;
  uint64_t sent = 0, acked = 0, errors = 0, inflight = 0;
  uint64_t first_due_ns = 0, last_ack_ns = 0;
  std::vector<std::pair<uint64_t, uint64_t>> sent_at;  // (id, send ns), ring
};

struct RunResult {
  bool presence = false, join_leave = false;
  bool setup_failed = false;
  std::string setup_error;
  bool ok = false;
  // setup
  double connect_s = 0;
  int64_t rss_before = -1, rss_subscribed = -1;
  double members_gauge_subscribed = -1, members_gauge_end = -1;
  uint64_t setup_joins = 0;  // join/leave messages received before the churn
  // fan-out
  Histogram latency, ack_latency;
  uint64_t published = 0, acked = 0, deliveries = 0, stable_lost = 0, reordered = 0;
  uint64_t malformed = 0;
  double publishes_per_sec = 0, deliveries_per_sec = 0;
  bool rate_held = false;
  uint64_t rate_max_lag_ns = 0;
  // churn
  uint64_t subscribes = 0, unsubscribes = 0, ops_skipped = 0;
  Histogram subscribe_latency, unsubscribe_latency;
  double churn_ops_per_sec = 0;
  uint64_t joins = 0, leaves = 0;  // received, the whole run
  uint64_t join_leave_in_window = 0;
  double join_leave_per_sec = 0;
  uint64_t join_leave_expected = 0;  // the whole run, from the bench's member counts
  uint64_t own_joins = 0;
  Histogram own_join_delay;  // subscribed reply -> own join, both at the bench
  // join/leave of a member X received by a member that subscribed after X's
  // change (reported, not a failure: see bench/README.md)
  uint64_t stale_joins = 0, stale_leaves = 0;
  std::string first_stale;
  // contract violations (each fails the run)
  uint64_t events_before_subscribed = 0, events_not_subscribed = 0;
  uint64_t jl_before_subscribed = 0, jl_not_subscribed = 0, jl_unexpected = 0;
  uint64_t own_join_missing = 0, own_join_unexpected = 0, own_leave = 0, jl_malformed = 0;
  uint64_t server_unsubscribes = 0, errors = 0, unexpected_closes = 0, protocol_errors = 0;
  bool timed_out = false, drained = false;
  // final presence check
  uint64_t channels_checked = 0, mismatches = 0, members_bench = 0, members_server = 0;
  uint64_t list_mismatches = 0;
  uint64_t bad_channels =
      0;  // channels with either mismatch  // `presence` member lists that differ from the bench's
  double subscriptions_gauge_end = -1;
  uint64_t users_server = 0;
  int presence_stats_status = 0;  // of the first request (403 expected with presence off)
  std::string first_mismatch, first_error;
  std::map<std::string, uint64_t> close_reasons;
  // resources over the churn window
  double server_cpu_pct = -1, bench_cpu_pct = -1, host_cpu_pct = -1;
  double server_runq_pct = -1, bench_runq_pct = -1;  // runnable, waiting for a CPU
  double duration_s = 0;
  uint64_t violations() const {
    return events_before_subscribed + events_not_subscribed + jl_before_subscribed +
           jl_not_subscribed + jl_unexpected + own_join_missing + own_join_unexpected + own_leave +
           jl_malformed + server_unsubscribes;
  }
};

enum class Phase { connect_members, connect_pubs, settle, churn, drain, done };

class ChurnRun final : public ClientHandler {
 public:
  ChurnRun(const Options& o, Endpoint ep, bool presence, bool join_leave, uint64_t server_pid)
      : o_(o),
        ep_(ep),
        channels_(o.channels),
        server_pid_(server_pid),
        client_(Target::herald, std::move(ep), *this) {
    r_.presence = presence;
    r_.join_leave = presence && join_leave;
    client_.set_connect_first(true);  // to learn each member's client id
    members_.resize(o.connections);
    for (uint64_t i = 0; i < members_.size(); ++i) {
      members_[i].channel = static_cast<uint32_t>(i % channels_);
      members_[i].churner = i < o.churners;
      if (i < o.churners) churners_.push_back(static_cast<uint32_t>(i));
    }
    pubs_.resize(o.publishers);
    for (Pub& p : pubs_) p.sent_at.resize(std::bit_ceil(2 * o.window), {0, 0});
    for (uint64_t c = 0; c < channels_; ++c) wire_.push_back(o.channel + ":" + std::to_string(c));
    members_count_.assign(channels_, 0);
    stable_count_.assign(channels_, 0);
    for (const Member& m : members_)
      if (!m.churner) ++stable_count_[m.channel];
    chan_seq_.assign(o.publishers * channels_, 0);
    next_seq_.assign(members_.size() * o.publishers, 1);
    pad_.assign(o.size, 'x');
  }

  RunResult run();

  void on_ready(Conn& c, uint64_t now) override;
  void on_subscribed(Conn& c, uint64_t recv_ns) override;
  void on_event(Conn& c, std::string_view msg, uint64_t recv_ns) override;
  void on_ack(Conn& c, uint64_t id, uint64_t recv_ns) override;
  void on_error(Conn& c, std::string_view msg, bool has_id, uint64_t id, uint64_t recv_ns) override;
  void on_closed(Conn& c, const CloseInfo& info) override;
  void on_unsubscribed(Conn& c, std::string_view msg, bool has_id, uint64_t id,
                       uint64_t recv_ns) override;
  void on_join_leave(Conn& c, bool join, std::string_view msg, uint64_t recv_ns) override;

 private:
  bool connected_phase() const { return phase_ == Phase::churn || phase_ == Phase::drain; }
  // The channel index of a "<prefix>:<n>" name, or -1.
  int64_t channel_index(std::string_view name) const;
  void violation(uint64_t& counter, const std::string& what) {
    ++counter;
    if (r_.first_error.empty()) r_.first_error = what;
  }
  void start_connects();
  uint64_t pump_publish(uint64_t now);
  uint64_t pump_churn(uint64_t now);
  void send_publish(Pub& p, uint64_t pi, uint64_t now);
  bool drained() const;
  void final_check();
  void progress(uint64_t now);
  void fatal(std::string why) {
    if (fatal_.empty()) fatal_ = std::move(why);
  }

  const Options& o_;
  Endpoint ep_;
  const uint64_t channels_;
  const uint64_t server_pid_;
  Client client_;
  RunResult r_;
  Phase phase_ = Phase::connect_members;
  std::vector<Member> members_;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> by_client_;
  std::vector<uint32_t> churners_;
  std::vector<Pub> pubs_;
  std::vector<std::string> wire_;
  std::vector<int64_t> members_count_;  // per channel: the bench's count of live subscriptions
  std::vector<uint64_t> stable_count_;  // per channel: members that never churn
  std::vector<uint64_t> chan_seq_;      // [pi * C + c]: seqs sent by pi to c
  std::vector<uint64_t> next_seq_;      // [m * P + pi]: next seq stable member m expects
  uint64_t stable_expected_ = 0, stable_unique_ = 0;
  uint64_t next_member_ = 0, next_pub_ = 0, setting_up_ = 0, subscribed_ = 0, pubs_open_ = 0;
  uint64_t pending_ops_ = 0, own_joins_pending_ = 0;
  uint64_t ops_due_ = 0, churn_cursor_ = 0, churn_lag_max_ = 0;
  std::string fatal_;
  uint64_t t_start_ = 0, t_settle_ = 0, t_churn0_ = 0, t_churn_end_ = 0, t_drain_end_ = 0;
  uint64_t last_progress_ = 0, last_progress_deliveries_ = 0, last_progress_jl_ = 0;
  uint64_t last_progress_ops_ = 0, last_expiry_ = 0;
  double cpu_self_0_ = 0, cpu_self_1_ = 0, cpu_server_0_ = -1, cpu_server_1_ = -1;
  HostCpu host_0_, host_1_;
  SchedTime sched_self_0_, sched_self_1_, sched_server_0_, sched_server_1_;
  size_t seq_at_ = 0;
  std::string pad_, data_;
};

int64_t ChurnRun::channel_index(std::string_view name) const {
  const std::string& prefix = o_.channel;
  if (name.size() <= prefix.size() + 1 || name.substr(0, prefix.size()) != prefix ||
      name[prefix.size()] != ':')
    return -1;
  const char* p = name.data() + prefix.size() + 1;
  const char* end = name.data() + name.size();
  uint64_t v = 0;
  if (!parse_digits(p, end, v) || p != end || v >= channels_) return -1;
  return static_cast<int64_t>(v);
}

void ChurnRun::start_connects() {
  while (phase_ == Phase::connect_members && next_member_ < members_.size() &&
         setting_up_ < o_.connect_concurrency) {
    members_[next_member_].conn = &client_.connect(make_user(kRoleMember, next_member_));
    ++next_member_;
    ++setting_up_;
  }
  while (phase_ == Phase::connect_pubs && next_pub_ < pubs_.size() &&
         setting_up_ < o_.connect_concurrency) {
    pubs_[next_pub_].conn = &client_.connect(make_user(kRolePub, next_pub_));
    ++next_pub_;
    ++setting_up_;
  }
}

void ChurnRun::on_ready(Conn& c, uint64_t now) {
  const uint64_t idx = user_index(c.user);
  if (user_role(c.user) == kRolePub) {
    pubs_[idx].open = true;
    --setting_up_;
    ++pubs_open_;
    return;
  }
  Member& m = members_[idx];
  if (!c.proto_client.empty()) by_client_.emplace(c.proto_client, static_cast<uint32_t>(idx));
  m.state = MState::subscribing;
  m.op_sent_ns = m.sub_sent_ns = now;
  client_.subscribe(c, wire_[m.channel]);
}

void ChurnRun::on_subscribed(Conn& c, uint64_t recv_ns) {
  if (user_role(c.user) != kRoleMember) return;
  Member& m = members_[user_index(c.user)];
  if (m.state != MState::subscribing) {
    violation(r_.protocol_errors, "unexpected subscribed reply");
    return;
  }
  m.state = MState::subscribed;
  m.sub_reply_ns = recv_ns;
  const int64_t n = ++members_count_[m.channel];
  if (r_.join_leave) {
    m.own_join_pending = true;
    ++own_joins_pending_;
  }
  if (connected_phase()) {
    --pending_ops_;
    ++r_.subscribes;
    r_.subscribe_latency.record(recv_ns - m.op_sent_ns);
  } else {
    ++subscribed_;
    --setting_up_;
  }
  // Everyone in the channel, the new member included, gets its join.
  if (r_.join_leave) r_.join_leave_expected += static_cast<uint64_t>(n);
}

void ChurnRun::on_unsubscribed(Conn& c, std::string_view msg, bool has_id, uint64_t,
                               uint64_t recv_ns) {
  if (user_role(c.user) != kRoleMember) return;
  const uint64_t idx = user_index(c.user);
  Member& m = members_[idx];
  if (!has_id) {
    violation(r_.server_unsubscribes,
              "member " + std::to_string(idx) +
                  ": server ended a subscription: " + std::string(msg.substr(0, 200)));
    if (m.state == MState::subscribed) {
      m.state = MState::idle;
      --members_count_[m.channel];
    }
    return;
  }
  if (m.state != MState::unsubscribing) {
    violation(r_.protocol_errors, "unexpected unsubscribed reply");
    return;
  }
  m.state = MState::idle;
  m.unsub_reply_ns = recv_ns;
  m.left_channel = m.channel;
  const int64_t n = --members_count_[m.channel];
  --pending_ops_;
  ++r_.unsubscribes;
  r_.unsubscribe_latency.record(recv_ns - m.op_sent_ns);
  if (r_.join_leave) r_.join_leave_expected += static_cast<uint64_t>(n);
  if (m.own_join_pending) {
    m.own_join_pending = false;
    --own_joins_pending_;
    violation(r_.own_join_missing, "member " + std::to_string(idx) + " (" + m.conn->proto_client +
                                       "): no own join between subscribed and unsubscribed on " +
                                       wire_[m.channel]);
  }
}

void ChurnRun::on_join_leave(Conn& c, bool join, std::string_view msg, uint64_t recv_ns) {
  if (user_role(c.user) != kRoleMember) {
    violation(r_.jl_not_subscribed, "a publisher (subscribed to nothing) got " + std::string(msg));
    return;
  }
  const uint64_t idx = user_index(c.user);
  Member& m = members_[idx];
  ++(join ? r_.joins : r_.leaves);
  if (phase_ == Phase::churn) {
    ++r_.join_leave_in_window;
  } else if (phase_ != Phase::drain) {
    ++r_.setup_joins;
  }
  auto what = [&] {
    return "member " + std::to_string(idx) + " (" + c.proto_client + ") got " +
           std::string(msg.substr(0, 200));
  };
  if (!r_.join_leave) {
    violation(r_.jl_unexpected, what() + " with join_leave off");
    return;
  }
  const char* const end = msg.data() + msg.size();
  auto string_of = [&](std::string_view key) -> std::string_view {
    const char* q = find_key(msg.data(), end, key);
    if (!q || q >= end || *q != '"') return {};
    const void* e = std::memchr(q + 1, '"', static_cast<size_t>(end - q - 1));
    if (!e) return {};
    return {q + 1, static_cast<size_t>(static_cast<const char*>(e) - q - 1)};
  };
  const int64_t ch = channel_index(string_of("\"channel\""));
  const std::string_view client = string_of("\"client\"");
  const bool flag =
      msg.find(join ? "\"user_joined\":true" : "\"user_left\":true") != std::string_view::npos;
  if (ch < 0 || client.empty() || !flag) {
    violation(r_.jl_malformed,
              what() + (flag ? " (channel or client missing)"
                             : " (anonymous member without user_joined/user_left true)"));
    return;
  }
  const bool mine = ch == m.channel;
  if (mine && m.state == MState::subscribing) {
    violation(r_.jl_before_subscribed, what() + " before its subscribed reply");
    return;
  }
  if (!mine || (m.state != MState::subscribed && m.state != MState::unsubscribing)) {
    violation(r_.jl_not_subscribed, what() + " while not subscribed to that channel");
    return;
  }
  const bool self = !c.proto_client.empty() && client == c.proto_client;
  if (self) {
    if (!join) {
      violation(r_.own_leave, what() + ": its own leave");
      return;
    }
    if (!m.own_join_pending) {
      violation(r_.own_join_unexpected, what() + ": own join again");
      return;
    }
    m.own_join_pending = false;
    --own_joins_pending_;
    ++r_.own_joins;
    r_.own_join_delay.record(recv_ns > m.sub_reply_ns ? recv_ns - m.sub_reply_ns : 0);
    return;
  }
  // Another member X. Stale: X's change happened at the owner before this
  // member's subscribe was even sent (the bench had X's reply by then), so
  // this member was not in the channel when X came or went.
  const auto it = by_client_.find(client);
  if (it == by_client_.end()) return;  // not one of ours
  const Member& x = members_[it->second];
  if (join) {
    if (x.channel == ch && (x.state == MState::subscribed || x.state == MState::unsubscribing) &&
        x.sub_reply_ns && x.sub_reply_ns < m.sub_sent_ns) {
      ++r_.stale_joins;
      if (r_.first_stale.empty())
        r_.first_stale = what() + ": " + std::string(client) + " was subscribed " +
                         std::to_string((m.sub_sent_ns - x.sub_reply_ns) / 1000) +
                         " us before this member sent its subscribe";
    }
  } else if (x.left_channel == ch && x.unsub_reply_ns && x.unsub_reply_ns < m.sub_sent_ns &&
             !(x.channel == ch && x.state == MState::unsubscribing)) {
    ++r_.stale_leaves;
    if (r_.first_stale.empty())
      r_.first_stale = what() + ": " + std::string(client) + " had left " +
                       std::to_string((m.sub_sent_ns - x.unsub_reply_ns) / 1000) +
                       " us before this member sent its subscribe";
  }
}

void ChurnRun::on_event(Conn& c, std::string_view msg, uint64_t recv_ns) {
  if (user_role(c.user) != kRoleMember) {
    violation(r_.events_not_subscribed, "a publisher (subscribed to nothing) got an event");
    return;
  }
  const uint64_t idx = user_index(c.user);
  Member& m = members_[idx];
  ++r_.deliveries;
  const char* const begin = msg.data();
  const char* const end = begin + msg.size();
  uint64_t seq = 0, pub = 0, t = 0, room = 0;
  constexpr std::string_view kSeq = "\"seq\":";
  bool ok = false;
  if (seq_at_ + kSeq.size() <= msg.size() &&
      std::memcmp(begin + seq_at_, kSeq.data(), kSeq.size()) == 0) {
    const char* p = begin + seq_at_ + kSeq.size();
    ok = parse_digits(p, end, seq) && at(p, end, ",\"pub\":") && parse_digits(p += 7, end, pub) &&
         at(p, end, ",\"t\":") && parse_digits(p += 5, end, t) && at(p, end, ",\"room\":") &&
         parse_digits(p += 8, end, room);
  }
  if (!ok) {
    const char* d = find_key(begin, end, "\"data\"");
    const char* p = d ? d : begin;
    ok = find_uint(p, end, "\"seq\"", seq) && find_uint(p, end, "\"pub\"", pub) &&
         find_uint(p, end, "\"t\"", t) && find_uint(p, end, "\"room\"", room);
    if (ok) {
      const void* k = memmem(d ? d : begin, static_cast<size_t>(end - (d ? d : begin)), kSeq.data(),
                             kSeq.size());
      if (k) seq_at_ = static_cast<size_t>(static_cast<const char*>(k) - begin);
    }
  }
  if (!ok || pub >= pubs_.size() || room >= channels_) {
    ++r_.malformed;
    if (r_.first_error.empty())
      r_.first_error = "malformed event: " + std::string(msg.substr(0, 200));
    return;
  }
  const std::string what = "member " + std::to_string(idx) + " got an event of " + wire_[room];
  if (room == m.channel && m.state == MState::subscribing) {
    violation(r_.events_before_subscribed, what + " before its subscribed reply");
    return;
  }
  if (room != m.channel || (m.state != MState::subscribed && m.state != MState::unsubscribing)) {
    violation(r_.events_not_subscribed, what + " while not subscribed to it");
    return;
  }
  r_.latency.record(recv_ns > t ? recv_ns - t : 0);
  if (!m.churner) {
    uint64_t& next = next_seq_[idx * pubs_.size() + pub];
    if (seq == next) {
      ++next;
      ++stable_unique_;
    } else if (seq > next) {
      ++r_.reordered;  // a gap: lost, or late
      if (r_.first_error.empty())
        r_.first_error =
            what + ": seq " + std::to_string(seq) + " after " + std::to_string(next - 1);
      next = seq + 1;
      ++stable_unique_;
    } else {
      ++r_.reordered;  // duplicate or late
      if (r_.first_error.empty())
        r_.first_error = what + ": seq " + std::to_string(seq) + " again or late";
    }
  }
}

void ChurnRun::on_ack(Conn& c, uint64_t id, uint64_t recv_ns) {
  if (user_role(c.user) != kRolePub) return;
  Pub& p = pubs_[user_index(c.user)];
  ++p.acked;
  const auto& slot = p.sent_at[id & (p.sent_at.size() - 1)];
  if (slot.first == id) r_.ack_latency.record(recv_ns > slot.second ? recv_ns - slot.second : 0);
  if (p.inflight) --p.inflight;
  p.last_ack_ns = recv_ns;
}

void ChurnRun::on_error(Conn& c, std::string_view msg, bool has_id, uint64_t, uint64_t) {
  const uint64_t idx = user_index(c.user);
  const bool member = user_role(c.user) == kRoleMember;
  const std::string what = std::string(member ? "member " : "publisher ") + std::to_string(idx) +
                           ": " + std::string(msg.substr(0, 300));
  if (phase_ == Phase::connect_members || phase_ == Phase::connect_pubs) {
    fatal(what);
    return;
  }
  violation(r_.errors, what);
  if (!member) {
    Pub& p = pubs_[idx];
    ++p.errors;
    if (has_id && p.inflight) --p.inflight;
    return;
  }
  // A refused (un)subscribe: the member stays where it was.
  Member& m = members_[idx];
  if (m.state == MState::subscribing) {
    m.state = MState::idle;
    --pending_ops_;
  } else if (m.state == MState::unsubscribing) {
    m.state = MState::subscribed;
    --pending_ops_;
  }
}

void ChurnRun::on_closed(Conn& c, const CloseInfo& info) {
  if (phase_ == Phase::done) return;
  const uint64_t idx = user_index(c.user);
  const bool member = user_role(c.user) == kRoleMember;
  const std::string who = std::string(member ? "member " : "publisher ") + std::to_string(idx);
  if (phase_ == Phase::connect_members || phase_ == Phase::connect_pubs) {
    fatal(who + " could not be set up: " + info.reason);
    return;
  }
  ++r_.unexpected_closes;
  ++r_.close_reasons[std::string(member ? "member: " : "publisher: ") + info.reason];
  if (r_.first_error.empty()) r_.first_error = who + " lost: " + info.reason;
  if (member) {
    Member& m = members_[idx];
    if (m.state == MState::subscribing || m.state == MState::unsubscribing) --pending_ops_;
    if (m.state == MState::subscribed || m.state == MState::unsubscribing)
      --members_count_[m.channel];
    if (m.own_join_pending) --own_joins_pending_;
    m.own_join_pending = false;
    m.state = MState::idle;
    m.churner = false;  // never picked again
    // Its events are no longer owed.
  } else {
    pubs_[idx].inflight = 0;
  }
}

void ChurnRun::send_publish(Pub& p, uint64_t pi, uint64_t now) {
  const uint64_t k = p.sent;
  const uint64_t id = ++p.sent;
  const uint64_t room = (k * pubs_.size() + pi) % channels_;
  const uint64_t seq = ++chan_seq_[pi * channels_ + room];
  stable_expected_ += stable_count_[room];
  ++p.inflight;
  p.sent_at[id & (p.sent_at.size() - 1)] = {id, now};
  const size_t fixed = 7 + digits(seq) + 7 + digits(pi) + 5 + digits(now) + 8 + digits(room) + 10;
  const size_t pad = o_.size > fixed ? o_.size - fixed : 0;
  std::string& m = data_;
  m.clear();
  m += "{\"seq\":";
  append_uint(m, seq);
  m += ",\"pub\":";
  append_uint(m, pi);
  m += ",\"t\":";
  append_uint(m, now);
  m += ",\"room\":";
  append_uint(m, room);
  m += ",\"pad\":\"";
  m.append(pad_.data(), pad);
  m += "\"}";
  client_.publish(*p.conn, id, wire_[room], "bench", m);
}

uint64_t ChurnRun::pump_publish(uint64_t now) {
  if (phase_ != Phase::churn || o_.rate == 0) return 0;
  uint64_t next_due = 0;
  for (uint64_t pi = 0; pi < pubs_.size(); ++pi) {
    Pub& p = pubs_[pi];
    if (!p.conn || p.conn->state != ConnState::open) continue;
    for (;;) {
      const uint64_t due =
          p.first_due_ns +
          static_cast<uint64_t>(double(p.sent) * 1e9 * double(pubs_.size()) / double(o_.rate));
      if (due >= t_churn0_ + o_.duration_ns) break;  // the last slot is past the end
      if (due > now) {
        if (!next_due || due < next_due) next_due = due;
        break;
      }
      if (p.inflight >= o_.window) break;
      r_.rate_max_lag_ns = std::max(r_.rate_max_lag_ns, now - due);
      send_publish(p, pi, now);
    }
  }
  return next_due;
}

uint64_t ChurnRun::pump_churn(uint64_t now) {
  if (phase_ != Phase::churn || o_.churn_rate == 0 || churners_.empty()) return 0;
  for (;;) {
    const uint64_t due =
        t_churn0_ + static_cast<uint64_t>(double(ops_due_) * 1e9 / double(o_.churn_rate));
    if (due >= t_churn0_ + o_.duration_ns) return 0;
    if (due > now) return due;
    ++ops_due_;
    churn_lag_max_ = std::max(churn_lag_max_, now - due);
    bool done = false;
    for (size_t tries = 0; tries < churners_.size() && !done; ++tries) {
      const uint32_t mi = churners_[churn_cursor_++ % churners_.size()];
      Member& m = members_[mi];
      if (!m.churner || !m.conn || m.conn->state != ConnState::open) continue;
      // Not before its own join arrived: under load an owner's turn can
      // outlast the K/R between a churner's ops, and the own-join delay is
      // one of the figures.
      if (m.state == MState::subscribed && !m.own_join_pending) {
        m.state = MState::unsubscribing;
        m.op_sent_ns = now;
        client_.unsubscribe(*m.conn, wire_[m.channel]);
        ++pending_ops_;
        done = true;
      } else if (m.state == MState::idle) {
        if (channels_ > 1) {
          const uint64_t step = 1 + splitmix64((uint64_t{mi} << 24) ^ ops_due_) % (channels_ - 1);
          m.channel = static_cast<uint32_t>((m.channel + step) % channels_);
        }
        m.state = MState::subscribing;
        m.op_sent_ns = m.sub_sent_ns = now;
        client_.subscribe(*m.conn, wire_[m.channel]);
        ++pending_ops_;
        done = true;
      }
    }
    if (!done) ++r_.ops_skipped;  // every churner had a request outstanding
  }
}

bool ChurnRun::drained() const {
  if (pending_ops_ != 0 || own_joins_pending_ != 0) return false;
  for (const Pub& p : pubs_)
    if (p.inflight != 0 && p.conn && p.conn->state == ConnState::open) return false;
  return stable_unique_ >= stable_expected_;
}

void ChurnRun::progress(uint64_t now) {
  if (!o_.progress || now - last_progress_ < 1'000'000'000) return;
  const double dt = double(now - last_progress_) / 1e9;
  uint64_t sent = 0;
  for (const Pub& p : pubs_) sent += p.sent;
  const uint64_t jl = r_.joins + r_.leaves;
  const uint64_t ops = r_.subscribes + r_.unsubscribes;
  std::fprintf(
      stderr,
      "[%6.1fs] %-8s subscribed %llu/%llu  ops %llu (%.0f/s)  published %llu  "
      "events %.0f/s  join/leave %.0f/s\n",
      double(now - t_start_) / 1e9,
      phase_ == Phase::churn    ? "churn"
      : phase_ == Phase::drain  ? "drain"
      : phase_ == Phase::settle ? "settle"
                                : "connect",
      static_cast<unsigned long long>(subscribed_),
      static_cast<unsigned long long>(members_.size()), static_cast<unsigned long long>(ops),
      double(ops - last_progress_ops_) / dt, static_cast<unsigned long long>(sent),
      double(r_.deliveries - last_progress_deliveries_) / dt, double(jl - last_progress_jl_) / dt);
  last_progress_ = now;
  last_progress_deliveries_ = r_.deliveries;
  last_progress_jl_ = jl;
  last_progress_ops_ = ops;
}

void ChurnRun::final_check() {
  for (uint64_t c = 0; c < channels_; ++c)
    r_.members_bench += members_count_[c] > 0 ? static_cast<uint64_t>(members_count_[c]) : 0;
  // With presence off the route must refuse (403); ask once for the record.
  if (!r_.presence) {
    r_.presence_stats_status =
        http_get(ep_, "/api/channels/" + o_.channel + "%3A0/presence-stats", o_.api_key).status;
    return;
  }
  for (uint64_t c = 0; c < channels_; ++c) {
    const HttpReply h =
        http_get(ep_, "/api/channels/" + o_.channel + "%3A" + std::to_string(c) + "/presence-stats",
                 o_.api_key);
    if (c == 0) r_.presence_stats_status = h.status;
    ++r_.channels_checked;
    const uint64_t bench = members_count_[c] > 0 ? static_cast<uint64_t>(members_count_[c]) : 0;
    uint64_t clients = 0, users = 0;
    const char* p = h.body.data();
    const char* end = p + h.body.size();
    const bool parsed = h.status == 200 && find_uint(p, end, "\"clients\"", clients);
    p = h.body.data();
    if (parsed && find_uint(p, end, "\"users\"", users)) r_.users_server += users;
    if (parsed) r_.members_server += clients;
    const uint64_t bad_before = r_.mismatches + r_.list_mismatches;
    if (!parsed || clients != bench) {
      ++r_.mismatches;
      if (r_.first_mismatch.empty()) {
        r_.first_mismatch =
            wire_[c] + ": bench counts " + std::to_string(bench) + ", server answered " +
            (h.status ? std::to_string(h.status) + " " + h.body.substr(0, 200) : h.error);
      }
    }
    // The member list too: exactly the client ids of the bench's members.
    const HttpReply l = http_get(
        ep_, "/api/channels/" + o_.channel + "%3A" + std::to_string(c) + "/presence", o_.api_key);
    std::vector<std::string> want, got;
    for (const Member& m : members_) {
      if (m.channel == c && (m.state == MState::subscribed) && m.conn)
        want.push_back(m.conn->proto_client);
    }
    const bool complete = l.body.find("\"complete\":true") != std::string::npos;
    for (size_t at = l.body.find("\"client\":\""); at != std::string::npos;
         at = l.body.find("\"client\":\"", at + 1)) {
      const size_t b = at + 10, e = l.body.find('"', b);
      if (e == std::string::npos) break;
      got.push_back(l.body.substr(b, e - b));
    }
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    if (l.status != 200 || !complete || got != want) {
      ++r_.list_mismatches;
      if (r_.first_mismatch.empty()) {
        std::string diff;
        std::vector<std::string> extra, missing;
        std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                            std::back_inserter(extra));
        std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                            std::back_inserter(missing));
        r_.first_mismatch = wire_[c] + ": presence answered " + std::to_string(l.status) +
                            (complete ? "" : " (not complete)") + " with " +
                            std::to_string(got.size()) + " members, the bench has " +
                            std::to_string(want.size()) +
                            "; not members: " + std::to_string(extra.size()) +
                            (extra.empty() ? "" : " (" + extra[0] + ")") +
                            ", missing: " + std::to_string(missing.size()) +
                            (missing.empty() ? "" : " (" + missing[0] + ")");
      }
    }
    if (r_.mismatches + r_.list_mismatches != bad_before) ++r_.bad_channels;
  }
}

RunResult ChurnRun::run() {
  t_start_ = now_ns();
  last_progress_ = t_start_;
  last_expiry_ = t_start_;
  const uint64_t deadline = t_start_ + o_.duration_limit_ns;
  Loop& loop = client_.loop();
  if (server_pid_) r_.rss_before = vm_rss_bytes(server_pid_);
  std::fprintf(
      stderr,
      "herald-bench churn (presence %s, join_leave %s): %llu connections on %llu "
      "channels, %llu churners at %llu ops/s, %llu publishes/s, %.0f s -> %s\n",
      r_.presence ? "on" : "off", r_.join_leave ? "on" : "off",
      static_cast<unsigned long long>(members_.size()), static_cast<unsigned long long>(channels_),
      static_cast<unsigned long long>(churners_.size()),
      static_cast<unsigned long long>(o_.churn_rate), static_cast<unsigned long long>(o_.rate),
      double(o_.duration_ns) / 1e9, o_.url.c_str());
  while (phase_ != Phase::done) {
    uint64_t now = now_ns();
    if (!fatal_.empty()) break;
    if (now >= deadline) {
      r_.timed_out = true;
      break;
    }
    if (phase_ == Phase::connect_members || phase_ == Phase::connect_pubs) {
      start_connects();
      if (now - last_expiry_ > 100'000'000) {
        now = now_ns();  // after the connects just started
        loop.expire_handshakes(now, o_.handshake_timeout_ns);
        for (uint64_t i = 0; i < next_member_; ++i) {
          const Member& m = members_[i];
          if (m.state != MState::subscribed && m.conn->state == ConnState::open &&
              now - m.conn->started_ns > o_.handshake_timeout_ns)
            loop.abort(*m.conn, "not subscribed within --handshake-timeout");
        }
        last_expiry_ = now;
      }
    }
    uint64_t wake = std::min(deadline, now + 100'000'000);
    if (const uint64_t d = pump_publish(now)) wake = std::min(wake, d);
    if (const uint64_t d = pump_churn(now)) wake = std::min(wake, d);
    if (phase_ == Phase::settle) wake = std::min(wake, t_settle_ + o_.settle_ns);
    if (phase_ == Phase::churn) wake = std::min(wake, t_churn0_ + o_.duration_ns);
    if (phase_ == Phase::drain) wake = std::min(wake, t_churn_end_ + o_.drain_timeout_ns);
    loop.flush_pending();
    loop.run_once(static_cast<int64_t>(wake > now ? wake - now : 0));
    now = now_ns();

    if (phase_ == Phase::connect_members && subscribed_ == members_.size()) {
      phase_ = Phase::connect_pubs;
      std::fprintf(stderr, "[%6.1fs] %llu members subscribed\n", double(now - t_start_) / 1e9,
                   static_cast<unsigned long long>(subscribed_));
    }
    if (phase_ == Phase::connect_pubs) {
      start_connects();
      if (pubs_open_ == pubs_.size()) {
        phase_ = Phase::settle;
        t_settle_ = now;
        r_.connect_s = double(now - t_start_) / 1e9;
      }
    }
    if (phase_ == Phase::settle && now >= t_settle_ + o_.settle_ns) {
      // Every member subscribed, the join storm of the setup delivered:
      // the memory figure, then the churn and the fan-out start together.
      if (server_pid_) r_.rss_subscribed = vm_rss_bytes(server_pid_);
      const HttpReply mh = http_get(ep_, "/metrics", o_.api_key);
      if (mh.status == 200)
        r_.members_gauge_subscribed = prometheus_value(mh.body, "herald_presence_members");
      phase_ = Phase::churn;
      now = now_ns();
      t_churn0_ = now;
      for (uint64_t pi = 0; pi < pubs_.size(); ++pi)
        pubs_[pi].first_due_ns =
            o_.rate ? now + static_cast<uint64_t>(double(pi) * 1e9 / double(o_.rate)) : now;
      cpu_self_0_ = process_cpu_seconds(0);
      if (server_pid_) cpu_server_0_ = process_cpu_seconds(server_pid_);
      host_0_ = host_cpu();
      sched_self_0_ = sched_time(0);
      if (server_pid_) sched_server_0_ = sched_time(server_pid_);
    }
    if (phase_ == Phase::churn && now >= t_churn0_ + o_.duration_ns) {
      phase_ = Phase::drain;
      t_churn_end_ = now;
      cpu_self_1_ = process_cpu_seconds(0);
      if (server_pid_) cpu_server_1_ = process_cpu_seconds(server_pid_);
      host_1_ = host_cpu();
      sched_self_1_ = sched_time(0);
      if (server_pid_) sched_server_1_ = sched_time(server_pid_);
    }
    if (phase_ == Phase::drain) {
      r_.drained = drained();
      if (r_.drained || now >= t_churn_end_ + o_.drain_timeout_ns) {
        t_drain_end_ = now;
        break;
      }
    }
    progress(now);
  }
  const Phase reached = phase_;
  if (!fatal_.empty() || (r_.timed_out && reached != Phase::drain && reached != Phase::churn)) {
    r_.setup_failed = true;
    r_.setup_error = !fatal_.empty() ? fatal_
                                     : "--duration-limit reached while connecting (" +
                                           std::to_string(subscribed_) + "/" +
                                           std::to_string(members_.size()) + " subscribed)";
    phase_ = Phase::done;
    loop.close_all_now();
    return std::move(r_);
  }
  if (!t_churn_end_) {  // timed out during the churn
    t_churn_end_ = now_ns();
    cpu_self_1_ = process_cpu_seconds(0);
    if (server_pid_) cpu_server_1_ = process_cpu_seconds(server_pid_);
    host_1_ = host_cpu();
    sched_self_1_ = sched_time(0);
    if (server_pid_) sched_server_1_ = sched_time(server_pid_);
  }
  // Owed but never arrived (a pending own join counts once, below).
  if (!r_.drained) {
    r_.own_join_missing += own_joins_pending_;
    if (own_joins_pending_ && r_.first_error.empty())
      r_.first_error = std::to_string(own_joins_pending_) + " own joins never arrived";
  }
  r_.stable_lost = stable_expected_ > stable_unique_ ? stable_expected_ - stable_unique_ : 0;
  final_check();
  {
    const HttpReply mh = http_get(ep_, "/metrics", o_.api_key);
    if (mh.status == 200) {
      r_.members_gauge_end = prometheus_value(mh.body, "herald_presence_members");
      r_.subscriptions_gauge_end = prometheus_value(mh.body, "herald_subscriptions");
    }
  }
  phase_ = Phase::done;
  loop.close_all_now();

  const double churn_s = double(t_churn_end_ - t_churn0_) / 1e9;
  r_.duration_s = churn_s;
  for (const Pub& p : pubs_) {
    r_.published += p.sent;
    r_.acked += p.acked;
  }
  uint64_t last_ack = 0;
  for (const Pub& p : pubs_) last_ack = std::max(last_ack, p.last_ack_ns);
  const double pub_s = last_ack > t_churn0_ ? double(last_ack - t_churn0_) / 1e9 : churn_s;
  r_.publishes_per_sec = pub_s > 0 ? double(r_.acked) / pub_s : 0;
  r_.deliveries_per_sec = churn_s > 0 ? double(r_.deliveries) / churn_s : 0;
  r_.rate_held = o_.rate == 0 || r_.publishes_per_sec >= 0.95 * double(o_.rate);
  r_.churn_ops_per_sec = churn_s > 0 ? double(r_.subscribes + r_.unsubscribes) / churn_s : 0;
  r_.join_leave_per_sec = churn_s > 0 ? double(r_.join_leave_in_window) / churn_s : 0;
  r_.protocol_errors += client_.counters().protocol_errors;
  if (churn_s >= 0.2) {
    r_.bench_cpu_pct = 100.0 * (cpu_self_1_ - cpu_self_0_) / churn_s;
    if (cpu_server_0_ >= 0 && cpu_server_1_ >= 0)
      r_.server_cpu_pct = 100.0 * (cpu_server_1_ - cpu_server_0_) / churn_s;
    if (host_1_.total > host_0_.total)
      r_.host_cpu_pct = 100.0 * (host_1_.busy - host_0_.busy) / churn_s;
    if (sched_self_0_.wait_s >= 0 && sched_self_1_.wait_s >= 0)
      r_.bench_runq_pct = 100.0 * (sched_self_1_.wait_s - sched_self_0_.wait_s) / churn_s;
    if (sched_server_0_.wait_s >= 0 && sched_server_1_.wait_s >= sched_server_0_.wait_s)
      r_.server_runq_pct = 100.0 * (sched_server_1_.wait_s - sched_server_0_.wait_s) / churn_s;
  }
  (void)t_drain_end_;
  r_.ok = !r_.timed_out && r_.drained && r_.violations() == 0 && r_.errors == 0 &&
          r_.unexpected_closes == 0 && r_.protocol_errors == 0 && r_.malformed == 0 &&
          r_.stable_lost == 0 && r_.reordered == 0 && r_.mismatches == 0 &&
          r_.list_mismatches == 0 && r_.published == r_.acked;
  return std::move(r_);
}

// ---------------------------------------------------------------------------
// The driver: modes x rounds, the report.

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double us(uint64_t ns) {
  return double(ns) / 1e3;
}

void print_run(const RunResult& r, uint64_t round, std::FILE* f) {
  std::fprintf(
      f,
      "  round %llu presence %-3s: p50 %.1f p99 %.1f p99.9 %.1f max %.1f us | %.0f pub/s, %.0f "
      "events/s | %.0f ops/s (sub p99 %.1f us), join/leave %.0f/s | RSS %s | check %llu/%llu "
      "channels%s | server CPU %.0f%% (waiting %.0f%%) host %.0f%% | %s\n",
      static_cast<unsigned long long>(round), r.presence ? "on" : "off",
      us(r.latency.quantile(0.5)), us(r.latency.quantile(0.99)), us(r.latency.quantile(0.999)),
      us(r.latency.max()), r.publishes_per_sec, r.deliveries_per_sec, r.churn_ops_per_sec,
      us(r.subscribe_latency.quantile(0.99)), r.join_leave_per_sec,
      r.rss_subscribed >= 0 && r.rss_before >= 0
          ? (std::to_string((r.rss_subscribed - r.rss_before) / 1024) + " KiB growth").c_str()
          : "-",
      static_cast<unsigned long long>(r.channels_checked - r.bad_channels),
      static_cast<unsigned long long>(r.channels_checked), r.presence ? "" : " (off)",
      r.server_cpu_pct, r.server_runq_pct, r.host_cpu_pct,
      r.setup_failed ? ("SETUP FAILED: " + r.setup_error).c_str()
      : r.ok         ? "ok"
                     : ("FAILED: " + r.first_error +
                (r.first_error.empty() || r.first_mismatch.empty() ? "" : "; ") + r.first_mismatch)
                   .c_str());
}

}  // namespace

int run_churn(const Options& o) {
  if (o.target != Target::herald) {
    std::fprintf(stderr, "herald-bench: churn needs --target herald\n");
    return kExitUsage;
  }
  std::vector<bool> modes;  // presence on / off, in the order of round 0
  if (o.presence == "both") {
    if (o.herald.empty()) {
      std::fprintf(stderr,
                   "herald-bench: --presence both needs --herald (a server per mode); with --url "
                   "say how the server is configured: --presence on or off\n");
      return kExitUsage;
    }
    modes = {true, false};
  } else {
    modes = {o.presence != "off"};
  }
  if (o.churners > o.connections) {
    std::fprintf(stderr, "herald-bench: --churners must not exceed --connections\n");
    return kExitUsage;
  }
  std::vector<std::vector<RunResult>> results(2);  // [on=0 / off=1][round]
  std::vector<std::pair<uint64_t, bool>> order;    // (round, presence) as run
  bool setup_failed = false;
  for (uint64_t round = 0; round < o.rounds && !setup_failed; ++round) {
    std::vector<bool> ms = modes;
    if (round % 2 == 1) std::reverse(ms.begin(), ms.end());
    for (const bool presence : ms) {
      Options ro = o;
      HeraldProcess server;
      if (!o.herald.empty()) {
        std::string err;
        if (!server.start(o, presence, o.join_leave, err)) {
          std::fprintf(stderr, "herald-bench: could not start %s: %s\n", o.herald.c_str(),
                       err.c_str());
          server.stop(true);
          return kExitUsage;
        }
        ro.url = "ws://127.0.0.1:" + std::to_string(server.port()) + "/ws";
        ro.server_pid = static_cast<uint64_t>(server.pid());
      }
      Endpoint ep;
      std::string err;
      if (!parse_ws_url(ro.url, ep, err)) {
        std::fprintf(stderr, "herald-bench: --url: %s\n", err.c_str());
        return kExitUsage;
      }
      RunResult r;
      {
        ChurnRun run(ro, ep, presence, o.join_leave, ro.server_pid);
        r = run.run();
      }
      const bool keep = !o.herald.empty() && (r.setup_failed || !r.ok);
      if (!o.herald.empty() && server.pid() > 0 && ::waitpid(server.pid(), nullptr, WNOHANG) != 0) {
        std::fprintf(stderr, "herald-bench: the server died during the run; its log:\n%s\n",
                     server.log_tail().c_str());
      }
      const std::string dir = server.dir();
      server.stop(keep);
      if (keep)
        std::fprintf(stderr, "herald-bench: server log kept in %s/server.log\n", dir.c_str());
      print_run(r, round, stderr);
      if (r.setup_failed) setup_failed = true;
      order.emplace_back(round, presence);
      results[presence ? 0 : 1].push_back(std::move(r));
      if (setup_failed) break;
    }
  }
  if (setup_failed) {
    for (const auto& v : results)
      for (const auto& r : v)
        if (r.setup_failed)
          std::fprintf(stderr, "herald-bench: setup failed: %s\n", r.setup_error.c_str());
    return kExitUsage;
  }

  Report rep;
  rep.add("scenario", std::string("churn"));
  rep.add("target", std::string(target_name(o.target)));
  rep.add("connections", o.connections);
  rep.add("channels", o.channels);
  rep.add("churners", o.churners, "churning connections");
  rep.add("churn_rate", o.churn_rate, "churn rate (subscribes + unsubscribes)", "ops/s");
  rep.add("rate", o.rate, "publish rate", "publishes/s");
  rep.add("publishers", o.publishers);
  rep.add("size", o.size, "size", "bytes");
  rep.add("window", o.window);
  rep.add("duration_s", double(o.duration_ns) / 1e9, 1, "churn + fan-out for", "s");
  rep.add("rounds", o.rounds);
  rep.add("presence", o.presence, "presence (on, off, both)");
  rep.add_bool("join_leave", o.join_leave, "join_leave with presence");
  rep.add("server", o.herald.empty() ? o.url
                                     : "started: " + o.herald + " --workers " +
                                           std::to_string(o.server_workers));
  bool all_ok = true;
  for (int mi = 0; mi < 2; ++mi) {
    const auto& rs = results[mi];
    if (rs.empty()) continue;
    const std::string k = mi == 0 ? "on_" : "off_";
    const std::string l = mi == 0 ? "presence on: " : "presence off: ";
    auto med = [&](auto f) {
      std::vector<double> v;
      for (const auto& r : rs) v.push_back(f(r));
      return median(v);
    };
    auto sum = [&](auto f) {
      uint64_t s = 0;
      for (const auto& r : rs) s += f(r);
      return s;
    };
    rep.add(k + "p50_us", med([](const RunResult& r) { return us(r.latency.quantile(0.5)); }), 1,
            l + "publish -> receive p50", "us");
    rep.add(k + "p90_us", med([](const RunResult& r) { return us(r.latency.quantile(0.9)); }), 1,
            l + "p90", "us");
    rep.add(k + "p99_us", med([](const RunResult& r) { return us(r.latency.quantile(0.99)); }), 1,
            l + "p99", "us");
    rep.add(k + "p999_us", med([](const RunResult& r) { return us(r.latency.quantile(0.999)); }), 1,
            l + "p99.9", "us");
    rep.add(k + "max_us", med([](const RunResult& r) { return us(r.latency.max()); }), 1, l + "max",
            "us");
    rep.add(k + "ack_p99_us",
            med([](const RunResult& r) { return us(r.ack_latency.quantile(0.99)); }), 1,
            l + "publish -> ack p99", "us");
    rep.add(k + "publishes_per_sec", med([](const RunResult& r) { return r.publishes_per_sec; }), 0,
            l + "publishes/s (acked)");
    rep.add(k + "deliveries_per_sec", med([](const RunResult& r) { return r.deliveries_per_sec; }),
            0, l + "events received/s");
    rep.add_bool(k + "rate_held", sum([](const RunResult& r) { return r.rate_held ? 0 : 1; }) == 0,
                 l + "publish rate held (>= 95%)");
    rep.add(k + "churn_ops_per_sec", med([](const RunResult& r) { return r.churn_ops_per_sec; }), 0,
            l + "churn ops/s (replied)");
    rep.add(k + "subscribe_p99_us",
            med([](const RunResult& r) { return us(r.subscribe_latency.quantile(0.99)); }), 1,
            l + "churn subscribe -> subscribed p99", "us");
    rep.add(k + "unsubscribe_p99_us",
            med([](const RunResult& r) { return us(r.unsubscribe_latency.quantile(0.99)); }), 1,
            l + "churn unsubscribe -> unsubscribed p99", "us");
    rep.add(k + "ops_skipped", sum([](const RunResult& r) { return r.ops_skipped; }),
            l + "churn ops skipped (every churner busy)");
    rep.add(k + "join_leave_per_sec", med([](const RunResult& r) { return r.join_leave_per_sec; }),
            0, l + "join/leave received/s (churn)");
    rep.add(k + "joins", sum([](const RunResult& r) { return r.joins; }),
            l + "joins received (setup included)");
    rep.add(k + "leaves", sum([](const RunResult& r) { return r.leaves; }), l + "leaves received");
    rep.add(k + "join_leave_expected",
            sum([](const RunResult& r) { return r.join_leave_expected; }),
            l + "join + leave expected (bench's estimate)");
    rep.add(k + "setup_join_leave", sum([](const RunResult& r) { return r.setup_joins; }),
            l + "join/leave received before the churn");
    rep.add(k + "own_joins", sum([](const RunResult& r) { return r.own_joins; }),
            l + "own joins received");
    rep.add(k + "own_join_p50_us",
            med([](const RunResult& r) { return us(r.own_join_delay.quantile(0.5)); }), 1,
            l + "subscribed -> own join p50", "us");
    rep.add(k + "own_join_p99_us",
            med([](const RunResult& r) { return us(r.own_join_delay.quantile(0.99)); }), 1,
            l + "subscribed -> own join p99", "us");
    rep.add(k + "own_join_max_us",
            med([](const RunResult& r) { return us(r.own_join_delay.max()); }), 1,
            l + "subscribed -> own join max", "us");
    rep.add(k + "stale_joins", sum([](const RunResult& r) { return r.stale_joins; }),
            l + "joins of members already there before one subscribed");
    rep.add(k + "stale_leaves", sum([](const RunResult& r) { return r.stale_leaves; }),
            l + "leaves of members gone before one subscribed");
    rep.add(k + "connect_s", med([](const RunResult& r) { return r.connect_s; }), 2,
            l + "connect + subscribe all", "s");
    if (rs[0].rss_subscribed >= 0 && rs[0].rss_before >= 0) {
      rep.add(k + "rss_growth_bytes",
              med([](const RunResult& r) { return double(r.rss_subscribed - r.rss_before); }), 0,
              l + "server RSS growth, all subscribed", "bytes");
      rep.add(k + "rss_per_connection_bytes", med([&](const RunResult& r) {
                return double(r.rss_subscribed - r.rss_before) / double(o.connections);
              }),
              0, l + "server RSS growth per connection", "bytes");
    }
    rep.add(k + "presence_members_gauge",
            med([](const RunResult& r) { return r.members_gauge_subscribed; }), 0,
            l + "herald_presence_members, all subscribed (-1: absent)");
    rep.add(k + "presence_checked", sum([](const RunResult& r) { return r.channels_checked; }),
            l + "channels checked (presence-stats)");
    rep.add(k + "presence_mismatches", sum([](const RunResult& r) { return r.mismatches; }),
            l + "presence-stats mismatches");
    rep.add(k + "presence_list_mismatches",
            sum([](const RunResult& r) { return r.list_mismatches; }),
            l + "presence member lists unlike the bench's");
    rep.add(k + "presence_members_gauge_end",
            med([](const RunResult& r) { return r.members_gauge_end; }), 0,
            l + "herald_presence_members at the end (-1: absent)");
    rep.add(k + "subscriptions_gauge_end",
            med([](const RunResult& r) { return r.subscriptions_gauge_end; }), 0,
            l + "herald_subscriptions at the end (-1: absent)");
    rep.add(k + "members_bench", sum([](const RunResult& r) { return r.members_bench; }),
            l + "live subscriptions at the end (bench)");
    rep.add(k + "members_server", sum([](const RunResult& r) { return r.members_server; }),
            l + "clients at the end (presence-stats)");
    rep.add(k + "presence_stats_status",
            uint64_t(rs[0].presence_stats_status < 0 ? 0 : rs[0].presence_stats_status),
            l + "presence-stats HTTP status");
    rep.add(k + "lost", sum([](const RunResult& r) { return r.stable_lost; }),
            l + "lost (members that never churn)");
    rep.add(k + "reordered", sum([](const RunResult& r) { return r.reordered; }),
            l + "out of order or duplicated");
    rep.add(k + "violations", sum([](const RunResult& r) { return r.violations(); }),
            l + "contract violations (below)");
    rep.add(k + "errors", sum([](const RunResult& r) { return r.errors + r.malformed; }),
            l + "error replies, malformed events");
    rep.add(k + "unexpected_closes", sum([](const RunResult& r) { return r.unexpected_closes; }),
            l + "connections closed by the server");
    rep.add(k + "server_cpu_pct", med([](const RunResult& r) { return r.server_cpu_pct; }), 1,
            l + "server CPU (100 = 1 core)", "%");
    rep.add(k + "bench_cpu_pct", med([](const RunResult& r) { return r.bench_cpu_pct; }), 1,
            l + "bench CPU", "%");
    rep.add(k + "host_cpu_pct", med([](const RunResult& r) { return r.host_cpu_pct; }), 1,
            l + "host CPU, all processes", "%");
    rep.add(k + "server_runq_wait_pct", med([](const RunResult& r) { return r.server_runq_pct; }),
            1, l + "server threads waiting for a CPU", "% of the churn");
    rep.add(k + "bench_runq_wait_pct", med([](const RunResult& r) { return r.bench_runq_pct; }), 1,
            l + "bench waiting for a CPU", "% of the churn");
    bool ok = true;
    for (const auto& r : rs) ok &= r.ok;
    rep.add_bool(k + "ok", ok, l + "passed");
    all_ok &= ok;
    for (const auto& r : rs) {
      if (!r.first_error.empty()) {
        rep.add(k + "first_error", r.first_error);
        break;
      }
    }
    for (const auto& r : rs) {
      if (!r.first_stale.empty()) {
        rep.add(k + "first_stale", r.first_stale);
        break;
      }
    }
    for (const auto& r : rs) {
      if (!r.first_mismatch.empty()) {
        rep.add(k + "first_mismatch", r.first_mismatch);
        break;
      }
    }
  }
  if (!results[0].empty() && !results[1].empty()) {
    const size_t n = std::min(results[0].size(), results[1].size());
    auto ratio = [&](double q) {
      std::vector<double> v;
      for (size_t i = 0; i < n; ++i) {
        const double off = double(results[1][i].latency.quantile(q));
        if (off > 0) v.push_back(double(results[0][i].latency.quantile(q)) / off);
      }
      return median(v);
    };
    const double r99 = ratio(0.99);
    rep.add("p50_ratio", ratio(0.5), 3, "p50 presence on / off");
    rep.add("p99_ratio", r99, 3, "p99 presence on / off (target <= 1.2)");
    rep.add("p999_ratio", ratio(0.999), 3, "p99.9 presence on / off");
    rep.add_bool("p99_target_met", r99 <= 1.2, "p99 ratio <= 1.2");
    {
      // CPU moves less than latency on a shared machine.
      std::vector<double> v;
      for (size_t i = 0; i < n; ++i) {
        if (results[0][i].server_cpu_pct > 0 && results[1][i].server_cpu_pct > 0)
          v.push_back(results[0][i].server_cpu_pct / results[1][i].server_cpu_pct);
      }
      if (!v.empty()) rep.add("server_cpu_ratio", median(v), 3, "server CPU presence on / off");
    }
    std::vector<double> per_member;
    for (size_t i = 0; i < n; ++i) {
      const RunResult& on = results[0][i];
      const RunResult& off = results[1][i];
      if (on.rss_subscribed < 0 || on.rss_before < 0 || off.rss_subscribed < 0 ||
          off.rss_before < 0)
        continue;
      const double d =
          double((on.rss_subscribed - on.rss_before) - (off.rss_subscribed - off.rss_before));
      per_member.push_back(d / double(o.connections));
    }
    if (!per_member.empty())
      rep.add("presence_bytes_per_member", median(per_member), 0,
              "presence memory per member (RSS growth on - off, / members)", "bytes");
  }
  rep.add_bool("ok", all_ok, "passed");

  std::printf("%s\n", rep.json().c_str());
  std::printf("\nherald-bench churn  %s  (target herald)\n%s",
              o.herald.empty() ? o.url.c_str() : o.herald.c_str(), rep.table().c_str());
  std::printf("\n  runs (in the order run):\n");
  size_t idx[2] = {0, 0};
  for (const auto& [round, presence] : order) {
    const RunResult& r = results[presence ? 0 : 1][idx[presence ? 0 : 1]++];
    print_run(r, round, stdout);
    if (r.violations())
      std::printf(
          "    violations: events before subscribed %llu, events not subscribed %llu, join/leave "
          "before subscribed %llu, join/leave not subscribed %llu, join/leave with join_leave "
          "off %llu, own join missing %llu, own join again %llu, own leave %llu, malformed "
          "join/leave %llu, server unsubscribes %llu\n",
          static_cast<unsigned long long>(r.events_before_subscribed),
          static_cast<unsigned long long>(r.events_not_subscribed),
          static_cast<unsigned long long>(r.jl_before_subscribed),
          static_cast<unsigned long long>(r.jl_not_subscribed),
          static_cast<unsigned long long>(r.jl_unexpected),
          static_cast<unsigned long long>(r.own_join_missing),
          static_cast<unsigned long long>(r.own_join_unexpected),
          static_cast<unsigned long long>(r.own_leave),
          static_cast<unsigned long long>(r.jl_malformed),
          static_cast<unsigned long long>(r.server_unsubscribes));
    for (const auto& [why, n] : r.close_reasons)
      std::printf("    closed: %llu x %s\n", static_cast<unsigned long long>(n), why.c_str());
  }
  std::fflush(stdout);
  if (!all_ok)
    std::fprintf(stderr,
                 "herald-bench: FAILED (presence mismatches, violations, loss or errors above)\n");
  return all_ok ? kExitOk : kExitFailed;
}

}  // namespace herald::bench
