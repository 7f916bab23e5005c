// Process metrics: counters kept per worker thread and summed when
// GET /metrics renders them in the Prometheus text format.
//
// Each worker writes only its own WorkerCounters, so a counter is bumped
// with a relaxed load and store (a plain add, no locked instruction on the
// hot path); readers on other threads see a recent value. The registry is
// process-wide, like a Prometheus client's default registry, so any layer
// can reach its worker's counters without plumbing.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

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

struct WorkerCounters {
  Counter ws_opened;          // WebSocket handshakes completed
  Counter ws_closed;          // WebSocket connections finished
  Counter messages_received;  // WebSocket text messages from clients
  Counter publishes;          // publish requests accepted (WebSocket and HTTP)
  Counter deliveries;         // event frames queued to subscriber connections
  Counter frames_queued;      // all frames queued (events, replies, pings, closes)
  Counter writes;             // sendmsg calls (one carries many frames)
  Counter bytes_written;
  Counter slow_consumer_closes;  // closed with 4008
  Counter protocol_closes;       // closed with 1002, 1003, 1007 or 1009
  Counter http_requests;
  Counter read_pauses;  // connections paused at limits.max_pending_requests
};

class Registry {
 public:
  static Registry& global();
  // A new worker's counters; they live as long as the process.
  WorkerCounters& add_worker();
  // Every counter summed over workers, in the Prometheus text format.
  std::string render() const;
  // WebSocket connections open now (handshakes completed minus finished).
  uint64_t open_connections() const;

 private:
  mutable std::mutex mutex_;  // guards registration, never the counters
  std::deque<WorkerCounters> workers_;
};

}  // namespace herald::metrics
