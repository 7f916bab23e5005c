// TLS for the command-line client's https:// and wss:// URLs (a Herald
// behind a TLS-terminating proxy): the client context, which verifies the
// server's certificate against the system's CAs or --ca-file, and the
// per-connection setup (SNI, host name check). Owns no connection.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <string>

namespace herald::cli {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// nullptr and `why` when `ca_file` ("" for the system's CAs) cannot be read.
std::unique_ptr<boost::asio::ssl::context> client_tls_context(const std::string& ca_file,
                                                              std::string* why);

// Before the handshake: names `host` in the ClientHello (SNI, unless it is
// an IP address) and requires the certificate to name it.
void expect_host(TlsStream& stream, const std::string& host);

}  // namespace herald::cli
