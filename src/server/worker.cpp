// Worker: acceptor, connection registry, end-of-turn flush, ticks and
// graceful shutdown of one worker thread; see worker.hpp.
#include "server/worker.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <random>

#include "log/access_log.hpp"

namespace herald::server {

namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::chrono::milliseconds pick_tick_interval(const config::LimitsConfig& l) {
  auto shortest = std::min({l.ping_interval, l.pong_timeout, l.handshake_timeout});
  return std::clamp(shortest / 4, std::chrono::milliseconds(20), std::chrono::milliseconds(1000));
}

ws::ConnectionLimits connection_limits(const config::Config& cfg) {
  ws::ConnectionLimits l;
  l.max_message_bytes = cfg.limits.max_message_bytes;
  l.max_outbound_bytes = cfg.limits.max_outbound_bytes;
  l.ping_interval = cfg.limits.ping_interval;
  l.pong_timeout = cfg.limits.pong_timeout;
  l.deflate.min_bytes = cfg.server.compression_min_bytes;
  l.deflate.level = cfg.server.compression_level;
  return l;
}

}  // namespace

Worker::Worker(unsigned index, const config::Config& cfg, core::Node& node,
               std::atomic<size_t>& connection_count, const ReloadFn& reload,
               const WorkerShared& shared)
    : index_(index),
      cfg_(cfg),
      node_(node),
      connection_count_(connection_count),
      tls_(shared.tls),
      tick_interval_(pick_tick_interval(cfg.limits)),
      parser_(protocol::ParserLimits{cfg.limits.max_channel_length, cfg.limits.max_event_length}),
      token_cache_(cfg.auth.token_cache),
      hooks_(io_, cfg.proxy, &counters_),
      session_ctx_{
          node,
          index,
          parser_,
          connection_limits(cfg),
          cfg.limits.max_channels_per_connection,
          static_cast<unsigned>(std::max<int64_t>(
              1,
              std::chrono::duration_cast<std::chrono::seconds>(cfg.limits.ping_interval).count())),
          &counters_,
          cfg.limits.max_pending_requests,
          &shared.auth,
          &token_cache_,
          &shared.abuse,
          io_.get_executor(),
          &hooks_},
      http_limits_{cfg.limits.max_http_body_bytes,
                   16 * 1024,
                   cfg.limits.handshake_timeout,
                   cfg.server.ws_path,
                   cfg.server.allowed_origins,
                   proxy::ForwardRules{cfg.proxy.forward_headers, cfg.proxy.forward_cookies},
                   cfg.server.access_log,
                   cfg.server.compression,
                   cfg.server.sse_path,
                   cfg.limits.max_channels_per_connection,
                   cfg.auth.token_cookie},
      router_(node, index, parser_, counters_,
              http::ApiOptions{{cfg.server.static_dir, cfg.server.static_spa_fallback},
                               cfg.server.allow_remote_admin,
                               shared.api_keys,
                               cfg.api.protect_metrics,
                               [this, reload](http::ReloadDone done) {
                                 reload(io_.get_executor(),
                                        [done = std::move(done)](const ReloadOutcome& outcome) {
                                          done(outcome.ok, to_json(outcome));
                                        });
                               },
                               [this, user_action = shared.user_action](
                                   http::UserAction action, std::function<void(size_t)> done) {
                                 user_action(std::move(action), io_.get_executor(),
                                             std::move(done));
                               },
                               cfg.engine.type}),
      read_buffer_(kReadBufferBytes),
      id_seed_(std::random_device{}() * 0x100000001ULL ^ std::random_device{}()) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  // Here, before any worker thread starts, not in run(): once the first
  // worker accepts, its requests are posted to every shard, whose io_context
  // must be set by then (attaching in run() crashed a server restarted under
  // traffic).
  node_.attach_worker(index_, io_, &counters_);
}

Worker::~Worker() {
  // Connections close their sockets as they are destroyed; drop them first.
  connections_.clear();
  graveyard_.clear();
  dirty_.clear();
  if (poller_.is_open()) poller_.release();
  ::close(epoll_fd_);
  node_.detach_worker(index_);  // its timers belong to io_, which goes next
}

namespace {

uint16_t bind_shared(boost::asio::ip::tcp::acceptor& acceptor,
                     const boost::asio::ip::tcp::endpoint& endpoint) {
  acceptor.open(endpoint.protocol());
  acceptor.set_option(boost::asio::ip::tcp::acceptor::reuse_address(true));
  int one = 1;
  if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    throw std::system_error(errno, std::generic_category(), "SO_REUSEPORT");
  }
  acceptor.bind(endpoint);
  acceptor.listen(boost::asio::socket_base::max_listen_connections);
  acceptor.non_blocking(true);  // lets accept() drain a burst without blocking
  return acceptor.local_endpoint().port();
}

}  // namespace

uint16_t Worker::listen(const boost::asio::ip::tcp::endpoint& endpoint) {
  return bind_shared(acceptor_, endpoint);
}

