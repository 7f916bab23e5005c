// The client-facing TLS context and its reloadable holder; see
// tls_context.hpp.
#include "net/tls_context.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace herald::net {

namespace {

// OpenSSL's reason for the last failure, without the file's contents
// (OpenSSL's messages never quote them), and an empty error queue.
std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  std::string out = e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown error"
                      : "unknown error";
  ERR_clear_error();
  return out;
}

// A file that cannot be opened said as the OS says it ("No such file or
// directory", "Permission denied"), before OpenSSL's vaguer "system lib".
void check_readable(const std::string& what, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
  std::fclose(f);
}

std::string asn1_time(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return "?";
  ASN1_TIME_print(bio, t);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n > 0 ? n : 0));
  BIO_free(bio);
  return out;
}

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                  unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // a client without http/1.1 in its list: no ALPN, go on
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

TlsContextPtr make_server_tls_context(const std::string& cert_file, const std::string& key_file) {
  check_readable("server.tls_cert_file", cert_file);
  check_readable("server.tls_key_file", key_file);
  ERR_clear_error();
  TlsContextPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) throw std::runtime_error("TLS: cannot create a context: " + openssl_reason());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // No renegotiation (TLS 1.2): a read never needs to write and the other
  // way round, except for TLS 1.3 key updates. A peer that closes without
  // close_notify is an ordinary end of stream, as with plain TCP.
  SSL_CTX_set_options(
      c, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Partial writes and a moving buffer: the WebSocket phase writes from a
  // per-worker scratch buffer; idle connections give their 16 KiB record
  // buffers back (100k idle connections would otherwise hold 3 GB).
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
  // An encrypted key would make OpenSSL ask for its passphrase on the
  // terminal; a server has none: refuse it instead.
  SSL_CTX_set_default_passwd_cb(c, [](char*, int, int, void*) { return 0; });
  if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1)
    throw std::runtime_error("server.tls_cert_file " + cert_file +
                             ": cannot load a PEM certificate: " + openssl_reason());
  X509* leaf = SSL_CTX_get0_certificate(c);
  if (leaf && X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
    throw std::runtime_error("server.tls_cert_file " + cert_file + ": the certificate expired on " +
                             asn1_time(X509_get0_notAfter(leaf)));
  if (leaf && X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
    spdlog::warn("server.tls_cert_file {}: the certificate is not valid before {}", cert_file,
                 asn1_time(X509_get0_notBefore(leaf)));
  if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    const unsigned long e = ERR_peek_last_error();
    if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      throw std::runtime_error("server.tls_key_file " + key_file +
                               ": does not match the certificate in " + cert_file);
    }
    throw std::runtime_error("server.tls_key_file " + key_file +
                             ": cannot load a PEM private key (an encrypted key is not "
                             "supported): " +
                             openssl_reason());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    ERR_clear_error();
    throw std::runtime_error("server.tls_key_file " + key_file +
                             ": does not match the certificate in " + cert_file);
  }
  SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);
  return ctx;
}

TlsCertificates::TlsCertificates(const std::string& cert_file, const std::string& key_file)
    : ctx_(make_server_tls_context(cert_file, key_file)) {}

TlsContextPtr TlsCertificates::current() const {
  std::lock_guard lock(mutex_);
  return ctx_;
}

SSL* TlsCertificates::new_ssl() const {
  SSL* ssl = SSL_new(current().get());  // takes its own reference to the context
  if (!ssl) {
    spdlog::warn("TLS: cannot create a connection: {}", openssl_reason());
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

std::string TlsCertificates::reload(const std::string& cert_file, const std::string& key_file) {
  try {
    auto next = make_server_tls_context(cert_file, key_file);
    std::lock_guard lock(mutex_);
    ctx_ = std::move(next);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace herald::net
