// TLS for clients (wss://, https://; issue 16 item 1): the server context
// built from server.tls_cert_file and server.tls_key_file, checked before
// use, and the holder that new handshakes take it from, swapped on reload.
//
// What it enforces: TLS 1.2 or later, OpenSSL 3's default ciphers, ALPN
// "http/1.1" (Herald speaks no HTTP/2), no renegotiation, no session
// tickets' state on the server beyond OpenSSL's defaults. A certificate that
// has expired, a key that does not match it, or a file that cannot be read
// is refused with a message naming the file, never its contents.
//
// Owns OpenSSL setup only; the per-connection SSL is driven by
// net/tls_stream.hpp (HTTP phase) and ws::Connection (WebSocket phase).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>

namespace herald::net {

using TlsContextPtr = std::shared_ptr<SSL_CTX>;

// Loads and checks the pair; throws std::runtime_error naming the file at
// fault (unreadable, not PEM, expired, key not matching the certificate).
TlsContextPtr make_server_tls_context(const std::string& cert_file, const std::string& key_file);

// The context that new handshakes use. Thread-safe: workers take it on
// accept, the reloader replaces it. An open connection's SSL holds its own
// reference to the context it started with, so a reload never touches it.
class TlsCertificates {
 public:
  // Loads the pair; throws as make_server_tls_context.
  TlsCertificates(const std::string& cert_file, const std::string& key_file);

  TlsContextPtr current() const;
  // A new SSL for an accepted connection, in server mode; null (logged)
  // when OpenSSL cannot allocate one.
  SSL* new_ssl() const;
  // Re-reads the pair (the same files, or new paths); returns "" when the
  // new pair is now in use, else why it was refused (the old pair stays).
  std::string reload(const std::string& cert_file, const std::string& key_file);

 private:
  mutable std::mutex mutex_;
  TlsContextPtr ctx_;
};

}  // namespace herald::net
