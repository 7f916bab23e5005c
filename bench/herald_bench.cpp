// herald-bench: load generator for Herald speaking protocol v1 over
// WebSocket. This file is the command line: it parses options, raises
// RLIMIT_NOFILE and runs the chosen scenario (see scenario.hpp: fanout and
// rooms in pubsub.cpp, connect and idle in conns.cpp, selftest). Usage and
// the command-line contract: bench/README.md.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "scenario.hpp"

namespace herald::bench {
namespace {

struct ScenarioEntry {
  const char* name;
  const char* summary;
  int (*run)(const Options&);
  const char* options;  // the scenario's own options, besides the common ones
};

constexpr const char* kCommonOptions =
    " --url --target --smoke --no-progress --server-pid --duration-limit --connect-concurrency "
    "--handshake-timeout ";

constexpr ScenarioEntry kScenarios[] = {
    {"fanout", "S subscribers on one channel, P publishers publishing M messages to it",
     &run_fanout,
     " --subscribers --publishers --messages --size --window --rate --duration --channel "
     "--drain-timeout --token-file --connect-first --pipeline-connect --idempotency-keys "
     "--subscriber-urls "},
    {"rooms", "K channels x S subscribers, a total publish rate spread over the channels",
     &run_rooms,
     " --rooms --subscribers-per-room --publishers --messages --size --window --rate --duration "
     "--spread "
     "--drain-timeout --token-file --connect-first --pipeline-connect --idempotency-keys "
     "--subscriber-urls "},
    {"connect", "C connections opened as fast as possible, each subscribing to its own channel",
     &run_connect, " --connections --token-file --connect-first --pipeline-connect "},
    {"idle", "C connections each subscribed to its own channel: server RSS per connection",
     &run_idle,
     " --connections --settle --warmup --events --size --token-file --connect-first "
     "--pipeline-connect "},
    {"history", "latency of `history` requests for the newest L of E stored events", &run_history,
     " --connections --requests --stored --limit --size --window --channel "},
    {"churn",
     "N connections on C channels, a churning set (un)subscribing, a fan-out: presence cost",
     &run_churn,
     " --connections --channels --churners --churn-rate --rate --publishers --size --window "
     "--duration --settle --drain-timeout --channel --presence --join-leave --herald "
     "--server-workers --api-key --rounds "},
    {"soak",
     "N connections kept open while some drop (RST, FIN, close) and reconnect: server RSS, fds",
     &run_soak,
     " --connections --channels --rate --churn-rate --size --duration --settle --rss-window "
     "--rss-margin --channel --api-key "},
    {"selftest", "checks the bench's own WebSocket client and NATS parser (no server needed)",
     &run_selftest, " "},
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: herald-bench <scenario> [options]\n\n"
               "scenarios:\n");
  for (const auto& s : kScenarios) std::fprintf(f, "  %-10s %s\n", s.name, s.summary);
  std::fprintf(
      f,
      "\ncommon options (defaults in brackets):\n"
      "  --url URL                 ws://IPv4-or-localhost:port/path [ws://127.0.0.1:8080/ws]\n"
      "  --target T                herald (Herald and Herald-protocol peers), nats (nats-server's\n"
      "                            WebSocket port), raw (herald-rawtcp-peer) [herald]\n"
      "  --duration-limit T        global deadline for the whole run, e.g. 60s, 500ms, 2m [60s]\n"
      "  --connect-concurrency N   connections being set up at once [200; connect/idle 256]\n"
      "  --handshake-timeout T     per connection: connect + upgrade + ready + subscribed [10s]\n"
      "  --server-pid PID          fanout/rooms: server CPU use; idle: whose RSS to read\n"
      "  --no-progress             no progress lines on stderr\n"
      "  --smoke                   tiny preset of the scenario (~1 s); explicit options still "
      "apply\n"
      "fanout:\n"
      "  --subscribers N           subscriber connections [1000]\n"
      "  --publishers N            publisher connections [1]\n"
      "  --messages N              publishes in total, split between publishers [200000]\n"
      "  --size BYTES              size of each publish's data object [100]\n"
      "  --window N                unacknowledged publishes per publisher [64]\n"
      "  --rate N                  publishes/s over all publishers, 0 = as fast as acks allow [0]\n"
      "  --duration T              with --rate: messages = rate x duration; at max rate:\n"
      "                            publish for T (--messages then only caps the count)\n"
      "  --channel NAME            channel to use [bench:fanout]\n"
      "  --drain-timeout T         how long to wait for deliveries after the last ack [5s]\n"
      "  --subscriber-urls U,U,..  fanout/rooms: subscriber i connects to the (i mod n)-th URL\n"
      "                            (nodes of one cluster; publishers stay on --url) [--url]\n"
      "rooms:\n"
      "  --rooms K                 channels bench:room:0..K-1 [1000]\n"
      "  --subscribers-per-room S  subscribers of each room [10]\n"
      "  --publishers N            publisher connections [4]\n"
      "  --rate N                  publishes/s in total over all rooms [5000]\n"
      "  --duration T              publish for this long: messages = rate x duration [5s]\n"
      "  --messages N              instead of --duration\n"
      "  --spread roundrobin|random  which room each publish goes to [roundrobin]\n"
      "  --size, --window, --drain-timeout as for fanout\n"
      "connect, idle:\n"
      "  --connections C           connections, each subscribing to its own channel [10000]\n"
      "  --settle T                idle: wait with all open before reading the RSS again [2s]\n"
      "  --warmup N                idle: connections opened before the baseline RSS is read, so\n"
      "                            one-time costs are not counted per connection [100]\n"
      "  --events N                idle: each connection then publishes N events (--size bytes)\n"
      "                            to its channel and receives them, so every channel holds\n"
      "                            N events while the RSS is read [0]\n"
      "connect, idle, fanout, rooms (Herald target only):\n"
      "  --token-file FILE         JWTs, one a line: connection i first sends\n"
      "                            {\"type\":\"connect\",\"id\":N,\"token\":<line i %% lines>} and "
      "is\n"
      "                            ready (subscribes, publishes) once `connected` arrived\n"
      "                            (fanout/rooms: subscribers 0..S-1, then publishers S..S+P-1)\n"
      "  --connect-first           the same `connect` without a token (anonymous)\n"
      "  --pipeline-connect        with either: subscribe/publish right after `connect`, in the\n"
      "                            same write, without waiting for `connected`\n"
      "fanout, rooms (Herald target only):\n"
      "  --idempotency-keys        every publish carries a unique idempotency_key\n"
      "                            (<run prefix>-<publisher>-<id>); a `replayed` ack fails the "
      "run\n"
      "history (Herald only):\n"
      "  --stored E                events published to a fresh channel <--channel>:<time> first "
      "[1000]\n"
      "  --limit L                 events asked for by each history request [100]\n"
      "  --requests R              history requests in total [20000]\n"
      "  --connections C           connections, one request outstanding each [4]\n"
      "  --size, --window          of the stored events, as for fanout [100, 64]\n"
      "  --channel NAME            channel prefix [bench:history]\n"
      "churn (Herald only; see bench/README.md):\n"
      "  --connections N           members, each subscribed to <channel>:<i mod C> [10000]\n"
      "  --channels C              channels <channel>:0..C-1 [100]\n"
      "  --churners K              members 0..K-1 unsubscribe / resubscribe elsewhere [1000]\n"
      "  --churn-rate R            subscribes + unsubscribes per second in total [2000]\n"
      "  --rate N                  publishes/s in total, round-robin over the channels; 0 = no\n"
      "                            fan-out [2000]\n"
      "  --publishers, --size, --window  as for fanout [1, 100, 1024]\n"
      "  --duration T              churn + fan-out for T [30s]\n"
      "  --settle T                wait with all subscribed before the RSS and the churn [2s]\n"
      "  --channel NAME            namespace of the channels [churn]\n"
      "  --herald BIN              start BIN serve per run (free port, temporary config, memory\n"
      "                            engine) instead of --url; its pid gives RSS and CPU\n"
      "  --presence on|off|both    how the namespace is set [both with --herald, else on]\n"
      "  --join-leave on|off       join_leave together with presence [on]\n"
      "  --server-workers N        --workers of the started herald [2]\n"
      "  --rounds N                runs of each mode, in alternating order [1]\n"
      "  --api-key KEY             for the presence-stats requests to a --url server\n"
      "  --duration-limit T        applies to each run [duration + 90s]\n"
      "soak (Herald only; needs --server-pid; see bench/README.md):\n"
      "  --connections N           members kept open, each on <channel>:<i mod C> [1000]\n"
      "  --channels C              channels [20]\n"
      "  --rate N                  publishes/s in total, from subscribed members [500]\n"
      "  --churn-rate R            members dropped (then reconnected) per second [100]\n"
      "  --duration T              how long [60s]\n"
      "  --settle T                warm-up: the RSS window starts after it [30s]\n"
      "  --rss-window T            RSS windows compared: after the warm-up, and the last [15s]\n"
      "  --rss-margin PCT          the last window's median RSS may exceed the first's by [10]\n"
      "  --channel NAME            channel prefix [soak]\n"
      "\nOutput: one JSON line on stdout, then a table. Exit code 0 when every\n"
      "message arrived once and in order (connect/idle: every connection\n"
      "subscribed), 1 when not (or on errors/timeouts), 2 on bad arguments or\n"
      "when the connections could not be set up.\n");
}

bool parse_uint(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "60s", "500ms", "2m", "1.5s", "100us", or a bare number of seconds.
bool parse_duration(std::string_view s, uint64_t& ns) {
  double mult = 1e9;
  auto strip = [&](std::string_view suffix, double m) {
    if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
      s.remove_suffix(suffix.size());
      mult = m;
      return true;
    }
    return false;
  };
  strip("ms", 1e6) || strip("us", 1e3) || strip("ns", 1.0) || strip("s", 1e9) || strip("m", 60e9) ||
      strip("h", 3600e9);
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 0 || v > 1e7) return false;
  ns = static_cast<uint64_t>(v * mult);
  return true;
}

