// The HTTP routes of one worker: the server API (POST /api/publish and
// GET /api/channels/{channel}/history), GET /healthz, GET /metrics
// (Prometheus text) and static files from the configured folder. Errors
// answer in the protocol's JSON error shape with the status from
// protocol::http_status.
#pragma once

#include <string>

#include "core/node.hpp"
#include "http/http_session.hpp"
#include "metrics/metrics.hpp"
#include "protocol/command.hpp"

namespace herald::http {

struct ApiOptions {
  std::string static_dir;  // empty: no static files
};

class ApiRouter final : public Router {
 public:
  ApiRouter(core::Node& node, unsigned worker, protocol::CommandParser& parser,
            metrics::WorkerCounters& counters, ApiOptions options);
  void handle(Request&& req, Responder respond) override;

 private:
  void publish(const Request& req, Responder respond);
  // GET/HEAD /api/channels/{channel}/history?limit=&before=&after=: the
  // WebSocket `history` command over HTTP. `raw_channel` is the path segment
  // as sent (still percent-encoded), `query` the text after '?' (may be empty).
  void history(const Request& req, std::string_view raw_channel, std::string_view query,
               Responder respond);
  void serve_static(const Request& req, std::string_view path, Responder respond);

  core::Node& node_;
  unsigned worker_;
  protocol::CommandParser& parser_;
  metrics::WorkerCounters& counters_;  // the worker's, shared with its WebSocket sessions
  ApiOptions options_;
};

}  // namespace herald::http
