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

namespace herald::proxy {

enum class Hook : uint8_t { connect, subscribe, publish, rpc };
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

  bool enabled(Hook hook) const { return pools_[static_cast<size_t>(hook)] != nullptr; }
  const ForwardRules& forward_rules() const { return rules_; }
  bool connect_with_token() const { return connect_with_token_; }

  // Each calls `done` on the worker's thread, never before returning. Only
  // for an enabled hook.
  void connect(const ConnectRequest& req, std::function<void(ConnectReply)> done);
  void subscribe(const ChannelRequest& req, std::function<void(SubscribeReply)> done);
  void publish(const ChannelRequest& req, std::function<void(PublishReply)> done);
  void rpc(const RpcRequest& req, std::function<void(RpcReply)> done);

 private:
  template <class Reply>
  void call(Hook hook, std::string body, Reply (*parse)(std::string_view),
            std::function<void(Reply)> done);

  std::shared_ptr<HttpPool> pools_[4];
  ForwardRules rules_;
  bool connect_with_token_ = false;
  metrics::WorkerCounters* counters_;
};

// "Name: value" -> {name, value}; nullopt when it is not a header line.
std::optional<std::pair<std::string, std::string>> parse_static_header(std::string_view line);

}  // namespace herald::proxy
