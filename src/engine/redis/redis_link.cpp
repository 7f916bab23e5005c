// The socket, handshake, timeouts and reconnects of one Redis link
// (redis_link.hpp). Every asynchronous completion carries the generation it
// was started in; after a break (gen_ bumped) old completions only return,
// so a late read or timer of a dead socket can never touch the new one.
#include "engine/redis/redis_link.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <stdexcept>

#include "engine/redis/redis_tls.hpp"

namespace herald::engine::redis {

namespace asio = boost::asio;
using generic_endpoint = asio::generic::stream_protocol::endpoint;
using Clock = std::chrono::steady_clock;

namespace {

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

// Servers do not echo passwords, but an AUTH error text is logged, so make
// sure of it.
std::string scrub(std::string text, const std::optional<std::string>& password) {
  if (!password || password->empty()) return text;
  for (size_t at; (at = text.find(*password)) != std::string::npos;) {
    text.replace(at, password->size(), "***");
  }
  return text;
}

}  // namespace

struct Link::Transport {
  explicit Transport(const asio::any_io_executor& executor) : socket(executor) {}
  Socket socket;
  std::optional<asio::ssl::stream<Socket&>> tls;  // over `socket`, for rediss://
};

Link::Link(asio::any_io_executor executor, RedisUrl url, LinkOptions options, LinkHandler& handler)
    : executor_(executor),
      url_(std::move(url)),
      options_(options),
      handler_(&handler),
      resolver_(executor),
      connect_timer_(executor),
      command_timer_(executor),
      reconnect_timer_(executor),
      read_buf_(64 * 1024),
      rng_(std::random_device{}()) {
  if (url_.tls && !options_.tls) options_.tls = make_redis_tls_context({});
}

void Link::start() {
  if (state_ == State::idle) connect();
}

void Link::connect() {
  state_ = State::connecting;
  reader_ = std::make_unique<ReplyReader>();
  handshake_left_ = 0;
  transport_ = std::make_shared<Transport>(executor_);
  uint64_t gen = gen_;
  auto self = shared_from_this();
  // Covers the TLS handshake too: state_ stays `connecting` until it is done.
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this, self, gen](boost::system::error_code ec) {
    if (ec || !current(gen) || state_ != State::connecting) return;
    // A plain Redis port reads a ClientHello as the start of an inline
    // command and waits for the rest: say where the time went.
    fail("connect timed out after " + ms_text(options_.connect_timeout) +
         (transport_->tls ? " (in the TLS handshake: does " + where() + " speak TLS?)" : ""));
  });
  if (url_.unix_socket) {
    connect_endpoints({generic_endpoint(asio::local::stream_protocol::endpoint(url_.path))});
    return;
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(url_.host, ec);
  if (!ec) {
    connect_endpoints({generic_endpoint(asio::ip::tcp::endpoint(address, url_.port))});
    return;
  }
  resolver_.async_resolve(url_.host, std::to_string(url_.port),
                          [this, self, gen](boost::system::error_code ec,
                                            asio::ip::tcp::resolver::results_type results) {
                            if (!current(gen)) return;
                            if (ec) {
                              fail("resolve " + url_.host + ": " + ec.message());
                              return;
                            }
                            std::vector<generic_endpoint> endpoints;
                            for (const auto& entry : results)
                              endpoints.emplace_back(entry.endpoint());
                            connect_endpoints(std::move(endpoints));
                          });
}

void Link::connect_endpoints(std::vector<generic_endpoint> endpoints) {
  uint64_t gen = gen_;
  auto self = shared_from_this();
  auto t = transport_;
  asio::async_connect(t->socket, endpoints,
                      [this, self, t, gen](boost::system::error_code ec, const generic_endpoint&) {
                        if (!current(gen)) return;
                        if (ec) {
                          fail("connect " + where() + ": " + ec.message());
                          return;
                        }
                        if (url_.tls) {
                          start_tls();
                        } else {
                          connected_now();
                        }
                      });
}

