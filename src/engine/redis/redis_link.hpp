// One socket to Redis, shared machinery of RedisConnection (commands) and
// RedisSubscriber (pub/sub): connect (TCP or unix socket, with a timeout;
// for rediss:// then a TLS handshake within the same timeout, redis_tls.hpp
// saying what is verified), the AUTH/SELECT handshake, coalesced writes,
// reading Replies, the command timeout, and reconnecting with capped, fully
// jittered exponential backoff.
//
// What the bytes mean is up to the LinkHandler (its owner). Replies to the
// handshake are consumed here; every later reply goes to the handler, which
// tells the link, through answered(), which replies it was waiting for (a
// pub/sub message is not an answer), so the link can time out the oldest
// command that got no answer.
//
// hiredis 0.14 is used for parsing only (resp.hpp): its own I/O cannot do
// TLS and would need an adapter to the loop, while an asio socket (wrapped
// in an asio ssl::stream for rediss://) gives both, and one write per loop
// turn, for free.
//
// Threads: everything runs on the executor given at construction; no locks.
// Lifetime: handlers of asynchronous operations hold a shared_ptr to the
// Link, so it lives until they finish; close() (called by the owner, e.g. in
// its destructor) detaches the handler, after which it is never called.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/redis/redis_url.hpp"
#include "engine/redis/resp.hpp"

namespace boost::asio::ssl {
class context;
}

namespace herald::engine::redis {

struct LinkOptions {
  std::chrono::milliseconds connect_timeout{2000};
  // The oldest command without an answer after this long: the link is broken.
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  // Sent on every connection after AUTH/SELECT and before any command, their
  // replies consumed here (an error reply breaks the link): e.g. SCRIPT LOAD,
  // so that a Redis that restarted knows the scripts before the first EVALSHA.
  std::vector<std::vector<std::string>> on_connect;
  // rediss://: the TLS client context (redis_tls.hpp), shared by every link
  // of an engine (server.cpp makes one into RedisEngineOptions::connection,
  // which every link's options are copied from); unset: a link makes its
  // own, trusting the system's CAs. And the name the server's certificate
  // must carry (also sent as SNI); "": the URL's host.
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::string tls_server_name;
};

class LinkHandler {
 public:
  virtual ~LinkHandler() = default;
  // The handshake got its answers; commands may flow.
  virtual void link_up() = 0;
  // A reply after the handshake, in order.
  virtual void link_reply(Reply&& reply) = 0;
  // The link broke (or could not connect); a reconnect is scheduled after
  // this returns. Everything written and not answered is lost.
  virtual void link_down(const std::string& why) = 0;
};

class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(boost::asio::any_io_executor executor, RedisUrl url, LinkOptions options,
       LinkHandler& handler);

  // Starts the first connection attempt.
  void start();
  // Connected and handshake sent (it may still be unanswered).
  bool connected() const { return state_ == State::handshake || state_ == State::up; }
  bool up() const { return state_ == State::up; }

  // Append encoded commands here, then call expect() with how many replies
  // they owe and flush_soon(). Bytes written while not connected are sent
  // after the next handshake, or dropped if that attempt fails.
  std::string& out() { return out_; }
  void expect(size_t replies);
  void answered();
  // Writes `out()` at the end of this loop turn (one write for everything
  // added meanwhile; at most one write in flight).
  void flush_soon();

  // How many writes were started (one per loop turn with something to send).
  uint64_t writes() const { return writes_; }

  // Breaks the connection (the handler's link_down runs) and reconnects.
  void fail(const std::string& why);
  // For good: no more handler calls, no reconnect.
  void close();

 private:
  enum class State { idle, connecting, handshake, up, down, closed };
  using Socket = boost::asio::generic::stream_protocol::socket;
  struct Transport;  // one attempt's socket, and its TLS stream for rediss://

  void connect();
  void connect_endpoints(std::vector<boost::asio::generic::stream_protocol::endpoint> endpoints);
  void start_tls();
  void connected_now();
  void read();
  void on_read(size_t n);
  void write_now();
  void arm_command_timer();
  void schedule_reconnect();
  std::string where() const;  // host:port or the socket's path, for messages
  bool current(uint64_t gen) const { return gen == gen_ && state_ != State::closed; }

  boost::asio::any_io_executor executor_;
  RedisUrl url_;
  LinkOptions options_;
  LinkHandler* handler_;
  State state_ = State::idle;
  uint64_t gen_ = 0;  // bumped at every break: completions of older sockets are ignored
  // A new one per attempt (an SSL object serves one connection); the
  // handlers of its operations hold it, so a broken one lives until they ran.
  std::shared_ptr<Transport> transport_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer command_timer_;
  boost::asio::steady_timer reconnect_timer_;
  bool command_timer_armed_ = false;
  std::unique_ptr<ReplyReader> reader_;
  size_t handshake_left_ = 0;
  std::deque<std::string> handshake_names_;  // of the handshake commands not yet answered
  std::string out_;
  std::string writing_;
  bool writing_now_ = false;
  bool flush_posted_ = false;
  std::deque<std::chrono::steady_clock::time_point> awaiting_;  // when each answer was asked
  std::vector<char> read_buf_;
  uint64_t writes_ = 0;
  unsigned failures_ = 0;  // consecutive attempts without a completed handshake
  std::minstd_rand rng_;
};

}  // namespace herald::engine::redis