// Reads one token a line (a trailing '\r' is dropped; an empty last line is
// the file's final newline). Tokens go into JSON strings unescaped, so only
// base64url characters and dots are accepted.
bool read_tokens(const std::string& path, std::vector<std::string>& out, std::string& err) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    err = std::strerror(errno);
    return false;
  }
  std::string text;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) {
    err = "read error";
    return false;
  }
  out.clear();
  size_t line = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view t(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (!t.empty() && t.back() == '\r') t.remove_suffix(1);
    if (t.empty() || t.size() > 65536) {
      err = "line " + std::to_string(line) + ": empty or longer than 64 KiB";
      return false;
    }
    for (const char ch : t) {
      const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
      if (!ok) {
        err = "line " + std::to_string(line) + ": not a compact JWS (base64url and '.' only)";
        return false;
      }
    }
    out.emplace_back(t);
  }
  if (out.empty()) {
    err = "no token";
    return false;
  }
  return true;
}

struct Flag {
  const char* name;
  std::function<bool(std::string_view)> set;  // null: a switch without value
  std::function<void()> on;
};

// Defaults that differ from Options' (fanout's), then the --smoke preset.
void scenario_defaults(Options& o, bool smoke) {
  if (o.scenario == "rooms") {
    o.publishers = 4;
    o.rate = 5000;
    o.duration_ns = 5'000'000'000;
  } else if (o.scenario == "connect" || o.scenario == "idle") {
    o.connect_concurrency = 256;
  } else if (o.scenario == "history") {
    o.connections = 4;
    o.channel = "bench:history";
  } else if (o.scenario == "churn") {
    o.connect_concurrency = 256;
    // 0.5 s of publishes at 2,000/s: the rate holds through latency spikes,
    // so both modes get the same offered load.
    o.window = 1024;
    o.rate = 2000;
    o.duration_ns = 30'000'000'000;
    o.channel = "churn";
  } else if (o.scenario == "soak") {
    // 60 s in CI: the warm-up covers the filling of history (20 channels x
    // the sqlite engine's hot window of 256 events at 500/s: 10 s) and of
    // the allocator's arenas (RSS flat from ~45 s on, bench/README.md).
    o.connections = 1000;
    o.channels = 20;
    o.rate = 500;
    o.churn_rate = 100;
    o.duration_ns = 60'000'000'000;
    o.settle_ns = 30'000'000'000;
    o.window_ns = 15'000'000'000;
    o.channel = "soak";
  }
  if (!smoke) return;
  o.smoke = true;
  o.duration_limit_ns = 10'000'000'000;
  o.drain_timeout_ns = 2'000'000'000;
  if (o.scenario == "fanout") {
    o.subscribers = 20;
    o.publishers = 1;
    o.messages = 200;
    o.window = 16;
  } else if (o.scenario == "rooms") {
    o.rooms = 4;
    o.subscribers_per_room = 5;
    o.publishers = 2;
    o.rate = 400;
    o.duration_ns = 1'000'000'000;
    o.window = 16;
  } else if (o.scenario == "connect") {
    o.connections = 200;
  } else if (o.scenario == "idle") {
    o.connections = 200;
    o.settle_ns = 500'000'000;
  } else if (o.scenario == "history") {
    o.connections = 2;
    o.stored = 150;
    o.requests = 200;
  } else if (o.scenario == "soak") {
    o.connections = 100;
    o.channels = 10;
    o.rate = 200;
    o.churn_rate = 50;
    o.duration_ns = 6'000'000'000;
    o.settle_ns = 2'000'000'000;
    o.window_ns = 2'000'000'000;
  } else if (o.scenario == "churn") {
    o.connections = 200;
    o.channels = 4;
    o.churners = 40;
    o.churn_rate = 200;
    o.rate = 200;
    o.duration_ns = 2'000'000'000;
    o.settle_ns = 300'000'000;
    o.window = 16;
  }
}

