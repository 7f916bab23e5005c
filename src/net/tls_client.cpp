// The client's TLS context and per-connection setup; see tls_client.hpp.
#include "net/tls_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

namespace herald::net {

namespace ssl = boost::asio::ssl;

std::unique_ptr<ssl::context> client_tls_context(const std::string& ca_file, std::string* why) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  if (ca_file.empty())
    ctx->set_default_verify_paths(ec);
  else
    ctx->load_verify_file(ca_file, ec);
  if (ec) {
    if (why)
      *why = "cannot load the CA certificates" +
             (ca_file.empty() ? std::string(" of the system") : " of " + ca_file) + ": " +
             ec.message();
    return nullptr;
  }
  return ctx;
}

void expect_host(TlsStream& stream, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());  // a name, not an IP
  stream.set_verify_callback(ssl::host_name_verification(host));
}

}  // namespace herald::net