uint16_t Worker::listen_plain(const boost::asio::ip::tcp::endpoint& endpoint) {
  return bind_shared(plain_acceptor_, endpoint);
}

void Worker::run() {
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  poller_.assign(epoll_fd_);
  watch_poller();
  accept(acceptor_, tls_ != nullptr);
  if (plain_acceptor_.is_open()) accept(plain_acceptor_, false);
  schedule_tick();
  auto work = boost::asio::make_work_guard(io_);
  while (!io_.stopped()) {
    try {
      io_.run_one();
      io_.poll();
    } catch (const std::exception& e) {
      // A bug in one handler must not take the whole server down.
      spdlog::error("worker {}: unhandled exception: {}", index_, e.what());
    }
    node_.end_of_turn(index_);  // join/leave of this turn, one hand-over per channel
    flush_dirty();
    node_.turn_flushed(index_);
    graveyard_.clear();
  }
}

void Worker::watch_poller() {
  poller_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this](boost::system::error_code ec) {
                       if (ec) return;
                       dispatch_poll_events();
                       watch_poller();
                     });
}

void Worker::dispatch_poll_events() {
  epoll_event events[256];
  const int n = ::epoll_wait(epoll_fd_, events, 256, 0);
  for (int i = 0; i < n; ++i) {
    static_cast<ws::Connection*>(events[i].data.ptr)->on_event(events[i].events);
  }
}

void Worker::accept(boost::asio::ip::tcp::acceptor& acceptor, bool tls) {
  acceptor.async_accept(
      [this, &acceptor, tls](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
        if (ec == boost::asio::error::operation_aborted || shutting_down_) return;
        if (ec) {
          spdlog::warn("accept failed: {}", ec.message());
        } else {
          on_accepted(std::move(s), tls);
          // Take whatever else is already queued without another trip through
          // the reactor: connection storms arrive in bursts.
          for (int i = 0; i < 64; ++i) {
            boost::asio::ip::tcp::socket more(io_);
            acceptor.accept(more, ec);
            if (ec) break;
            on_accepted(std::move(more), tls);
          }
        }
        accept(acceptor, tls);
      });
}

void Worker::on_accepted(boost::asio::ip::tcp::socket s, bool tls) {
  if (connection_count_.fetch_add(1) >= cfg_.limits.max_connections) {
    connection_count_.fetch_sub(1);
    spdlog::warn("connection limit reached ({}), refusing a connection",
                 cfg_.limits.max_connections);
    boost::system::error_code ignored;
    s.close(ignored);
    return;
  }
  // TLS: an SSL from the certificates in force now (a reload changes them
  // for the next handshake only); the session does the handshake.
  net::SslPtr ssl;
  if (tls) {
    ssl.reset(tls_->new_ssl());
    if (!ssl) {
      connection_count_.fetch_sub(1);
      boost::system::error_code ignored;
      s.close(ignored);
      return;
    }
  }
  auto session =
      std::make_shared<http::HttpSession>(net::Stream(std::move(s), std::move(ssl)), *this);
  http_sessions_.emplace(session.get(), session);
  session->start();
}

std::shared_ptr<protocol::ClientSession> Worker::adopt(net::Stream& stream, bool sse, bool deflate,
                                                       std::string_view early_bytes,
                                                       std::array<unsigned char, 16>& peer_bytes) {
  if (shutting_down_) return nullptr;  // the socket closes as it goes out of scope
  auto& socket = stream.socket();
  connection_count_.fetch_add(1);  // the HTTP session's count was released by now
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec).address();
  const auto peer =
      remote.is_v4() ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, remote.to_v4())
                     : remote.to_v6();
  const int fd = socket.release(ec);  // from here on the connection owns the fd
  if (ec) {
    connection_count_.fetch_sub(1);
    return nullptr;
  }
  auto session =
      std::make_shared<protocol::ClientSession>(fd, *this, session_ctx_, next_client_id());
  if (auto ssl = stream.release_ssl()) session->use_tls(ssl.release());
  if (sse) session->use_sse();
  if (deflate) session->use_deflate();
  connections_.emplace(session.get(), session);
  if (sse)
    counters_.sse_opened.add();
  else
    counters_.ws_opened.add();
  if (cfg_.server.access_log) {
    WsAccess& a = ws_access_[session.get()];
    a.opened = ws::Clock::now();
    a.peer = remote.to_string();
    log::ws_access("connect", session->client_id(), 0, 0, a.peer);
  }
  session->start(early_bytes);
  peer_bytes = peer.to_bytes();
  return session;
}

void Worker::upgrade(net::Stream stream, std::string early_bytes, std::string query_token,
                     proxy::Headers forwarded, bool deflate) {
  std::array<unsigned char, 16> peer{};
  auto session = adopt(stream, false, deflate, early_bytes, peer);
  if (!session) return;
  session->admit_from(peer);
  if (hooks_.enabled(proxy::Hook::connect)) session->set_forwarded_headers(std::move(forwarded));
  if (!query_token.empty() && cfg_.auth.query_token && session->is_open())
    session->connect_with_token(std::move(query_token));
}

