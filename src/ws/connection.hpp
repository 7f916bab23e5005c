// One WebSocket connection after the upgrade: the transport layer between
// a socket and the protocol.
//
// Polling: the connection's socket sits in its worker's epoll set
// (ConnectionHost::poll_fd), level-triggered, with the Connection as the
// event's pointer; the worker calls on_event(). No asio socket and no
// pending asio operation per connection: an idle connection costs only this
// object and its few table entries.
// Reading: into the worker's shared read buffer (ConnectionHost::read_buffer),
// so an idle connection holds no read buffer; the MessageReader keeps only
// unfinished frames.
// Writing: frames are queued by reference; the worker calls flush() once at
// the end of each loop turn for every connection marked dirty, which sends
// everything queued during the turn with one writev (corking). A queue over
// the outbound limit closes the connection with 4008.
// Closing: close() queues a close frame and waits (bounded) for the peer's;
// protocol violations close right after the close frame is flushed.
// Compression: with permessage-deflate negotiated, send() queues the
// frame's compressed variant, made once per frame for all connections.
// Transport: plain read()/sendmsg() on the fd, or, after use_tls(), the
// SSL the HTTP phase finished the handshake on: SSL_read, and SSL_write of
// the gathered frames copied into one record (up to 16 KiB) at a time. The
// frames stay shared (encoded once); only the encryption is per connection.
//
// SSE mode (use_sse()): the same socket, queue, flush and outbound limit
// carry a Server-Sent Events response instead (the protocol layer queues
// its bytes, already in SSE form); bytes from the client are read and
// dropped, there are no close frames (close() and fail() end the stream
// once what is queued has gone, bounded by close_timeout) and no pong is
// expected.
//
// The protocol layer derives from Connection and implements on_text(),
// on_ping_due(), on_closed() and, if it needs it, on_tick(). Everything here runs on one worker
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "metrics/metrics.hpp"
#include "ws/deflate.hpp"
#include "ws/frame_codec.hpp"
#include "ws/outbound_queue.hpp"
#include "ws/shared_frame.hpp"

struct ssl_st;  // OpenSSL's SSL

namespace herald::ws {

class Connection;
using Clock = std::chrono::steady_clock;

struct ConnectionLimits {
  size_t max_message_bytes = 64 * 1024;
  size_t max_outbound_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds ping_interval{25000};
  std::chrono::milliseconds pong_timeout{10000};
  std::chrono::milliseconds close_timeout{2000};  // wait for the peer's close frame
  DeflateSettings deflate;  // for connections that negotiated permessage-deflate
};

// What a connection needs from the worker that owns it.
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  // The worker's read buffer, shared by all its connections.
  virtual std::span<char> read_buffer() = 0;
  // The worker's epoll set that connections add their sockets to.
  virtual int poll_fd() const = 0;
  // The worker's metrics.
  virtual metrics::WorkerCounters& counters() = 0;
  // Queue `c` for flush() at the end of this loop turn.
  virtual void mark_dirty(std::shared_ptr<Connection> c) = 0;
  // The connection is gone; drop it from the registry (the host keeps the
  // object alive until the end of the loop turn, as epoll events may still
  // point at it).
  virtual void connection_closed(Connection& c) = 0;
};

class Connection : public std::enable_shared_from_this<Connection>, private MessageHandler {
 public:
  // Takes ownership of the connected socket `fd`.
  Connection(int fd, ConnectionHost& host, const ConnectionLimits& limits);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Before start(): the connection speaks TLS through `ssl` (handshake
  // done, bound to the fd), which it now owns.
  void use_tls(ssl_st* ssl);
  // Before start(): the connection carries an SSE stream (see above).
  void use_sse() { sse_ = true; }
  bool is_sse() const { return sse_; }

  // Before start(): permessage-deflate was negotiated in the handshake.
  // Outbound messages of at least limits.deflate.min_bytes are then queued
  // compressed (the frame's shared compressed variant), and compressed client
  // messages are inflated.
  void use_deflate();

  // Joins the worker's epoll set; `early_bytes` are bytes that arrived with
  // the upgrade request and belong to the WebSocket stream.
  void start(std::string_view early_bytes);

  // An epoll event for this connection's socket (EPOLLIN, EPOLLOUT, ...).
  void on_event(uint32_t events);

  // Queues a frame. Over the outbound limit, closes with 4008 instead.
  void send(const SharedFrame& frame);
  void send_text(std::string_view json) { send(make_frame(json)); }

  // Starts the close handshake with `code` (no-op when already closing).
  void close(uint16_t code, std::string_view reason = {});

  // Writes what is queued (one writev per call, more while the socket takes
  // it). Called by the worker at the end of a loop turn.
  void flush();

  // Periodic check from the worker: ping, pong timeout, close timeout.
  void tick(Clock::time_point now);

  bool is_open() const { return state_ == State::open; }
  // The close code that ended the connection: the first one sent or
  // received; 1006 (abnormal) when the TCP side went without one.
  uint16_t close_code() const { return close_code_; }

 protected:
  // A complete text message (valid UTF-8).
  virtual void on_text(std::string_view text) = 0;
  // Time to send an application-level ping.
  virtual void on_ping_due() = 0;
  // Every worker tick while open, after the transport's own checks.
  virtual void on_tick(Clock::time_point /*now*/) {}
  // The connection is finished; called exactly once, from the worker thread.
  virtual void on_closed() = 0;

  // Stops taking bytes from the socket (TCP then pushes back on the peer)
  // until resume_reading(); bytes already read are still processed.
  void pause_reading();
  void resume_reading();

 private:
  enum class State : uint8_t { open, closing, closed };

  void on_readable();
  void read_tls();
  bool write_tls();  // false: the connection ended or must wait for EPOLLOUT
  void want_writable(bool on);
  void update_interest();
  void consume(char* data, size_t len);
  void fail(uint16_t code, std::string_view reason);
  void terminate();
  void mark_dirty();

  // MessageHandler
  void on_message(Opcode op, std::string_view payload) override;
  void on_ping(std::string_view payload) override;
  void on_pong(std::string_view payload) override;
  void on_close(uint16_t code, std::string_view reason) override;

  struct Tls;  // TLS only (connection.cpp): the SSL and its write state

  int fd_;
  ConnectionHost& host_;
  std::unique_ptr<Tls> tls_;  // null: plain TCP
  const ConnectionLimits& limits_;
  MessageReader reader_;
  OutboundQueue queue_;
  Clock::time_point last_receive_;
  Clock::time_point last_ping_;
  Clock::time_point close_deadline_{};
  State state_ = State::open;
  bool write_waiting_ = false;  // EPOLLOUT armed: the socket's send buffer was full
  bool read_paused_ = false;    // EPOLLIN not armed: see pause_reading()
  bool dirty_ = false;
  bool close_after_flush_ = false;  // terminate once the queue drains
  bool deflate_ = false;            // see use_deflate(); sits in padding
  bool sse_ = false;                // see use_sse(); sits in padding
  uint16_t close_code_ = 1006;      // see close_code(); sits in padding
};

}  // namespace herald::ws
