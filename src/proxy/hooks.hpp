// The app backend's hooks of one worker ([proxy], docs/backend-hooks.md):
// what the session asks the backend (connect, subscribe, publish, rpc) and
// the answer it acts on, without knowing HTTP. Builds each request's JSON,
// sends it through the hook's HttpPool on the worker's io_context, reads the
// reply (proxy/replies.hpp) and counts it (metrics::HookCounters).
//
// Failures become Refusals the session sends as they are: over the bound,
// a timeout, a backend that is down or answers non-2xx -> `unavailable`; a
// reply that is not what the hook expects -> `internal`, with a log line
// naming the hook (never a header value: the static headers hold secrets).
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "metrics/metrics.hpp"
#include "proxy/forwarding.hpp"
#include "proxy/http_client.hpp"
#include "proxy/replies.hpp"
#include "schema/event_schemas.hpp"

namespace herald::proxy {

enum class Hook : uint8_t { connect, subscribe, publish, rpc, refresh };
const char* to_string(Hook hook);

struct ConnectRequest {
  std::string_view client;
  std::string_view ip;
  std::string_view data;     // raw JSON of connect.data, "" when absent
  const Headers* headers{};  // the forwarded upgrade headers, may be null
};

struct ChannelRequest {  // subscribe and publish
  std::string_view client;
  std::string_view user;
  std::string_view channel;
  std::string_view event;  // publish only
  std::string_view data;   // raw JSON, "" when absent
};

struct RefreshRequest {
  std::string_view client;
  std::string_view user;
  int64_t expire_at = 0;  // the current one
};

struct RpcRequest {
  std::string_view client;
  std::string_view user;
  std::string_view method;
  std::string_view data;  // raw JSON
};

class Hooks {
 public:
  // Throws std::runtime_error for a URL parse_url refuses or a static
  // header that is not "Name: value" (config load checks both first).
  Hooks(boost::asio::io_context& io, const config::ProxyConfig& config,
        metrics::WorkerCounters* counters);
  ~Hooks();

  bool enabled(Hook hook) const {
    return pools_[static_cast<size_t>(hook)] != nullptr ||
           (hook == Hook::rpc && !rpc_routes_.empty());
  }
  const ForwardRules& forward_rules() const { return rules_; }
  bool connect_with_token() const { return connect_with_token_; }
  // A hook's deadline (its own, or proxy.timeout_ms).
  std::chrono::milliseconds timeout(Hook hook) const {
    return timeouts_[static_cast<size_t>(hook)];
  }
  // The rpc methods' request and response schemas ([proxy] rpc_schema) as
  // events "<method>#request" and "<method>#response"; null when none.
  const schema::EventSchemas* rpc_schemas() const { return rpc_schemas_.get(); }

  // Each calls `done` on the worker's thread, never before returning. Only
  // for an enabled hook.
  void connect(const ConnectRequest& req, std::function<void(ConnectReply)> done);
  void subscribe(const ChannelRequest& req, std::function<void(SubscribeReply)> done);
  void publish(const ChannelRequest& req, std::function<void(PublishReply)> done);
  // Methods no rpc_routes prefix matches go to rpc_url: when it is unset,
  // `done` gets bad_request.
  void rpc(const RpcRequest& req, std::function<void(RpcReply)> done);
  void refresh(const RefreshRequest& req, std::function<void(RefreshReply)> done);

 private:
  template <class Reply>
  void call(Hook hook, HttpPool& pool, std::string body, Reply (*parse)(std::string_view),
            std::function<void(Reply)> done);

  std::shared_ptr<HttpPool> pools_[5];
  // rpc_routes, longest prefix first.
  std::vector<std::pair<std::string, std::shared_ptr<HttpPool>>> rpc_routes_;
  ForwardRules rules_;
  bool connect_with_token_ = false;
  std::chrono::milliseconds timeouts_[5];
  size_t max_concurrent_[5] = {};
  std::shared_ptr<const schema::EventSchemas> rpc_schemas_;
  boost::asio::io_context& io_;
  metrics::WorkerCounters* counters_;
};

// The text of an rpc_schema file as an event schema file (see rpc_schemas);
// throws schema::SchemaError naming `path`.
std::shared_ptr<const schema::EventSchemas> load_rpc_schemas(const std::string& path);

// "prefix=url" -> {prefix, url}; nullopt (and `why`) when it is not one.
std::optional<std::pair<std::string, std::string>> parse_rpc_route(std::string_view route,
                                                                   std::string* why = nullptr);

// "Name: value" -> {name, value}; nullopt when it is not a header line.
std::optional<std::pair<std::string, std::string>> parse_static_header(std::string_view line);

}  // namespace herald::proxy
