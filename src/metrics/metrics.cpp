// The metrics registry and its Prometheus rendering; see metrics.hpp.
#include "metrics/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

namespace herald::metrics {

namespace {

constexpr std::array<double, 19> kLatencySeconds = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};
constexpr std::array<double, 8> kSizeBytes = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};

// A sample value or an `le` bound as Prometheus (Go's strconv 'g', -1)
// writes it: the shortest form that reads back the same double.
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

}  // namespace

std::span<const double> Histogram::latency_seconds() {
  return kLatencySeconds;
}
std::span<const double> Histogram::size_bytes() {
  return kSizeBytes;
}

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) {
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
  }
}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // The first bound >= v; past the end is the +Inf bucket.
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  auto& bucket = counts_[i];
  bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.buckets.reserve(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    s.buckets.push_back(counts_[i].load(std::memory_order_relaxed));
    s.count += s.buckets.back();
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

WorkerCounters& Registry::add_worker() {
  std::lock_guard lock(mutex_);
  return workers_.emplace_back();
}

WorkerCounters& Registry::worker(size_t index) {
  std::lock_guard lock(mutex_);
  return workers_.at(index);
}

namespace {

// One histogram series: its cumulative buckets, sum and count, each line
// with `labels` (e.g. `worker="0"`) before `le`.
void render_series(std::string& out, std::string_view name, std::string_view labels,
                   const Histogram& hist) {
  const auto bounds = hist.bounds();
  const auto snap = hist.snapshot();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += snap.buckets[i];
    out +=
        fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, number(bounds[i]), cumulative);
  }
  out +=
      fmt::format("{0}_bucket{{{1},le=\"+Inf\"}} {2}\n{0}_sum{{{1}}} {3}\n{0}_count{{{1}}} {2}\n",
                  name, labels, snap.count, number(snap.sum));
}

// The publish path's hops (kPublishStages), per worker and stage.
void render_stages(const std::deque<WorkerCounters>& workers, std::string& out) {
  out +=
      "# HELP herald_publish_stage_seconds Seconds each hop of a publish takes: to_owner "
      "(receiving worker to the channel's owner), to_worker (owner to a worker with "
      "subscribers), to_write (frames queued to written at the end of the loop turn), ack "
      "(owner's result back to the receiving worker)\n"
      "# TYPE herald_publish_stage_seconds histogram\n";
  size_t index = 0;
  for (const auto& w : workers) {
    for (size_t s = 0; s < std::size(kPublishStages); ++s)
      render_series(out, "herald_publish_stage_seconds",
                    fmt::format("worker=\"{}\",stage=\"{}\"", index, kPublishStages[s]),
                    w.publish_stage_seconds[s]);
    ++index;
  }
}

// Backend hooks ([proxy]): counters summed over workers, the latency
// histogram per worker, each labelled by hook. Caller holds the registry's
// mutex.
void render_hooks(const std::deque<WorkerCounters>& workers, std::string& out) {
  const size_t hooks = std::size(kHookNames);
  out +=
      "# HELP herald_hook_requests_total Requests to the app backend's hooks (refusals at "
      "proxy.max_concurrent included)\n# TYPE herald_hook_requests_total counter\n";
  for (size_t h = 0; h < hooks; ++h) {
    uint64_t sum = 0;
    for (const auto& w : workers) sum += w.hooks[h].requests.get();
    out += fmt::format("herald_hook_requests_total{{hook=\"{}\"}} {}\n", kHookNames[h], sum);
  }
  out +=
      "# HELP herald_hook_errors_total Hook requests that failed: timeout, max_concurrent "
      "reached, backend unreachable, non-2xx or malformed reply\n"
      "# TYPE herald_hook_errors_total counter\n";
  for (size_t h = 0; h < hooks; ++h) {
    uint64_t sum = 0;
    for (const auto& w : workers) sum += w.hooks[h].errors.get();
    out += fmt::format("herald_hook_errors_total{{hook=\"{}\"}} {}\n", kHookNames[h], sum);
  }
  out +=
      "# HELP herald_hook_seconds Seconds from a hook request to its reply or failure\n"
      "# TYPE herald_hook_seconds histogram\n";
  size_t index = 0;
  for (const auto& w : workers) {
    for (size_t h = 0; h < hooks; ++h) {
      if (w.hooks[h].seconds.snapshot().count == 0) continue;  // most hooks are off
      render_series(out, "herald_hook_seconds",
                    fmt::format("worker=\"{}\",hook=\"{}\"", index, kHookNames[h]),
                    w.hooks[h].seconds);
    }
    ++index;
  }
}

}  // namespace

