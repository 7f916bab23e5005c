// Connection: reading, corked writing and the close handshake of one
// WebSocket; see connection.hpp for the design.
#include "ws/connection.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/tls_stream.hpp"

namespace herald::ws {

namespace {
constexpr int kMaxIovecs = 64;
constexpr size_t kTlsRecordBytes = 16 * 1024;  // TLS' largest record
}  // namespace

struct Connection::Tls {
  net::SslPtr ssl;
  // Bytes SSL_write took but could not send yet (it returned WANT_WRITE):
  // taken off the queue at once, since a retry must offer the same bytes
  // and the queue may be cut meanwhile (drop_unstarted). At most a record.
  std::string unsent;
  bool read_wants_write = false;  // SSL_read needs the socket writable (a key update)
  bool read_pending = false;      // SSL holds read bytes epoll cannot see
};

void Connection::use_tls(ssl_st* ssl) {
  tls_ = std::make_unique<Tls>();
  tls_->ssl.reset(ssl);
  // The upgrade may have left decrypted bytes inside SSL (Beast read less
  // than a record): read them at the end of this turn, once the worker has
  // finished setting the session up.
  if (SSL_has_pending(ssl)) tls_->read_pending = true;
}

Connection::Connection(int fd, ConnectionHost& host, const ConnectionLimits& limits)
    : fd_(fd),
      host_(host),
      limits_(limits),
      reader_(limits.max_message_bytes),
      last_receive_(Clock::now()),
      last_ping_(last_receive_) {
  // Non-blocking, whatever the HTTP phase left; no Nagle delay since writes
  // are corked by the loop anyway.
  const int flags = ::fcntl(fd_, F_GETFL, 0);
  if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::use_deflate() {
  deflate_ = true;
  reader_.enable_deflate();
}

void Connection::start(std::string_view early_bytes) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = this;
  if (::epoll_ctl(host_.poll_fd(), EPOLL_CTL_ADD, fd_, &ev) != 0) {
    spdlog::warn("epoll_ctl(ADD) failed: {}", std::strerror(errno));
    terminate();
    return;
  }
  if (!early_bytes.empty()) {
    std::string copy(early_bytes);  // rare (pipelined first frame); the reader may modify it
    consume(copy.data(), copy.size());
  }
  if (tls_ && tls_->read_pending) mark_dirty();  // flush() reads them
}

void Connection::on_event(uint32_t events) {
  if (state_ == State::closed) return;
  if (events & EPOLLOUT) {
    want_writable(false);
    if (tls_ && tls_->read_wants_write) {
      tls_->read_wants_write = false;
      read_tls();
      if (state_ == State::closed) return;
    }
    flush();
  }
  if (state_ != State::closed && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    on_readable();
  }
}

void Connection::on_readable() {
  if (tls_) {
    read_tls();
    return;
  }
  auto buf = host_.read_buffer();
  const ssize_t n = ::read(fd_, buf.data(), buf.size());
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {  // EOF or reset: the peer is gone, nothing more can be sent
    terminate();
    return;
  }
  last_receive_ = Clock::now();
  consume(buf.data(), static_cast<size_t>(n));
}

void Connection::read_tls() {
  SSL* ssl = tls_->ssl.get();
  auto buf = host_.read_buffer();
  // Level-triggered epoll sees the socket only: whatever SSL already holds
  // (the rest of a record) must be read now or it waits for the next packet.
  do {
    size_t n = 0;
    ERR_clear_error();
    const int ret = SSL_read_ex(ssl, buf.data(), buf.size(), &n);
    if (ret != 1) {
      boost::system::error_code ec;
      switch (net::tls_want(ssl, ret, ec)) {
        case net::TlsWant::read:
          return;
        case net::TlsWant::write:
          tls_->read_wants_write = true;
          want_writable(true);
          return;
        default:  // close_notify, EOF, reset or a broken record: the peer is gone
          terminate();
          return;
      }
    }
    last_receive_ = Clock::now();
    consume(buf.data(), n);
  } while (state_ != State::closed && !read_paused_ && SSL_has_pending(ssl));
  // Paused with bytes left in SSL: resume_reading() asks for them.
  if (state_ != State::closed && SSL_has_pending(ssl)) tls_->read_pending = true;
}

void Connection::want_writable(bool on) {
  if (write_waiting_ == on || state_ == State::closed) return;
  write_waiting_ = on;
  update_interest();
}

void Connection::pause_reading() {
  if (read_paused_ || state_ == State::closed) return;
  read_paused_ = true;
  host_.counters().read_pauses.add();
  update_interest();
}

void Connection::resume_reading() {
  if (!read_paused_ || state_ == State::closed) return;
  read_paused_ = false;
  update_interest();
  if (tls_ && tls_->read_pending) mark_dirty();  // epoll will not report them
}

void Connection::update_interest() {
  epoll_event ev{};
  ev.events = (read_paused_ ? 0u : EPOLLIN | EPOLLRDHUP) | (write_waiting_ ? EPOLLOUT : 0u);
  ev.data.ptr = this;
  ::epoll_ctl(host_.poll_fd(), EPOLL_CTL_MOD, fd_, &ev);
}

void Connection::consume(char* data, size_t len) {
  if (state_ == State::closed || sse_) return;  // an SSE client has nothing to say
  const uint16_t code = reader_.feed(data, len, *this);
  if (code != 0) {
    host_.counters().protocol_closes.add();
    const char* reason = code == close_code::invalid_payload   ? "invalid payload"
                         : code == close_code::message_too_big ? "message too big"
                                                               : "protocol error";
    fail(code, reason);
  }
}

void Connection::on_message(Opcode op, std::string_view payload) {
  if (state_ != State::open) return;  // after our close frame, only the peer's close matters
  if (op != Opcode::text) {
    host_.counters().protocol_closes.add();
    fail(close_code::unsupported_data, "binary messages are not supported");
    return;
  }
  on_text(payload);
}

void Connection::on_ping(std::string_view payload) {
  send(make_frame(payload, Opcode::pong));
}

void Connection::on_pong(std::string_view) {}

void Connection::on_close(uint16_t code, std::string_view) {
  if (state_ == State::open) {
    // Echo the peer's code, as RFC 6455 5.5.1 asks, then close the TCP side.
    queue_.drop_unstarted();
    queue_.push(make_close_frame(code == close_code::no_status ? close_code::normal : code, {}));
    state_ = State::closing;
    close_code_ = code;
  }
  close_after_flush_ = true;
  close_deadline_ = Clock::now() + limits_.close_timeout;
  mark_dirty();
}

void Connection::send(const SharedFrame& plain) {
  if (state_ != State::open) return;  // after a close frame nothing else may be sent
  // A reference, not a copy: a copy of the shared frame would touch its
  // reference count (shared with the other workers) once more per delivery.
  SharedFrame compressed;
  const SharedFrame& frame = deflate_ ? (compressed = deflated(plain, limits_.deflate)) : plain;
  if (queue_.bytes() + frame->size() > limits_.max_outbound_bytes) {
    spdlog::info("closing a slow consumer (4008): {} bytes queued, limit {}", queue_.bytes(),
                 limits_.max_outbound_bytes);
    host_.counters().slow_consumer_closes.add();
    fail(close_code::slow_consumer, "slow consumer");
    return;
  }
  auto& counters = host_.counters();
  if (frame != plain) {
    counters.frames_compressed.add();
    counters.compression_bytes_saved.add(plain->size() - frame->size());
  }
  queue_.push(frame);
  counters.frames_queued.add();
  mark_dirty();
}

void Connection::close(uint16_t code, std::string_view reason) {
  if (state_ != State::open) return;
  if (sse_) {  // no close frame: the stream ends after what is queued
    state_ = State::closing;
    close_code_ = code;
    close_after_flush_ = true;
    close_deadline_ = Clock::now() + limits_.close_timeout;
    mark_dirty();
    return;
  }
  queue_.push(make_close_frame(code, reason));
  state_ = State::closing;
  close_code_ = code;
  close_deadline_ = Clock::now() + limits_.close_timeout;
  mark_dirty();
}

void Connection::fail(uint16_t code, std::string_view reason) {
  if (state_ == State::closed) return;
  if (state_ == State::open) {
    // The stream is broken or the peer cannot keep up: drop what it has not
    // started to receive, send the close frame, and stop reading.
    queue_.drop_unstarted();
    if (!sse_) queue_.push(make_close_frame(code, reason));
    state_ = State::closing;
    close_code_ = code;
  }
  close_after_flush_ = true;
  close_deadline_ = Clock::now() + limits_.close_timeout;
  mark_dirty();
}

void Connection::mark_dirty() {
  if (dirty_ || state_ == State::closed) return;
  dirty_ = true;
  host_.mark_dirty(shared_from_this());
}

void Connection::flush() {
  dirty_ = false;
  if (tls_ && tls_->read_pending && !read_paused_ && state_ != State::closed) {
    tls_->read_pending = false;
    read_tls();
  }
  if (state_ == State::closed || write_waiting_) return;
  if (tls_) {
    if (write_tls() && close_after_flush_) terminate();
    return;
  }
  iovec iov[kMaxIovecs];
  while (!queue_.empty()) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(queue_.gather(iov, kMaxIovecs));
    const ssize_t written = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        want_writable(true);
        return;
      }
      terminate();
      return;
    }
    queue_.consume(static_cast<size_t>(written));
    auto& counters = host_.counters();
    counters.writes.add();
    counters.bytes_written.add(static_cast<uint64_t>(written));
  }
  if (close_after_flush_) terminate();
}

