// Stream and the classification of SSL results; see tls_stream.hpp.
#include "net/tls_stream.hpp"

#include <openssl/err.h>

#include <array>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>

namespace herald::net {

TlsWant tls_want(SSL* ssl, int ret, boost::system::error_code& ec) {
  if (ret > 0) return TlsWant::done;
  const int saved_errno = errno;
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      return TlsWant::read;
    case SSL_ERROR_WANT_WRITE:
      return TlsWant::write;
    case SSL_ERROR_ZERO_RETURN:
      ec = boost::asio::error::eof;
      return TlsWant::eof;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE) {
        if (saved_errno == 0)
          ec = boost::asio::error::eof;
        else
          ec = boost::asio::error::connection_reset;
        return TlsWant::eof;
      }
      ec = boost::system::error_code(saved_errno, boost::system::system_category());
      return TlsWant::error;
    default: {
      const unsigned long e = ERR_get_error();
      ERR_clear_error();
      ec =
          e ? boost::system::error_code(static_cast<int>(e), boost::asio::error::get_ssl_category())
            : boost::asio::error::eof;
      return e ? TlsWant::error : TlsWant::eof;
    }
  }
}

boost::asio::mutable_buffer tls_write_scratch() {
  thread_local std::array<char, 16 * 1024> scratch;
  return boost::asio::buffer(scratch);
}

void tls_shutdown(SSL* ssl) {
  if (!ssl || !SSL_is_init_finished(ssl)) return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl);  // one attempt: the peer's reply is not waited for
  ERR_clear_error();
}

Stream::Stream(boost::asio::ip::tcp::socket socket, SslPtr ssl)
    : socket_(std::move(socket)), ssl_(std::move(ssl)) {
  if (ssl_) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);  // SSL_read must not block the worker
    SSL_set_fd(ssl_.get(), socket_.native_handle());
  }
}

void Stream::close() {
  boost::system::error_code ec;
  if (ssl_) tls_shutdown(ssl_.get());
  socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace herald::net