std::string Registry::render() const {
  struct Row {
    const char* name;
    const char* type;
    const char* help;
    Counter WorkerCounters::*counter;
  };
  static constexpr Row kRows[] = {
      {"herald_ws_connections_opened_total", "counter", "WebSocket handshakes completed",
       &WorkerCounters::ws_opened},
      {"herald_ws_connections_closed_total", "counter", "WebSocket connections finished",
       &WorkerCounters::ws_closed},
      {"herald_sse_connections_opened_total", "counter", "SSE streams accepted (GET /sse)",
       &WorkerCounters::sse_opened},
      {"herald_sse_connections_closed_total", "counter", "SSE streams finished",
       &WorkerCounters::sse_closed},
      {"herald_ws_messages_received_total", "counter", "WebSocket messages received from clients",
       &WorkerCounters::messages_received},
      {"herald_publishes_total", "counter", "Publish requests accepted (WebSocket and HTTP)",
       &WorkerCounters::publishes},
      {"herald_deliveries_total", "counter", "Event frames queued to subscriber connections",
       &WorkerCounters::deliveries},
      {"herald_frames_queued_total", "counter", "WebSocket frames queued (events, replies, pings)",
       &WorkerCounters::frames_queued},
      {"herald_socket_writes_total", "counter", "sendmsg calls; each carries every frame queued",
       &WorkerCounters::writes},
      {"herald_bytes_written_total", "counter", "Bytes written to WebSocket connections",
       &WorkerCounters::bytes_written},
      {"herald_frames_compressed_total", "counter",
       "Frames queued compressed to connections that negotiated permessage-deflate",
       &WorkerCounters::frames_compressed},
      {"herald_compression_bytes_saved_total", "counter",
       "Bytes the compressed frames saved on the wire against their uncompressed form",
       &WorkerCounters::compression_bytes_saved},
      {"herald_slow_consumer_closes_total", "counter", "Connections closed with 4008",
       &WorkerCounters::slow_consumer_closes},
      {"herald_protocol_closes_total", "counter",
       "Connections closed for WebSocket protocol violations (1002, 1003, 1007, 1009)",
       &WorkerCounters::protocol_closes},
      {"herald_http_requests_total", "counter", "HTTP requests answered (not upgrades)",
       &WorkerCounters::http_requests},
      {"herald_read_pauses_total", "counter",
       "Times a connection stopped being read at limits.max_pending_requests",
       &WorkerCounters::read_pauses},
      {"herald_remote_events_total", "counter",
       "Events published on other nodes (engine redis) delivered by this node's channel owners",
       &WorkerCounters::remote_events},
      {"herald_remote_resets_total", "counter",
       "Channels whose subscribers on this node were ended by another node's destroy or expiry, "
       "or told to resubscribe after a gap (engine redis)",
       &WorkerCounters::remote_resets},
  };
  struct GaugeRow {
    const char* name;
    const char* help;
    Gauge WorkerCounters::*gauge;
  };
  static constexpr GaugeRow kGauges[] = {
      {"herald_subscriptions", "Active subscriptions held by the worker's connections",
       &WorkerCounters::subscriptions},
      {"herald_channels", "Channels owned by the worker that have subscribers",
       &WorkerCounters::channels},
      {"herald_presence_members", "Presence members kept by the worker as channel owner",
       &WorkerCounters::presence_members},
  };
  struct HistogramRow {
    const char* name;
    const char* help;
    Histogram WorkerCounters::*histogram;
  };
  static constexpr HistogramRow kHistograms[] = {
      {"herald_publish_delivery_seconds",
       "Seconds from a publish reaching the channel's owner to its event being handed to the "
       "workers with subscribers",
       &WorkerCounters::publish_delivery_seconds},
      {"herald_engine_append_seconds",
       "Seconds from a history engine append being called to its callback",
       &WorkerCounters::engine_append_seconds},
      {"herald_history_read_seconds",
       "Seconds from a history engine read being called to its callback",
       &WorkerCounters::history_read_seconds},
      {"herald_message_bytes", "Size in bytes of the data of publish requests",
       &WorkerCounters::message_bytes},
  };

  std::lock_guard lock(mutex_);
  std::string out;
  uint64_t opened = 0, closed = 0, sse_opened = 0, sse_closed = 0;
  for (const auto& row : kRows) {
    uint64_t sum = 0;
    for (const auto& w : workers_) sum += (w.*row.counter).get();
    if (row.counter == &WorkerCounters::ws_opened) opened = sum;
    if (row.counter == &WorkerCounters::ws_closed) closed = sum;
    if (row.counter == &WorkerCounters::sse_opened) sse_opened = sum;
    if (row.counter == &WorkerCounters::sse_closed) sse_closed = sum;
    out +=
        fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", row.name, row.help, row.type, sum);
  }
  out += fmt::format(
      "# HELP herald_ws_connections Open WebSocket connections\n"
      "# TYPE herald_ws_connections gauge\nherald_ws_connections {}\n",
      opened >= closed ? opened - closed : 0);
  out += fmt::format(
      "# HELP herald_sse_connections Open SSE streams\n"
      "# TYPE herald_sse_connections gauge\nherald_sse_connections {}\n",
      sse_opened >= sse_closed ? sse_opened - sse_closed : 0);
  out += fmt::format(
      "# HELP herald_workers Worker threads\n# TYPE herald_workers gauge\n"
      "herald_workers {}\n",
      workers_.size());

  for (const auto& row : kGauges) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n", row.name, row.help);
    size_t index = 0;
    for (const auto& w : workers_) {
      out += fmt::format("{}{{worker=\"{}\"}} {}\n", row.name, index++, (w.*row.gauge).get());
    }
  }
  render_hooks(workers_, out);
  for (const auto& row : kHistograms) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", row.name, row.help);
    size_t index = 0;
    for (const auto& w : workers_)
      render_series(out, row.name, fmt::format("worker=\"{}\"", index++), w.*row.histogram);
  }
  render_stages(workers_, out);
  return out;
}

uint64_t Registry::open_connections() const {
  std::lock_guard lock(mutex_);
  uint64_t opened = 0, closed = 0;
  for (const auto& w : workers_) {
    opened += w.ws_opened.get() + w.sse_opened.get();
    closed += w.ws_closed.get() + w.sse_closed.get();
  }
  return opened >= closed ? opened - closed : 0;
}

}  // namespace herald::metrics