bool Connection::write_tls() {
  // One worker thread, one flush at a time: the thread's record buffer,
  // shared with the HTTP phase's writes.
  const auto scratch_buffer = net::tls_write_scratch();
  const std::span<char> scratch(static_cast<char*>(scratch_buffer.data()),
                                std::min(scratch_buffer.size(), kTlsRecordBytes));
  SSL* ssl = tls_->ssl.get();
  iovec iov[kMaxIovecs];
  while (!tls_->unsent.empty() || !queue_.empty()) {
    const bool retry = !tls_->unsent.empty();
    size_t len = 0;
    if (retry) {
      len = tls_->unsent.size();
    } else {
      const int count = queue_.gather(iov, kMaxIovecs);
      for (int i = 0; i < count && len < scratch.size(); ++i) {
        const size_t take = std::min(iov[i].iov_len, scratch.size() - len);
        std::memcpy(scratch.data() + len, iov[i].iov_base, take);
        len += take;
      }
    }
    const char* data = retry ? tls_->unsent.data() : scratch.data();
    size_t written = 0;
    ERR_clear_error();
    const int ret = SSL_write_ex(ssl, data, len, &written);
    if (ret == 1) {
      if (retry)
        tls_->unsent.erase(0, written);
      else
        queue_.consume(written);
      auto& counters = host_.counters();
      counters.writes.add();
      counters.bytes_written.add(written);
      continue;
    }
    boost::system::error_code ec;
    if (net::tls_want(ssl, ret, ec) == net::TlsWant::write) {
      // The record is sealed inside SSL: its bytes leave the queue now.
      if (!retry) {
        tls_->unsent.assign(data, len);
        queue_.consume(len);
      }
      want_writable(true);
      return false;
    }
    terminate();
    return false;
  }
  tls_->unsent.shrink_to_fit();
  return true;
}

void Connection::tick(Clock::time_point now) {
  if (state_ == State::closed) return;
  if (state_ == State::closing) {
    if (now >= close_deadline_) terminate();
    return;
  }
  if (!sse_ && now - last_receive_ > limits_.ping_interval + limits_.pong_timeout) {
    close(close_code::policy_violation, "pong timeout");
    return;
  }
  if (!write_waiting_) queue_.release_if_empty();
  if (now - last_ping_ >= limits_.ping_interval) {
    last_ping_ = now;
    on_ping_due();
  }
  on_tick(now);
}

void Connection::terminate() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  queue_.clear();
  ::epoll_ctl(host_.poll_fd(), EPOLL_CTL_DEL, fd_, nullptr);
  if (tls_) {
    net::tls_shutdown(tls_->ssl.get());  // close_notify, if the socket takes it
    tls_.reset();
  }
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
  auto keep_alive = shared_from_this();  // the host drops its reference below
  if (sse_)
    host_.counters().sse_closed.add();
  else
    host_.counters().ws_closed.add();
  on_closed();
  host_.connection_closed(*this);
}

}  // namespace herald::ws
