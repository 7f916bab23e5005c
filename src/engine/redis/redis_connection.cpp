// The command connection (redis_connection.hpp): callbacks in reply order
// over a Link. Callbacks may do anything, including destroying this object:
// every loop that runs callbacks takes one entry off a member queue at a
// time and stops as soon as `alive_` has expired, and the destructor's
// close() runs whatever is left, so each callback runs exactly once and
// never after the destructor has returned.
#include "engine/redis/redis_connection.hpp"

#include <boost/asio/post.hpp>

namespace herald::engine::redis {

RedisConnection::RedisConnection(boost::asio::any_io_executor executor, RedisUrl url,
                                 ConnectionOptions options)
    : executor_(executor),
      options_(options),
      link_(std::make_shared<Link>(executor, std::move(url),
                                   static_cast<const LinkOptions&>(options),
                                   static_cast<LinkHandler&>(*this))) {
  link_->start();
}

RedisConnection::~RedisConnection() {
  close();
}

void RedisConnection::command(std::initializer_list<std::string_view> args, Callback done) {
  send(args, done);
}

void RedisConnection::command(const std::vector<std::string>& args, Callback done) {
  send(args, done);
}

template <typename Args>
void RedisConnection::send(const Args& args, Callback& done) {
  if (closed_) {
    fail_later(std::move(done), "redis connection closed");
  } else if (!first_attempt_ && !link_->connected()) {
    fail_later(std::move(done), "redis unavailable: " + down_reason_);
  } else if (pending_.size() >= options_.max_pending) {
    fail_later(std::move(done), "redis queue full");
  } else {
    append_command(link_->out(), args);
    pending_.push_back(std::move(done));
    link_->expect(1);
    link_->flush_soon();
  }
}

void RedisConnection::fail_later(Callback done, std::string message) {
  failures_.emplace_back(std::move(done), std::move(message));
  if (drain_posted_) return;
  drain_posted_ = true;
  boost::asio::post(executor_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;  // the destructor ran them
    drain_posted_ = false;
    drain_failures();
  });
}

void RedisConnection::drain_failures() {
  std::weak_ptr<int> alive = alive_;
  while (!failures_.empty()) {
    auto [done, message] = std::move(failures_.front());
    failures_.pop_front();
    done(Failure{std::move(message)});
    if (alive.expired()) return;
  }
}

void RedisConnection::link_up() {
  first_attempt_ = false;
  was_up_ = true;
  if (on_state_) on_state_(true);
}

void RedisConnection::link_reply(Reply&& reply) {
  if (pending_.empty()) {
    // E.g. "-ERR max number of clients reached" sent before closing.
    link_->fail("unexpected reply " + to_string(reply));
    return;
  }
  Callback done = std::move(pending_.front());
  pending_.pop_front();
  link_->answered();
  done(std::move(reply));
}

void RedisConnection::link_down(const std::string& why) {
  first_attempt_ = false;
  down_reason_ = why;
  std::weak_ptr<int> alive = alive_;
  std::string message = "redis connection lost: " + why;
  while (!pending_.empty()) {
    Callback done = std::move(pending_.front());
    pending_.pop_front();
    done(Failure{message});
    if (alive.expired() || closed_) return;
  }
  if (was_up_) {
    was_up_ = false;
    if (on_state_) on_state_(false);
  }
}

void RedisConnection::close() {
  if (!closed_) {
    closed_ = true;
    link_->close();
  }
  std::weak_ptr<int> alive = alive_;
  // Both queues, until callbacks stop adding to them (a command asked from
  // a callback here fails too, in this loop).
  while (!pending_.empty() || !failures_.empty()) {
    if (!pending_.empty()) {
      Callback done = std::move(pending_.front());
      pending_.pop_front();
      done(Failure{"redis connection closed"});
    } else {
      auto [done, message] = std::move(failures_.front());
      failures_.pop_front();
      done(Failure{std::move(message)});
    }
    if (alive.expired()) return;
  }
}

}  // namespace herald::engine::redis