void Link::start_tls() {
  auto t = transport_;
  t->tls.emplace(t->socket, *options_.tls);
  const std::string& name = options_.tls_server_name.empty() ? url_.host : options_.tls_server_name;
  if (std::string why = prepare_redis_tls(t->tls->native_handle(), name); !why.empty()) {
    fail(why);
    return;
  }
  uint64_t gen = gen_;
  t->tls->async_handshake(asio::ssl::stream_base::client, [this, self = shared_from_this(), t,
                                                           gen](boost::system::error_code ec) {
    if (!current(gen)) return;
    if (ec) {
      fail("TLS handshake with " + where() +
           " failed: " + redis_tls_handshake_error(t->tls->native_handle(), ec));
      return;
    }
    connected_now();
  });
}

void Link::connected_now() {
  connect_timer_.cancel();
  if (!url_.unix_socket) {
    boost::system::error_code ignored;
    transport_->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  }
  state_ = State::handshake;
  // AUTH and SELECT go first, pipelined with whatever was written while
  // connecting; their replies come first and are consumed in on_read().
  std::string hello;
  handshake_names_.clear();
  if (url_.password) {
    if (url_.user.empty()) {
      append_command(hello, {"AUTH", *url_.password});
    } else {
      append_command(hello, {"AUTH", url_.user, *url_.password});
    }
    handshake_names_.emplace_back("AUTH");
  }
  if (url_.db != 0) {
    append_command(hello, {"SELECT", std::to_string(url_.db)});
    handshake_names_.emplace_back("SELECT");
  }
  for (const auto& command : options_.on_connect) {
    append_command(hello, command);
    handshake_names_.push_back(command.size() > 1 ? command[0] + " " + command[1] : command[0]);
  }
  handshake_left_ = handshake_names_.size();
  out_.insert(0, hello);
  // Commands asked for while connecting are timed from now on.
  auto now = Clock::now();
  for (auto& t : awaiting_) t = now;
  awaiting_.insert(awaiting_.begin(), handshake_left_, now);
  read();
  write_now();
  arm_command_timer();
  if (handshake_left_ == 0) {
    state_ = State::up;
    failures_ = 0;
    handler_->link_up();
  }
}

void Link::read() {
  uint64_t gen = gen_;
  auto t = transport_;
  auto done = [this, self = shared_from_this(), t, gen](boost::system::error_code ec, size_t n) {
    if (!current(gen)) return;
    if (ec) {
      // A TLS peer that closes without close_notify: the same as a FIN.
      fail(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
               ? std::string("closed by the server")
               : "read: " + ec.message());
      return;
    }
    on_read(n);
  };
  if (t->tls) {
    t->tls->async_read_some(asio::buffer(read_buf_), std::move(done));
  } else {
    t->socket.async_read_some(asio::buffer(read_buf_), std::move(done));
  }
}

void Link::on_read(size_t n) {
  uint64_t gen = gen_;
  try {
    reader_->feed(read_buf_.data(), n);
  } catch (const std::runtime_error& e) {
    fail(e.what());
    return;
  }
  while (current(gen)) {
    std::optional<Reply> reply;
    try {
      reply = reader_->next();
    } catch (const std::runtime_error& e) {
      fail(e.what());
      return;
    }
    if (!reply) break;
    if (handshake_left_ == 0) {
      handler_->link_reply(std::move(*reply));  // may break or close the link
      continue;
    }
    --handshake_left_;
    answered();
    const std::string name = std::move(handshake_names_.front());
    handshake_names_.pop_front();
    if (reply->is_error()) {
      fail(name + " failed: " + scrub(reply->str, url_.password));
      return;
    }
    if (handshake_left_ == 0) {
      state_ = State::up;
      failures_ = 0;
      handler_->link_up();
    }
  }
  if (current(gen)) read();
}

