// The byte stream of one HTTP connection, for Beast: a TCP socket, with TLS
// on it or not. With TLS, an SSL (from net::TlsCertificates) is driven on the
// socket's own non-blocking fd (SSL_set_fd; SSL_accept/SSL_read/SSL_write,
// waiting on the socket for WANT_READ/WANT_WRITE) rather than through
// asio::ssl::stream's memory BIOs: at a WebSocket upgrade the fd and the SSL
// are handed over as they are to ws::Connection, which keeps driving the
// same SSL from the worker's epoll set.
//
// Without TLS every call goes straight to the socket. Owns nothing but the
// socket and the SSL; see tls_context.hpp for how the SSL is set up.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <optional>
#include <type_traits>

namespace herald::net {

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// What one non-blocking SSL call asks for next.
enum class TlsWant { done, read, write, eof, error };
// Classifies the return value `ret` of an SSL call on `ssl` (ret > 0: done);
// sets `ec` for eof and error. Empties the thread's OpenSSL error queue.
TlsWant tls_want(SSL* ssl, int ret, boost::system::error_code& ec);
// Sends close_notify if it can without blocking; for a connection ending.
void tls_shutdown(SSL* ssl);
// The calling thread's buffer for one record on its way to SSL_write (16
// KiB): filled and handed over within one call, so a worker needs one, not
// one per connection.
boost::asio::mutable_buffer tls_write_scratch();

class Stream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  // `ssl` null: plain TCP. Otherwise the SSL, in accept state, is bound to
  // the socket's fd here.
  Stream(boost::asio::ip::tcp::socket socket, SslPtr ssl);

  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  bool tls() const { return ssl_ != nullptr; }
  // For the WebSocket hand-over: the SSL goes with the fd.
  SslPtr release_ssl() { return std::move(ssl_); }
  // Closes the socket, after a best-effort close_notify.
  void close();

  // The TLS handshake (completes at once without TLS).
  template <class Handler>
  void async_handshake(Handler&& handler) {
    run(
        [this](size_t& n) {
          n = 0;
          return SSL_do_handshake(ssl_.get());
        },
        std::forward<Handler>(handler));
  }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (!ssl_) return socket_.async_read_some(buffers, std::forward<Handler>(handler));
    const auto b = first_buffer<boost::asio::mutable_buffer>(buffers);
    run(
        [this, b](size_t& n) {
          if (b.size() == 0) return 1;
          return SSL_read_ex(ssl_.get(), b.data(), b.size(), &n);
        },
        std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (!ssl_) return socket_.async_write_some(buffers, std::forward<Handler>(handler));
    // One record's worth gathered from the sequence (Beast's serializer
    // hands over header and body as separate buffers). A retry after
    // WANT_WRITE gathers the same bytes again, as OpenSSL requires.
    run(
        [this, buffers](size_t& n) {
          const auto scratch = tls_write_scratch();
          const size_t len = boost::asio::buffer_copy(scratch, buffers);
          if (len == 0) {
            n = 0;
            return 1;
          }
          return SSL_write_ex(ssl_.get(), scratch.data(), len, &n);
        },
        std::forward<Handler>(handler));
  }

 private:
  template <class Buffer, class Sequence>
  static Buffer first_buffer(const Sequence& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      Buffer b(*it);
      if (b.size() > 0) return b;
    }
    return Buffer();
  }

  // Calls `step` until it succeeds, waiting on the socket as OpenSSL asks;
  // completes with the bytes it reports. Never completes from inside the
  // initiating call (a result ready at once is posted first).
  template <class Step, class Handler>
  void run(Step step, Handler&& handler) {
    std::decay_t<Handler> h(std::forward<Handler>(handler));
    boost::asio::async_compose<std::decay_t<Handler>, void(boost::system::error_code, size_t)>(
        [this, step, first = true,
         result = std::optional<std::pair<boost::system::error_code, size_t>>()](
            auto& self, boost::system::error_code wait_ec = {}) mutable {
          if (result) return self.complete(result->first, result->second);
          boost::system::error_code ec = wait_ec;
          size_t n = 0;
          if (!ec) {
            if (!ssl_) {
              result.emplace(ec, 0);
            } else {
              ERR_clear_error();
              const int ret = step(n);
              switch (tls_want(ssl_.get(), ret, ec)) {
                case TlsWant::read:
                  first = false;
                  return socket_.async_wait(boost::asio::socket_base::wait_read, std::move(self));
                case TlsWant::write:
                  first = false;
                  return socket_.async_wait(boost::asio::socket_base::wait_write, std::move(self));
                default:
                  break;
              }
            }
          }
          result.emplace(ec, ec ? 0 : n);
          if (first) {
            first = false;
            return boost::asio::post(socket_.get_executor(), std::move(self));
          }
          self.complete(result->first, result->second);
        },
        h, socket_);
  }

  boost::asio::ip::tcp::socket socket_;
  SslPtr ssl_;
};

}  // namespace herald::net
