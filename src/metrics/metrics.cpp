// The metrics registry and its Prometheus rendering; see metrics.hpp.
#include "metrics/metrics.hpp"

#include <fmt/format.h>

namespace herald::metrics {

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

WorkerCounters& Registry::add_worker() {
  std::lock_guard lock(mutex_);
  return workers_.emplace_back();
}

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
  };
  std::lock_guard lock(mutex_);
  std::string out;
  uint64_t opened = 0, closed = 0;
  for (const auto& row : kRows) {
    uint64_t sum = 0;
    for (const auto& w : workers_) sum += (w.*row.counter).get();
    if (row.counter == &WorkerCounters::ws_opened) opened = sum;
    if (row.counter == &WorkerCounters::ws_closed) closed = sum;
    out +=
        fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", row.name, row.help, row.type, sum);
  }
  out += fmt::format(
      "# HELP herald_ws_connections Open WebSocket connections\n"
      "# TYPE herald_ws_connections gauge\nherald_ws_connections {}\n",
      opened >= closed ? opened - closed : 0);
  out += fmt::format(
      "# HELP herald_workers Worker threads\n# TYPE herald_workers gauge\n"
      "herald_workers {}\n",
      workers_.size());
  return out;
}

uint64_t Registry::open_connections() const {
  std::lock_guard lock(mutex_);
  uint64_t opened = 0, closed = 0;
  for (const auto& w : workers_) {
    opened += w.ws_opened.get();
    closed += w.ws_closed.get();
  }
  return opened >= closed ? opened - closed : 0;
}

}  // namespace herald::metrics
