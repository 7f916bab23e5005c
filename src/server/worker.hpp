// One worker thread: an io_context, an SO_REUSEPORT acceptor on the shared
// port (TLS when server.tls_cert_file is set, and then optionally a second,
// plaintext one on server.listen_plain), the connections accepted on them,
// and its shard of the channels (through core::Node). Nothing here is shared
// with other workers except by posting work to their io_context.
//
// WebSocket connections are not asio sockets: their fds sit in the worker's
// own epoll set, which asio watches as a single descriptor; its events are
// dispatched straight to the Connection. This keeps an idle connection to
// one object (no asio descriptor state, no pending operation).
//
// The loop runs every ready handler and then flushes each connection that
// was written to during that turn, so everything published in one turn
// leaves in one writev per connection. A periodic tick drives pings and
// timeouts for all connections at once instead of a timer per connection.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <memory>
#include <vector>

#include "auth/abuse_limits.hpp"
#include "auth/api_keys.hpp"
#include "auth/authenticator.hpp"
#include "config/config.hpp"
#include "core/node.hpp"
#include "http/api_router.hpp"
#include "http/http_session.hpp"
#include "metrics/metrics.hpp"
#include "net/tls_context.hpp"
#include "protocol/client_session.hpp"
#include "proxy/hooks.hpp"
#include "server/reloader.hpp"
#include "ws/connection.hpp"

namespace herald::server {

// Runs a server action on every worker and posts the total to `reply_to`.
using UserActionBroadcast =
    std::function<void(http::UserAction action, boost::asio::any_io_executor reply_to,
                       std::function<void(size_t)> done)>;

// What the workers of one process share besides the node: identity and
// access (thread-safe objects owned by serve()).
struct WorkerShared {
  auth::Authenticator& auth;
  auth::AbuseLimits& abuse;
  std::shared_ptr<const auth::ApiKeys> api_keys;  // null: the HTTP API is open
  UserActionBroadcast user_action;
  // server.tls_cert_file: the certificates of the TLS listener; null: the
  // listener is plain.
  const net::TlsCertificates* tls = nullptr;
};

class Worker final : public ws::ConnectionHost, public http::HttpHost {
 public:
  Worker(unsigned index, const config::Config& cfg, core::Node& node,
         std::atomic<size_t>& connection_count, const ReloadFn& reload, const WorkerShared& shared);
  ~Worker() override;

  // Binds the acceptor (on the calling thread, before run()); returns the
  // bound port, useful when `port` is 0.
  uint16_t listen(const boost::asio::ip::tcp::endpoint& endpoint);
  // server.listen_plain: a second acceptor that speaks plain HTTP beside the
  // TLS one; returns its bound port.
  uint16_t listen_plain(const boost::asio::ip::tcp::endpoint& endpoint);
  // The thread body: serves until shutdown finishes.
  void run();
  // Thread-safe: stop accepting, close every connection with 1001, then
  // stop once they are gone or the shutdown timeout passes.
  void request_shutdown();

  boost::asio::any_io_executor executor() { return io_.get_executor(); }
  // On this worker's thread: applies a server action to its connections of
  // `action.user`; returns how many connections (or subscriptions) it ended.
  size_t apply(const http::UserAction& action);

  // ws::ConnectionHost
  std::span<char> read_buffer() override;
  int poll_fd() const override { return epoll_fd_; }
  metrics::WorkerCounters& counters() override { return counters_; }
  void mark_dirty(std::shared_ptr<ws::Connection> c) override;
  void connection_closed(ws::Connection& c) override;

  // http::HttpHost
  http::Router& router() override { return router_; }
  const http::HttpLimits& http_limits() const override { return http_limits_; }
  void upgrade(net::Stream stream, std::string early_bytes, std::string query_token,
               proxy::Headers forwarded, bool deflate) override;
  void open_sse(net::Stream stream, http::SseRequest req) override;
  void http_session_closed(http::HttpSession& s) override;

 private:
  void accept(boost::asio::ip::tcp::acceptor& acceptor, bool tls);
  void on_accepted(boost::asio::ip::tcp::socket s, bool tls);
  // A client session on the socket of `stream` (upgrade and open_sse);
  // null when the socket is gone. Registers it and starts it.
  // `peer_bytes`: the peer's address for ClientSession::admit_from;
  // `deflate`: permessage-deflate was negotiated (WebSocket only).
  std::shared_ptr<protocol::ClientSession> adopt(net::Stream& stream, bool sse, bool deflate,
                                                 std::string_view early_bytes,
                                                 std::array<unsigned char, 16>& peer_bytes);
  void watch_poller();
  void dispatch_poll_events();
  void schedule_tick();
  void flush_dirty();
  void begin_shutdown();
  void maybe_finish_shutdown();
  std::string next_client_id();

  unsigned index_;
  const config::Config& cfg_;
  core::Node& node_;
  std::atomic<size_t>& connection_count_;
  metrics::WorkerCounters& counters_ = metrics::Registry::global().add_worker();
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_{io_};        // TLS when tls_ is set
  boost::asio::ip::tcp::acceptor plain_acceptor_{io_};  // server.listen_plain only
  const net::TlsCertificates* tls_;
  int epoll_fd_ = -1;
  boost::asio::posix::stream_descriptor poller_{io_};  // watches epoll_fd_
  boost::asio::steady_timer tick_timer_{io_};
  boost::asio::steady_timer shutdown_timer_{io_};
  std::chrono::milliseconds tick_interval_;
  protocol::CommandParser parser_;
  auth::TokenCache token_cache_;
  proxy::Hooks hooks_;  // on io_, so declared after it
  protocol::SessionContext session_ctx_;
  http::HttpLimits http_limits_;
  http::ApiRouter router_;
  std::vector<char> read_buffer_;
  boost::unordered_flat_map<ws::Connection*, std::shared_ptr<ws::Connection>> connections_;
  boost::unordered_flat_map<http::HttpSession*, std::weak_ptr<http::HttpSession>> http_sessions_;
  std::vector<std::shared_ptr<ws::Connection>> dirty_;
  std::vector<std::shared_ptr<ws::Connection>> flushing_;
  // Closed connections, kept until the end of the turn: epoll events
  // already fetched may still point at them.
  std::vector<std::shared_ptr<ws::Connection>> graveyard_;
  // server.access_log only: when and from where each connection came.
  struct WsAccess {
    ws::Clock::time_point opened;
    std::string peer;
  };
  boost::unordered_flat_map<ws::Connection*, WsAccess> ws_access_;
  uint64_t id_seed_;
  uint64_t id_counter_ = 0;
  bool shutting_down_ = false;
};

}  // namespace herald::server
