// herald-bench: a minimal blocking HTTP/1.1 GET over loopback for what the
// scenarios ask the server besides WebSocket (/healthz, /metrics,
// presence-stats), and the reading of one metric of a Prometheus text page.
// One request per connection, `Connection: close`. Used by churn and soak.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ws_loop.hpp"

namespace herald::bench {

struct HttpReply {
  int status = 0;  // 0: no reply (error says why)
  std::string body, error;
};

// GET `path` from `ep` (its address; Host from its host and port), with
// `Authorization: Bearer api_key` when one is given.
HttpReply http_get(const Endpoint& ep, const std::string& path, const std::string& api_key,
                   uint64_t timeout_ms = 5000);

// The sum of the samples of metric `name` in a Prometheus text page; -1
// when the metric is absent.
double prometheus_value(const std::string& page, std::string_view name);

}  // namespace herald::bench
