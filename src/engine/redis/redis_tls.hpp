// TLS for rediss:// (issue 13 item 1): the client context that every Link of
// one engine shares (make_redis_engine builds it once, into
// LinkOptions::tls), and the setup and error text of each connection's TLS
// stream (redis_link.cpp).
//
// What it enforces: TLS 1.2 or later; the server's certificate chain is
// verified against the given CA file or the system's CA store, and its name
// (DNS or IP subjectAltName) checked against the URL's host or the
// configured server name; there is no switch to turn that off. SNI carries
// the name (host names only: RFC 6066 forbids addresses). A client
// certificate is sent when one is configured (Redis' tls-auth-clients).
//
// Owns OpenSSL setup only; the socket, the handshake and its timeout are the
// Link's. Error messages name files, never their contents.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>

namespace herald::engine::redis {

struct RedisTlsOptions {
  std::string ca_file;    // PEM of the CAs to trust; "": the system's CA store
  std::string cert_file;  // client certificate (chain), PEM; with key_file, or ""
  std::string key_file;   // its private key, PEM, not encrypted

  bool operator==(const RedisTlsOptions&) const = default;
};

// Throws std::runtime_error naming the file that cannot be loaded, or saying
// that only one of cert_file and key_file is set.
std::shared_ptr<boost::asio::ssl::context> make_redis_tls_context(const RedisTlsOptions& options);

// Prepares a new connection's SSL for `name` (the server name, or the host):
// SNI and the name check of the peer's certificate. Returns why it could
// not, or "".
std::string prepare_redis_tls(SSL* ssl, const std::string& name);

// A failed handshake said in a sentence: a certificate that did not verify
// is named as such, with OpenSSL's reason (e.g. "unable to get local issuer
// certificate", "hostname mismatch").
std::string redis_tls_handshake_error(SSL* ssl, const boost::system::error_code& ec);

}  // namespace herald::engine::redis
