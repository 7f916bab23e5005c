// RedisConnection: the command connection of one worker to Redis, on that
// worker's executor (single-threaded use: every call and every callback on
// that executor's thread; no locks).
//
// Commands are pipelined: everything asked in one loop turn goes out in one
// write (at most one write in flight; what is asked meanwhile goes in the
// next), and replies are matched to callbacks in order. Each callback runs
// exactly once, with either Redis' Reply (an error reply such as WRONGTYPE
// is a Reply of Kind::error: the connection is fine) or a Failure (no reply
// will come):
//   "redis queue full"                 max_pending commands already waiting
//   "redis unavailable: <why>"         the connection is down, nothing sent
//   "redis connection lost: <why>"     sent (maybe executed!) but the
//                                      connection broke before the reply
//   "redis connection closed"          close() or the destructor
// The first two are posted (never called from inside command()); the third
// runs when the break is noticed, the last inside close().
//
// Commands asked before the first connection attempt ends are queued and
// sent after the handshake (AUTH, SELECT) in the same write; after a break,
// commands fail at once until a reconnect completes its handshake.
// A command with no reply within command_timeout breaks the connection, so
// blocking commands (BLPOP...) do not belong here.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "engine/redis/redis_link.hpp"
#include "engine/redis/redis_url.hpp"
#include "engine/redis/resp.hpp"

namespace herald::engine::redis {

struct ConnectionOptions : LinkOptions {
  size_t max_pending = 100000;  // commands sent or queued without their reply yet
};

struct Failure {
  std::string message;
};

using Result = std::variant<Reply, Failure>;
using Callback = std::function<void(Result&&)>;

class RedisConnection final : LinkHandler {
 public:
  // Starts connecting at once (rediss://: TLS, see redis_tls.hpp).
  RedisConnection(boost::asio::any_io_executor executor, RedisUrl url,
                  ConnectionOptions options = {});
  // close(): every callback not yet run runs now, none afterwards.
  ~RedisConnection() override;
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void command(std::initializer_list<std::string_view> args, Callback done);
  void command(const std::vector<std::string>& args, Callback done);

  // Called with true when the connection is up (handshake done), false when
  // it goes down after having been up.
  void on_state(std::function<void(bool up)> hook) { on_state_ = std::move(hook); }
  bool up() const { return link_->up(); }
  size_t pending() const { return pending_.size(); }
  uint64_t writes() const { return link_->writes(); }

  // Fails everything pending with "redis connection closed" and stops for
  // good; later commands fail the same way.
  void close();

 private:
  template <typename Args>
  void send(const Args& args, Callback& done);
  void fail_later(Callback done, std::string message);
  void drain_failures();

  // LinkHandler
  void link_up() override;
  void link_reply(Reply&& reply) override;
  void link_down(const std::string& why) override;

  boost::asio::any_io_executor executor_;
  ConnectionOptions options_;
  std::shared_ptr<Link> link_;
  std::deque<Callback> pending_;                           // in the order of their replies
  std::deque<std::pair<Callback, std::string>> failures_;  // to run in a posted handler
  bool drain_posted_ = false;
  bool first_attempt_ = true;  // commands wait for the first attempt's outcome
  bool was_up_ = false;
  bool closed_ = false;
  std::string down_reason_ = "not connected yet";
  std::function<void(bool)> on_state_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with this object
};

}  // namespace herald::engine::redis
