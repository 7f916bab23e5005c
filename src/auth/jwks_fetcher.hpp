// Fetching a JWK Set document (the identity provider's public keys) over
// HTTP(S), asynchronously, on an io_context the caller runs (the auth
// thread), so a slow provider never blocks a worker.
//
// One fetch is resolve, connect, TLS handshake, one GET and its response,
// all under a single deadline: a timer closes the socket when it expires,
// which ends whatever step is pending. HTTPS verifies the server's
// certificate chain and its host name (SNI is sent for names); the trusted
// roots are the system's CA store, or only those of a CA file given to the
// constructor. Only a 200 response with a body of at most 1 MiB is a
// result; redirects are not followed, since the JWKS URL is configuration
// and should name the document itself.
//
// `http://` URLs are accepted for loopback providers and tests; production
// should use `https://`, as anyone on the path of a plain fetch can
// substitute their own keys.
//
// Parsing the document is not done here (see KeySet::from_jwks in jwt.hpp).
// Error messages name the URL without its query string or user info, which
// may carry secrets.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace herald::auth {

class JwksFetcher {
 public:
  // On success `body` holds the document and `error` is empty; on failure
  // `body` is empty and `error` is a short sentence for logs.
  using Done = std::function<void(std::optional<std::string> body, std::string error)>;

  static constexpr size_t kMaxBodyBytes = 1024 * 1024;

  // `ca_file`: a PEM file of the CAs to trust instead of the system store
  // ("" for the system store). Throws std::runtime_error naming the file
  // when it cannot be loaded.
  explicit JwksFetcher(boost::asio::io_context& io, const std::string& ca_file = "");
  ~JwksFetcher();
  JwksFetcher(const JwksFetcher&) = delete;
  JwksFetcher& operator=(const JwksFetcher&) = delete;

  // Starts fetching `url` (http:// or https://) with `timeout` for the whole
  // exchange. `done` is called exactly once, on a thread running the
  // io_context and never from inside fetch(). Fetches may overlap, and may
  // outlive the fetcher. Thread-safe.
  void fetch(const std::string& url, std::chrono::milliseconds timeout, Done done);

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // shared with pending fetches
};

// The URL as error messages show it: scheme, host, port and path, without
// user info, query or fragment. Exposed for tests.
std::string jwks_url_for_logs(std::string_view url);

}  // namespace herald::auth