void Worker::open_sse(net::Stream stream, http::SseRequest req) {
  std::array<unsigned char, 16> peer{};
  auto session = adopt(stream, true, false, {}, peer);
  if (!session) return;
  if (hooks_.enabled(proxy::Hook::connect))
    session->set_forwarded_headers(std::move(req.forwarded));
  protocol::SseOpen open;
  open.channels = std::move(req.channels);
  open.token = !req.query_token.empty() && cfg_.auth.query_token ? std::move(req.query_token)
                                                                 : std::move(req.cookie_token);
  open.last_event_id = std::move(req.last_event_id);
  open.extra_headers = std::move(req.extra_headers);
  open.retry_ms = static_cast<unsigned>(cfg_.server.sse_retry.count());
  session->start_sse(std::move(open), peer);  // admits the peer once it can refuse with 429
}

size_t Worker::apply(const http::UserAction& action) {
  std::vector<std::shared_ptr<protocol::ClientSession>> matching;
  for (const auto& [ptr, connection] : connections_) {
    auto session = std::static_pointer_cast<protocol::ClientSession>(connection);
    if (session->is_open() && session->user() == action.user) matching.push_back(session);
  }
  size_t count = 0;
  for (auto& session : matching) {
    if (action.channel.empty()) {
      session->kick(action.reason);
      ++count;
    } else if (session->kick_from(action.channel)) {
      ++count;
    }
  }
  return count;
}

void Worker::http_session_closed(http::HttpSession& s) {
  if (http_sessions_.erase(&s) > 0) connection_count_.fetch_sub(1);
  maybe_finish_shutdown();
}

std::span<char> Worker::read_buffer() {
  return {read_buffer_.data(), read_buffer_.size()};
}

void Worker::mark_dirty(std::shared_ptr<ws::Connection> c) {
  dirty_.push_back(std::move(c));
}

void Worker::connection_closed(ws::Connection& c) {
  if (auto a = ws_access_.find(&c); a != ws_access_.end()) {
    const double ms =
        std::chrono::duration<double, std::milli>(ws::Clock::now() - a->second.opened).count();
    log::ws_access("close", static_cast<protocol::ClientSession&>(c).client_id(), c.close_code(),
                   ms, a->second.peer);
    ws_access_.erase(a);
  }
  auto it = connections_.find(&c);
  if (it != connections_.end()) {
    graveyard_.push_back(std::move(it->second));
    connections_.erase(it);
    connection_count_.fetch_sub(1);
  }
  maybe_finish_shutdown();
}

void Worker::flush_dirty() {
  while (!dirty_.empty()) {
    flushing_.swap(dirty_);
    for (auto& c : flushing_) c->flush();
    flushing_.clear();
  }
}

std::string Worker::next_client_id() {
  // 15 hex digits (60 random-looking bits) fit std::string's inline buffer,
  // so an id costs no allocation per connection.
  char buf[16];
  std::snprintf(buf, sizeof buf, "%015llx",
                static_cast<unsigned long long>(splitmix64(id_seed_ + ++id_counter_) >> 4));
  return buf;
}

void Worker::schedule_tick() {
  tick_timer_.expires_after(tick_interval_);
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = ws::Clock::now();
    std::vector<std::shared_ptr<ws::Connection>> all;
    all.reserve(connections_.size());
    for (auto& [ptr, conn] : connections_) all.push_back(conn);
    for (auto& c : all) c->tick(now);
    std::vector<std::shared_ptr<http::HttpSession>> http;
    for (auto& [ptr, weak] : http_sessions_) {
      if (auto s = weak.lock()) http.push_back(std::move(s));
    }
    for (auto& s : http) s->check_deadline(now);
    schedule_tick();
  });
}

void Worker::request_shutdown() {
  boost::asio::post(io_, [this] { begin_shutdown(); });
}

void Worker::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  plain_acceptor_.close(ec);
  std::vector<std::weak_ptr<http::HttpSession>> http;
  for (auto& [ptr, weak] : http_sessions_) http.push_back(weak);
  for (auto& weak : http) {
    if (auto s = weak.lock()) s->stop();
  }
  std::vector<std::shared_ptr<ws::Connection>> all;
  for (auto& [ptr, conn] : connections_) all.push_back(conn);
  for (auto& c : all) c->close(ws::close_code::going_away, "server shutting down");
  shutdown_timer_.expires_after(cfg_.server.shutdown_timeout);
  shutdown_timer_.async_wait([this](boost::system::error_code e) {
    if (e) return;
    spdlog::warn("worker {}: {} connections did not close in time", index_, connections_.size());
    io_.stop();
  });
  maybe_finish_shutdown();
}

void Worker::maybe_finish_shutdown() {
  if (!shutting_down_ || !connections_.empty() || !http_sessions_.empty()) return;
  // Let the flushes of this turn run, then stop.
  boost::asio::post(io_, [this] {
    flush_dirty();
    tick_timer_.cancel();
    shutdown_timer_.cancel();
    io_.stop();
  });
}

}  // namespace herald::server