void Link::expect(size_t replies) {
  awaiting_.insert(awaiting_.end(), replies, Clock::now());
  arm_command_timer();
}

void Link::answered() {
  if (!awaiting_.empty()) awaiting_.pop_front();
}

void Link::flush_soon() {
  if (flush_posted_ || writing_now_) return;  // a write completing will take it
  flush_posted_ = true;
  asio::post(executor_, [this, self = shared_from_this()] {
    flush_posted_ = false;
    write_now();
  });
}

void Link::write_now() {
  if (writing_now_ || !connected() || out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  writing_now_ = true;
  ++writes_;
  uint64_t gen = gen_;
  auto t = transport_;
  auto done = [this, self = shared_from_this(), t, gen](boost::system::error_code ec, size_t) {
    if (!current(gen)) return;
    writing_now_ = false;
    // A burst's buffer is not kept for ever (it cycles between out_ and
    // writing_ otherwise).
    if (writing_.capacity() > (4u << 20)) std::string().swap(writing_);
    if (ec) {
      fail("write: " + ec.message());
      return;
    }
    write_now();
  };
  if (t->tls) {
    asio::async_write(*t->tls, asio::buffer(writing_), std::move(done));
  } else {
    asio::async_write(t->socket, asio::buffer(writing_), std::move(done));
  }
}

void Link::arm_command_timer() {
  if (command_timer_armed_ || awaiting_.empty() || !connected()) return;
  command_timer_armed_ = true;
  command_timer_.expires_at(awaiting_.front() + options_.command_timeout);
  uint64_t gen = gen_;
  command_timer_.async_wait([this, self = shared_from_this(), gen](boost::system::error_code) {
    if (!current(gen)) return;
    command_timer_armed_ = false;
    if (awaiting_.empty()) return;
    if (awaiting_.front() + options_.command_timeout <= Clock::now()) {
      fail("no reply within " + ms_text(options_.command_timeout));
      return;
    }
    arm_command_timer();  // the oldest was answered; wait for the next oldest
  });
}

void Link::fail(const std::string& why) {
  if (state_ == State::closed || state_ == State::down) return;
  ++gen_;
  state_ = State::down;
  boost::system::error_code ignored;
  connect_timer_.cancel();
  command_timer_.cancel();
  command_timer_armed_ = false;
  resolver_.cancel();
  if (transport_) transport_->socket.close(ignored);
  out_.clear();
  writing_now_ = false;
  awaiting_.clear();
  handshake_left_ = 0;
  ++failures_;
  handler_->link_down(why);
  if (state_ == State::down) schedule_reconnect();  // not if the handler closed us
}

void Link::schedule_reconnect() {
  // Full jitter: uniform in [0, min(max, min * 2^(failures - 1))], so many
  // nodes losing the same Redis do not come back in step.
  auto cap = options_.reconnect_min;
  for (unsigned i = 1; i < failures_ && cap < options_.reconnect_max; ++i) cap *= 2;
  cap = std::min(cap, options_.reconnect_max);
  std::uniform_int_distribution<int64_t> pick(0, cap.count());
  reconnect_timer_.expires_after(std::chrono::milliseconds(pick(rng_)));
  uint64_t gen = gen_;
  reconnect_timer_.async_wait([this, self = shared_from_this(), gen](boost::system::error_code ec) {
    if (ec || !current(gen) || state_ != State::down) return;
    connect();
  });
}

std::string Link::where() const {
  return url_.unix_socket ? url_.path : url_.host + ":" + std::to_string(url_.port);
}

void Link::close() {
  if (state_ == State::closed) return;
  ++gen_;
  state_ = State::closed;
  handler_ = nullptr;
  boost::system::error_code ignored;
  connect_timer_.cancel();
  command_timer_.cancel();
  reconnect_timer_.cancel();
  resolver_.cancel();
  if (transport_) transport_->socket.close(ignored);
  out_.clear();
  awaiting_.clear();
}

}  // namespace herald::engine::redis
