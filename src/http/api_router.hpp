// The HTTP routes of one worker: the server API (POST /api/publish,
// GET /api/channels/{channel}/history, POST /api/disconnect and
// /api/unsubscribe; presence, destroy, the channel list and node info in
// api_channels.cpp), the admin API (POST /api/admin/reload), GET /healthz,
// GET /metrics
// (Prometheus text) and static files from the configured folder
// (static_files.hpp). Errors
// answer in the protocol's JSON error shape with the status from
// protocol::http_status.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <functional>
#include <string>

#include "auth/api_keys.hpp"
#include "core/node.hpp"
#include "http/http_session.hpp"
#include "http/static_files.hpp"
#include "metrics/metrics.hpp"
#include "protocol/command.hpp"

namespace herald::http {

// The answer to POST /api/admin/reload: whether the new configuration was
// taken, and the JSON body.
using ReloadDone = std::function<void(bool ok, std::string body)>;

// A server action on every connection of one user, on every worker:
// disconnect (channel empty) or unsubscribe from `channel`.
struct UserAction {
  std::string user;
  std::string channel;
  std::string reason;
};
// Runs `action` on every worker; `done` gets how many connections (or
// subscriptions) it ended, later, on this worker's thread.
using UserActionFn = std::function<void(UserAction action, std::function<void(size_t)> done)>;

struct ApiOptions {
  StaticOptions statics;            // dir empty: no static files
  bool allow_remote_admin = false;  // /api/admin/* from peers other than loopback (no keys)
  // The API keys; null or empty: the API is open (as before keys existed).
  std::shared_ptr<const auth::ApiKeys> api_keys;
  bool protect_metrics = false;  // GET /metrics needs a key too
  // Starts a reload; `done` runs later on this worker's thread.
  std::function<void(ReloadDone done)> reload;
  UserActionFn user_action;
  std::string engine_name;  // engine.type, for GET /api/info
};

class ApiRouter final : public Router {
 public:
  ApiRouter(core::Node& node, unsigned worker, protocol::CommandParser& parser,
            metrics::WorkerCounters& counters, ApiOptions options);
  void handle(Request&& req, const boost::asio::ip::address& peer, Responder respond) override;

 private:
  // With API keys configured: whether the request carries a key with
  // `scope` (any scope when null); else answers 401/403 and returns false.
  // `or_scope`: a second scope that also grants the route.
  bool authorized(const Request& req, std::optional<auth::Scope> scope, Responder& respond,
                  std::optional<auth::Scope> or_scope = std::nullopt);
  void publish(const Request& req, Responder respond);
  // POST /api/admin/reload, from loopback peers unless allow_remote_admin.
  void admin_reload(const Request& req, const boost::asio::ip::address& peer, Responder respond);
  // GET/HEAD /api/channels/{channel}/history?limit=&before=&after=: the
  // WebSocket `history` command over HTTP. `raw_channel` is the path segment
  // as sent (still percent-encoded), `query` the text after '?' (may be empty).
  void history(const Request& req, std::string_view raw_channel, std::string_view query,
               Responder respond);
  // POST /api/disconnect {user, reason?} and POST /api/unsubscribe {user, channel}.
  void user_action(const Request& req, bool unsubscribe, Responder respond);

  // api_channels.cpp: the channel routes besides history.
  // Routes /api/channels, /api/channels/{channel}[/presence|/presence-stats]
  // and /api/info; false when `path` is none of them.
  bool route_channels(const Request& req, std::string_view path, std::string_view query,
                      Responder& respond);
  // The channel named by a path segment (percent-decoded and checked like
  // any channel name), or nullopt after answering 400.
  std::optional<std::string> channel_from_path(std::string_view raw, Responder& respond);
  void presence(const Request& req, std::string channel, bool stats_only, Responder respond);
  void destroy(const Request& req, std::string channel, Responder respond);
  void list_channels(std::string_view query, Responder respond);
  void info(Responder respond);

  core::Node& node_;
  unsigned worker_;
  protocol::CommandParser& parser_;
  metrics::WorkerCounters& counters_;  // the worker's, shared with its WebSocket sessions
  ApiOptions options_;
};

}  // namespace herald::http
