// The shared TLS client context of the redis engine and the per-connection
// setup (redis_tls.hpp).
#include "engine/redis/redis_tls.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <stdexcept>

namespace herald::engine::redis {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_redis_tls_context(const RedisTlsOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty())
    throw std::runtime_error(
        "redis TLS: a client certificate needs both a certificate file and a key file");
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  // An encrypted key would make OpenSSL ask for its passphrase on the
  // terminal; a server has none: refuse it instead.
  ctx->set_password_callback([](size_t, ssl::context::password_purpose) { return std::string(); });
  boost::system::error_code ec;
  if (options.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec)
      throw std::runtime_error("redis TLS: cannot load the system's CA certificates: " +
                               ec.message());
  } else {
    ctx->load_verify_file(options.ca_file, ec);
    if (ec)
      throw std::runtime_error("redis TLS: cannot load the CA file " + options.ca_file + ": " +
                               ec.message());
  }
  if (!options.cert_file.empty()) {
    ctx->use_certificate_chain_file(options.cert_file, ec);
    if (ec)
      throw std::runtime_error("redis TLS: cannot load the client certificate file " +
                               options.cert_file + ": " + ec.message());
    ctx->use_private_key_file(options.key_file, ssl::context::pem, ec);
    // OpenSSL checks the key against the certificate as it loads it.
    if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
      throw std::runtime_error("redis TLS: the client key file " + options.key_file +
                               " does not match the certificate in " + options.cert_file);
    if (ec)
      throw std::runtime_error("redis TLS: cannot load the client key file " + options.key_file +
                               ": " + ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      throw std::runtime_error("redis TLS: the client key file " + options.key_file +
                               " does not match the certificate in " + options.cert_file);
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

std::string prepare_redis_tls(SSL* ssl, const std::string& name) {
  // OpenSSL's own name check (X509_VERIFY_PARAM) rather than a verify
  // callback such as asio's host_name_verification: same rules (RFC 6125,
  // subjectAltName DNS or IP entries), but a mismatch is a verification
  // error with its own reason, so the handshake error can say what was
  // wrong.
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(name, ec);
  const bool ip = !ec;
  if (ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1)
      return "TLS: cannot check the certificate for the address " + name;
    return {};
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, name.c_str()) != 1)
    return "TLS: cannot check the certificate for the name " + name;
  if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
    return "TLS: cannot send the server name " + name;
  return {};
}

std::string redis_tls_handshake_error(SSL* ssl, const boost::system::error_code& ec) {
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK)
    return std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
  return ec.message();
}

}  // namespace herald::engine::redis
