// TLS as a client, for Herald's own outgoing connections: the backend
// hooks' https:// URLs (src/proxy) and the command-line client's https://
// and wss:// URLs (src/cli). The client context, which verifies the
// server's certificate against the system's CAs or a CA file, and the
// per-connection setup (SNI, host name check). Owns no connection.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <string>

namespace herald::net {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// nullptr and `why` when `ca_file` ("" for the system's CAs) cannot be read.
std::unique_ptr<boost::asio::ssl::context> client_tls_context(const std::string& ca_file,
                                                              std::string* why);

// Before the handshake: names `host` in the ClientHello (SNI, unless it is
// an IP address) and requires the certificate to name it.
void expect_host(TlsStream& stream, const std::string& host);

}  // namespace herald::net