int main_impl(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  Options o;
  o.scenario = argv[1];
  const ScenarioEntry* entry = nullptr;
  for (const auto& s : kScenarios) {
    if (o.scenario == s.name) entry = &s;
  }
  if (!entry) {
    std::fprintf(stderr, "herald-bench: unknown scenario '%s'\n\n", argv[1]);
    usage(stderr);
    return kExitUsage;
  }

  // --smoke sets small defaults; every explicit option wins over it,
  // wherever it is on the line.
  bool smoke = false;
  for (int i = 2; i < argc; ++i) smoke |= std::strcmp(argv[i], "--smoke") == 0;
  scenario_defaults(o, smoke);

  auto num = [](uint64_t& dst, uint64_t lo, uint64_t hi) {
    return [&dst, lo, hi](std::string_view v) {
      uint64_t x;
      if (!parse_uint(v, x) || x < lo || x > hi) return false;
      dst = x;
      return true;
    };
  };
  auto dur = [](uint64_t& dst, uint64_t lo_ns) {
    return [&dst, lo_ns](std::string_view v) {
      uint64_t x;
      if (!parse_duration(v, x) || x < lo_ns) return false;
      dst = x;
      return true;
    };
  };
  auto str = [](std::string& dst) {
    return [&dst](std::string_view v) {
      dst = std::string(v);
      return !v.empty();
    };
  };
  const std::vector<Flag> flags = {
      {"--url", str(o.url), {}},
      {"--subscriber-urls",
       [&](std::string_view v) {
         o.subscriber_urls.clear();
         while (!v.empty()) {
           const size_t comma = v.find(',');
           const std::string_view u = v.substr(0, comma);
           if (u.empty()) return false;
           o.subscriber_urls.emplace_back(u);
           v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
           if (comma != std::string_view::npos && v.empty()) return false;
         }
         return !o.subscriber_urls.empty();
       },
       {}},
      {"--target", [&](std::string_view v) { return parse_target(v, o.target); }, {}},
      {"--channel", str(o.channel), {}},
      {"--subscribers", num(o.subscribers, 1, 1'000'000), {}},
      {"--publishers", num(o.publishers, 1, 10'000), {}},
      {"--messages", num(o.messages, 1, 1'000'000'000), {}},
      {"--size", num(o.size, 0, 16'000'000), {}},
      {"--window", num(o.window, 1, 1'000'000), {}},
      {"--rate", num(o.rate, 0, 100'000'000), {}},
      {"--duration", dur(o.duration_ns, 1'000'000), {}},
      {"--rooms", num(o.rooms, 1, 1'000'000), {}},
      {"--subscribers-per-room", num(o.subscribers_per_room, 1, 1'000'000), {}},
      {"--spread",
       [&](std::string_view v) {
         if (v != "roundrobin" && v != "random") return false;
         o.spread_random = v == "random";
         return true;
       },
       {}},
      {"--connections", num(o.connections, 1, 1'000'000), {}},
      {"--requests", num(o.requests, 1, 1'000'000'000), {}},
      {"--stored", num(o.stored, 1, 100'000'000), {}},
      {"--limit", num(o.limit, 1, 100'000), {}},
      {"--settle", dur(o.settle_ns, 0), {}},
      {"--warmup", num(o.warmup, 0, 100'000), {}},
      {"--events", num(o.events_per_channel, 0, 1000), {}},
      {"--duration-limit", dur(o.duration_limit_ns, 1'000'000), {}},
      {"--drain-timeout", dur(o.drain_timeout_ns, 0), {}},
      {"--connect-concurrency", num(o.connect_concurrency, 1, 100'000), {}},
      {"--handshake-timeout", dur(o.handshake_timeout_ns, 1'000'000), {}},
      {"--server-pid", num(o.server_pid, 1, 1u << 30), {}},
      {"--no-progress", {}, [&] { o.progress = false; }},
      {"--token-file", str(o.token_file), {}},
      {"--connect-first", {}, [&] { o.connect_first = true; }},
      {"--pipeline-connect", {}, [&] { o.pipeline_connect = true; }},
      {"--idempotency-keys", {}, [&] { o.idempotency_keys = true; }},
      {"--channels", num(o.channels, 1, 1'000'000), {}},
      {"--churners", num(o.churners, 0, 1'000'000), {}},
      {"--churn-rate", num(o.churn_rate, 0, 10'000'000), {}},
      {"--presence",
       [&](std::string_view v) {
         if (v != "on" && v != "off" && v != "both") return false;
         o.presence = std::string(v);
         return true;
       },
       {}},
      {"--join-leave",
       [&](std::string_view v) {
         if (v != "on" && v != "off") return false;
         o.join_leave = v == "on";
         return true;
       },
       {}},
      {"--herald", str(o.herald), {}},
      {"--server-workers", num(o.server_workers, 1, 256), {}},
      {"--api-key", str(o.api_key), {}},
      {"--rounds", num(o.rounds, 1, 100), {}},
      {"--rss-window", dur(o.window_ns, 1'000'000'000), {}},
      {"--rss-margin", num(o.rss_margin_pct, 0, 1000), {}},
      {"--smoke", {}, [] {}},
  };
  std::set<std::string> given;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return kExitOk;
    }
    std::string_view value;
    bool has_value = false;
    if (const size_t eq = a.find('='); eq != std::string_view::npos && a.starts_with("--")) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    const Flag* f = nullptr;
    for (const auto& fl : flags) {
      if (a == fl.name) f = &fl;
    }
    if (!f) {
      std::fprintf(stderr, "herald-bench: unknown option '%s' (see --help)\n", argv[i]);
      return kExitUsage;
    }
    const std::string padded = " " + std::string(a) + " ";
    if (std::string_view(kCommonOptions).find(padded) == std::string_view::npos &&
        std::string_view(entry->options).find(padded) == std::string_view::npos) {
      std::fprintf(stderr, "herald-bench: %s does not apply to scenario %s (see --help)\n", f->name,
                   entry->name);
      return kExitUsage;
    }
    given.insert(f->name);
    if (!f->set) {
      if (has_value) {
        std::fprintf(stderr, "herald-bench: %s takes no value\n", f->name);
        return kExitUsage;
      }
      f->on();
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "herald-bench: %s needs a value\n", f->name);
        return kExitUsage;
      }
      value = argv[++i];
    }
    if (!f->set(value)) {
      std::fprintf(stderr, "herald-bench: bad value for %s: '%.*s'\n", f->name, int(value.size()),
                   value.data());
      return kExitUsage;
    }
  }
  for (const char ch : o.channel) {
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) <= 0x20) {
      std::fprintf(stderr,
                   "herald-bench: --channel must not contain quotes, backslashes, spaces or "
                   "control characters\n");
      return kExitUsage;
    }
  }
  const bool pubsub = o.scenario == "fanout" || o.scenario == "rooms";
  if (pubsub) {
    // --duration: at a fixed rate, messages = rate x duration (fanout when
    // --duration is given, rooms unless --messages is); at max rate, publish
    // for that long (--messages, if given, caps the count).
    const bool duration_given = given.count("--duration") > 0;
    const bool messages_given = given.count("--messages") > 0;
    if (o.rate == 0 && (duration_given || (o.scenario == "rooms" && !messages_given))) {
      o.timed_publish = true;
      if (!messages_given) o.messages = 1'000'000'000;
    } else if (duration_given || (o.scenario == "rooms" && !messages_given)) {
      if (messages_given) {
        std::fprintf(stderr,
                     "herald-bench: with --rate, give --messages or --duration, not both\n");
        return kExitUsage;
      }
      const double m = double(o.rate) * double(o.duration_ns) / 1e9;
      o.messages = std::max<uint64_t>(1, static_cast<uint64_t>(m + 0.5));
    }
    if (o.messages < o.publishers) {
      std::fprintf(stderr, "herald-bench: --messages must be at least --publishers\n");
      return kExitUsage;
    }
  }
  if (o.pipeline_connect && o.token_file.empty() && !o.connect_first) {
    std::fprintf(stderr,
                 "herald-bench: --pipeline-connect needs --token-file or --connect-first\n");
    return kExitUsage;
  }
  if (!o.token_file.empty() || o.connect_first) {
    if (o.target != Target::herald) {
      std::fprintf(stderr, "herald-bench: --token-file and --connect-first need --target herald\n");
      return kExitUsage;
    }
    std::string err;
    if (!o.token_file.empty() && !read_tokens(o.token_file, o.tokens, err)) {
      std::fprintf(stderr, "herald-bench: --token-file %s: %s\n", o.token_file.c_str(),
                   err.c_str());
      return kExitUsage;
    }
  }
  if (o.idempotency_keys && o.target != Target::herald) {
    std::fprintf(stderr, "herald-bench: --idempotency-keys needs --target herald\n");
    return kExitUsage;
  }
  if (o.scenario == "churn") {
    for (const char ch : o.channel) {
      const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
      if (!ok) {
        std::fprintf(stderr,
                     "herald-bench: churn: --channel is a namespace name (letters, digits, _ -)\n");
        return kExitUsage;
      }
    }
    if (o.presence.empty()) o.presence = o.herald.empty() ? "on" : "both";
    if (!o.herald.empty() && given.count("--url")) {
      std::fprintf(stderr, "herald-bench: give --url or --herald, not both\n");
      return kExitUsage;
    }
    if (!o.herald.empty() && given.count("--server-pid")) {
      std::fprintf(stderr, "herald-bench: --server-pid comes with --url (--herald knows it)\n");
      return kExitUsage;
    }
    if (!o.herald.empty() && ::access(o.herald.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "herald-bench: --herald %s: not an executable\n", o.herald.c_str());
      return kExitUsage;
    }
    for (const char ch : o.api_key) {
      if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
        std::fprintf(stderr, "herald-bench: --api-key must not contain spaces or controls\n");
        return kExitUsage;
      }
    }
    // Per run: the connections, the churn and the drain.
    if (!given.count("--duration-limit"))
      o.duration_limit_ns = o.duration_ns + (o.smoke ? 20'000'000'000ull : 90'000'000'000ull);
  }
  if (o.scenario == "idle" && !o.server_pid && !o.smoke) {
    std::fprintf(stderr, "herald-bench: idle needs --server-pid (the server whose RSS to read)\n");
    return kExitUsage;
  }

  uint64_t conns = 0;
  if (o.scenario == "fanout") conns = o.subscribers + o.publishers;
  if (o.scenario == "rooms") conns = o.rooms * o.subscribers_per_room + o.publishers;
  if (o.scenario == "connect") conns = o.connections;
  if (o.scenario == "idle") conns = o.connections + o.warmup;
  if (o.scenario == "history") conns = o.connections + 1;
  if (o.scenario == "soak") conns = o.connections;
  // churn: a started herald inherits the limit, and needs one descriptor per
  // connection too, plus its own (epoll, eventfds, engine).
  if (o.scenario == "churn") conns = o.connections + o.publishers + (o.herald.empty() ? 0 : 1024);
  if (conns > 2'000'000) {
    std::fprintf(stderr, "herald-bench: too many connections (%llu)\n",
                 static_cast<unsigned long long>(conns));
    return kExitUsage;
  }
  // One descriptor per connection plus a margin for the process itself.
  const rlim_t need = static_cast<rlim_t>(conns + 64);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
    rlimit want = rl;
    want.rlim_cur = need;
    if (want.rlim_max != RLIM_INFINITY && want.rlim_max < need) want.rlim_max = need;
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
      // Not allowed to raise the hard limit: take what it allows.
      want.rlim_max = rl.rlim_max;
      want.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &want);
      getrlimit(RLIMIT_NOFILE, &rl);
      if (rl.rlim_cur < need) {
        std::fprintf(stderr,
                     "herald-bench: needs %llu file descriptors but RLIMIT_NOFILE allows %llu "
                     "(raise it with ulimit -n)\n",
                     static_cast<unsigned long long>(need),
                     static_cast<unsigned long long>(rl.rlim_cur));
        return kExitUsage;
      }
    }
  }
  return entry->run(o);
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  try {
    return herald::bench::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herald-bench: %s\n", e.what());
    return herald::bench::kExitUsage;
  }
}
