// Process metrics: counters, gauges and histograms kept per worker thread.
// GET /metrics renders the counters summed over workers and the gauges and
// histograms labelled by worker, in the Prometheus text format.
//
// Each worker writes only its own WorkerCounters, so a counter, gauge or
// histogram bucket is updated with a relaxed load and store (a plain add, no
// locked instruction on the hot path); readers on other threads see a recent
// value. The registry is process-wide, like a Prometheus client's default
// registry, so any layer can reach its worker's counters without plumbing.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace herald::metrics {

class Counter {
 public:
  // Only the owning worker's thread may call add().
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Only the owning worker's thread may call
// add(), sub() and set().
class Gauge {
 public:
  void add(int64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(int64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(int64_t n) { value_.store(n, std::memory_order_relaxed); }
  int64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A distribution over fixed buckets, as a Prometheus histogram: a value v
// falls into the first bucket whose upper bound is >= v (the `le` bound),
// else into the implicit +Inf bucket. Only the owning worker's thread may
// call observe(); the bounds never change after construction.
class Histogram {
 public:
  // Durations in seconds: 10 µs to 10 s in steps of 1, 2.5, 5 (19 bounds).
  static std::span<const double> latency_seconds();
  // Sizes in bytes: 64 B to 1 MiB, each 4 times the previous (8 bounds).
  static std::span<const double> size_bytes();

  // `upper_bounds`: finite and strictly increasing (checked; throws
  // std::invalid_argument otherwise), without +Inf, which is implicit.
  explicit Histogram(std::span<const double> upper_bounds);
  Histogram(std::initializer_list<double> upper_bounds)
      : Histogram(std::span<const double>(upper_bounds.begin(), upper_bounds.size())) {}

  // NaN is ignored (it would make the sum NaN for good).
  void observe(double v);

  std::span<const double> bounds() const { return bounds_; }

  // What a reader sees: per-bucket counts (not cumulative; the last one is
  // the +Inf bucket), their total and the sum of the values observed.
  // `count` is the total of the buckets as read, so that it always equals
  // the rendered +Inf bucket; `sum` may be a few observations ahead or
  // behind since nothing synchronizes with the writer.
  struct Snapshot {
    std::vector<uint64_t> buckets;  // bounds().size() + 1 entries
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// One backend hook's requests ([proxy], src/proxy/hooks.hpp) on one worker.
struct HookCounters {
  Counter requests;  // requests sent to the backend, or refused at the bound
  Counter errors;    // of those: timeouts, bound reached, transport failures, non-2xx, malformed
  Histogram seconds{Histogram::latency_seconds()};  // request to reply (or failure)
};

// The hooks, in the order of proxy::Hook; `hook` labels in /metrics.
inline constexpr const char* kHookNames[] = {"connect", "subscribe", "publish", "rpc", "refresh"};

// The hops of a publish, observed where each ends (`stage` labels in
// /metrics): to_owner on the channel's owner, to_worker and to_write on each
// worker with subscribers, ack on the worker that received the publish.
inline constexpr const char* kPublishStages[] = {"to_owner", "to_worker", "to_write", "ack"};
enum class PublishStage : size_t { to_owner, to_worker, to_write, ack };

struct WorkerCounters {
  Counter ws_opened;          // WebSocket handshakes completed
  Counter ws_closed;          // WebSocket connections finished
  Counter sse_opened;         // SSE streams accepted (GET /sse answered 200)
  Counter sse_closed;         // SSE streams finished
  Counter messages_received;  // WebSocket text messages from clients
  Counter publishes;          // publish requests accepted (WebSocket and HTTP)
  Counter deliveries;         // event frames queued to subscriber connections
  Counter frames_queued;      // all frames queued (events, replies, pings, closes)
  Counter writes;             // sendmsg calls (one carries many frames)
  Counter bytes_written;
  Counter frames_compressed;        // frames queued compressed (permessage-deflate)
  Counter compression_bytes_saved;  // bytes those frames are smaller than uncompressed
  Counter slow_consumer_closes;     // closed with 4008
  Counter protocol_closes;          // closed with 1002, 1003, 1007 or 1009
  Counter http_requests;
  Counter read_pauses;    // connections paused at limits.max_pending_requests
  Counter remote_events;  // events another node published, delivered by this owner (redis)
  Counter remote_resets;  // channels whose subscribers another node's destroy or a gap ended

  // Gauges, rendered per worker.
  Gauge subscriptions;     // active subscriptions held by this worker's connections
  Gauge channels;          // channels this worker owns that have subscribers
  Gauge presence_members;  // presence members this worker keeps as channel owner

  // Histograms, rendered per worker.
  // At the channel's owner: from a publish reaching the owner to its event
  // frame being handed to the workers with subscribers.
  Histogram publish_delivery_seconds{Histogram::latency_seconds()};
  Histogram engine_append_seconds{Histogram::latency_seconds()};  // ShardStore::append to callback
  Histogram history_read_seconds{Histogram::latency_seconds()};   // ShardStore::read to callback
  Histogram message_bytes{Histogram::size_bytes()};               // size of a publish's `data`
  // Indexed by PublishStage.
  std::array<Histogram, std::size(kPublishStages)> publish_stage_seconds{
      Histogram{Histogram::latency_seconds()}, Histogram{Histogram::latency_seconds()},
      Histogram{Histogram::latency_seconds()}, Histogram{Histogram::latency_seconds()}};
  Histogram& stage(PublishStage s) { return publish_stage_seconds[static_cast<size_t>(s)]; }

  // Backend hooks, indexed by proxy::Hook.
  std::array<HookCounters, std::size(kHookNames)> hooks;
};

class Registry {
 public:
  static Registry& global();
  // A new worker's counters; they live as long as the process. The server
  // registers its workers in index order, so the n-th registered is worker n
  // (the `worker` label of the rendered gauges and histograms).
  WorkerCounters& add_worker();
  // The counters of worker `index` (registered index-th); throws
  // std::out_of_range when there is no such worker. Thread-safe; the
  // reference stays valid, so callers may keep it.
  WorkerCounters& worker(size_t index);
  // Counters summed over workers, gauges and histograms labelled by worker,
  // in the Prometheus text format (version 0.0.4).
  std::string render() const;
  // WebSocket connections open now (handshakes completed minus finished).
  uint64_t open_connections() const;

 private:
  mutable std::mutex mutex_;  // guards registration, never the counters
  std::deque<WorkerCounters> workers_;
};

}  // namespace herald::metrics
