// JwksFetcher: URL parsing and one asynchronous GET per fetch, over a plain
// or a TLS stream, under one deadline; see jwks_fetcher.hpp.
#include "auth/jwks_fetcher.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <stdexcept>
#include <type_traits>

namespace herald::auth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

// Response headers are not what we limit; identity providers send large
// ones (policies, cookies), so allow more than Beast's 8 KiB default.
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;

struct Url {
  bool tls = false;
  std::string host;         // no brackets around an IPv6 address
  std::string port;         // digits
  std::string host_header;  // host[:port] as written
  std::string target;       // path and query
  std::string for_logs;     // jwks_url_for_logs()
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Fills `url` from `text`, or returns why it cannot.
std::string parse_url(std::string_view text, Url& url) {
  url.for_logs = jwks_url_for_logs(text);
  const std::string bad = "JWKS URL " + url.for_logs;
  // Control characters and spaces would end up in the request line or the
  // Host header.
  for (const char c : text)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return bad + " contains spaces or control characters";
  const size_t sep = text.find("://");
  const std::string scheme = sep == std::string_view::npos ? "" : lower(text.substr(0, sep));
  if (scheme != "http" && scheme != "https") return bad + " is not an http:// or https:// URL";
  url.tls = scheme == "https";
  const std::string_view rest = text.substr(sep + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view path = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return bad + " has user info, which is not supported";

  std::string_view host = authority, port;
  if (authority.starts_with('[')) {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad + " has a bad IPv6 host";
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return bad + " has a bad IPv6 host";
    if (!after.empty()) port = after.substr(1);
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return bad + " has no host";
  if (port.empty()) {
    port = url.tls ? "443" : "80";
  } else {
    unsigned value = 0;
    for (const char c : port) {
      if (c < '0' || c > '9' || value > 65535) return bad + " has a bad port";
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return bad + " has a bad port";
  }

  url.host = std::string(host);
  url.port = std::string(port);
  url.host_header = std::string(authority);
  path = path.substr(0, path.find('#'));
  url.target = path.empty() || path.front() != '/' ? "/" + std::string(path) : std::string(path);
  return {};
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

template <class Stream>
Stream make_stream(const Strand& strand, ssl::context* tls) {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    (void)tls;
    return Stream(strand);
  } else {
    return Stream(strand, *tls);
  }
}

// One fetch. It keeps itself alive through the handlers of its pending
// operations, all of which run on its strand; `finished_` makes sure `done`
// runs once, whichever of the exchange and the deadline ends first.
template <class Stream>
class Fetch : public std::enable_shared_from_this<Fetch<Stream>> {
 public:
  Fetch(asio::io_context& io, Url url, std::chrono::milliseconds timeout, JwksFetcher::Done done,
        std::shared_ptr<ssl::context> tls)
      : strand_(asio::make_strand(io)),
        url_(std::move(url)),
        timeout_(timeout),
        done_(std::move(done)),
        tls_(std::move(tls)),
        resolver_(strand_),
        stream_(make_stream<Stream>(strand_, tls_.get())),
        timer_(strand_) {}

  // Called from any thread: everything else happens on the strand.
  void start() {
    asio::post(strand_, [self = this->shared_from_this()] { self->begin(); });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

  void begin() {
    timer_.expires_after(timeout_);
    timer_.async_wait([self = this->shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->fail("timed out after " + std::to_string(self->timeout_.count()) + " ms");
    });
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = this->shared_from_this()](boost::system::error_code ec,
                                          const tcp::resolver::results_type& results) {
          self->on_resolve(ec, results);
        });
  }

  void on_resolve(boost::system::error_code ec, const tcp::resolver::results_type& results) {
    if (finished_) return;
    if (ec) return fail("resolving " + url_.host + ": " + ec.message());
    asio::async_connect(
        beast::get_lowest_layer(stream_), results,
        [self = this->shared_from_this()](boost::system::error_code ec, const tcp::endpoint&) {
          self->on_connect(ec);
        });
  }

  void on_connect(boost::system::error_code ec) {
    if (finished_) return;
    if (ec) return fail("connecting: " + ec.message());
    if constexpr (kTls) {
      // SNI carries names only (RFC 6066); the certificate is checked for
      // the name or the address either way.
      if (!is_ip_literal(url_.host) &&
          SSL_set_tlsext_host_name(stream_.native_handle(), url_.host.c_str()) != 1)
        return fail("TLS: cannot set the server name");
      stream_.set_verify_mode(ssl::verify_peer);
      // Asio's check fails without saying why; record the reason so the
      // handshake error names it.
      stream_.set_verify_callback(
          [check = ssl::host_name_verification(url_.host), ip = is_ip_literal(url_.host)](
              bool preverified, ssl::verify_context& ctx) {
            const bool ok = check(preverified, ctx);
            if (preverified && !ok)
              X509_STORE_CTX_set_error(ctx.native_handle(), ip ? X509_V_ERR_IP_ADDRESS_MISMATCH
                                                               : X509_V_ERR_HOSTNAME_MISMATCH);
            return ok;
          });
      stream_.async_handshake(ssl::stream_base::client,
                              [self = this->shared_from_this()](boost::system::error_code ec) {
                                self->on_handshake(ec);
                              });
    } else {
      send();
    }
  }

  void on_handshake(boost::system::error_code ec) {
    if (finished_) return;
    if constexpr (kTls) {
      if (ec) {
        // "certificate verify failed" alone does not say what was wrong.
        const long verify = SSL_get_verify_result(stream_.native_handle());
        if (verify != X509_V_OK)
          return fail(std::string("TLS handshake: certificate verify failed: ") +
                      X509_verify_cert_error_string(verify));
        return fail("TLS handshake: " + ec.message());
      }
    }
    send();
  }

  void send() {
    request_.method(http::verb::get);
    request_.target(url_.target);
    request_.version(11);
    request_.set(http::field::host, url_.host_header);
    request_.set(http::field::user_agent, "herald/" HERALD_VERSION);
    request_.set(http::field::accept, "application/jwk-set+json, application/json");
    request_.set(http::field::connection, "close");
    http::async_write(stream_, request_,
                      [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                        self->on_write(ec);
                      });
  }

  void on_write(boost::system::error_code ec) {
    if (finished_) return;
    if (ec) return fail("sending the request: " + ec.message());
    parser_.header_limit(kMaxHeaderBytes);
    parser_.body_limit(JwksFetcher::kMaxBodyBytes);
    // The header first: a refusal is reported by its status, whatever the
    // size of its body, and the body is only read for a 200.
    http::async_read_header(stream_, buffer_, parser_,
                            [self = this->shared_from_this()](boost::system::error_code ec,
                                                              size_t) { self->on_header(ec); });
  }

  void on_header(boost::system::error_code ec) {
    if (finished_) return;
    if (ec) return fail(read_error(ec));
    const unsigned status = parser_.get().result_int();
    if (status >= 300 && status < 400)
      return fail("HTTP status " + std::to_string(status) + " (redirects are not followed)");
    if (status != 200) return fail("HTTP status " + std::to_string(status));
    http::async_read(stream_, buffer_, parser_,
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       self->on_body(ec);
                     });
  }

  void on_body(boost::system::error_code ec) {
    if (finished_) return;
    if (ec) return fail(read_error(ec));
    auto response = parser_.release();
    finish(std::move(response.body()), {});
  }

  static std::string read_error(boost::system::error_code ec) {
    // A Content-Length over the limit is refused with the header, a longer
    // chunked or unframed body while it is read.
    if (ec == http::error::body_limit)
      return "the response body is larger than " +
             std::to_string(JwksFetcher::kMaxBodyBytes / 1024 / 1024) + " MiB";
    return "reading the response: " + ec.message();
  }

  void fail(const std::string& why) {
    finish(std::nullopt, "JWKS fetch from " + url_.for_logs + " failed: " + why);
  }

  void finish(std::optional<std::string> body, std::string error) {
    if (finished_) return;
    finished_ = true;
    // Ends whatever is still pending (after a timeout: the resolve, connect,
    // handshake or read); those handlers see finished_ and return. A
    // response read in full needs no TLS close_notify from a client.
    timer_.cancel();
    resolver_.cancel();
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).close(ignored);
    JwksFetcher::Done done = std::move(done_);
    done(std::move(body), std::move(error));
  }

  Strand strand_;
  Url url_;
  std::chrono::milliseconds timeout_;
  JwksFetcher::Done done_;
  std::shared_ptr<ssl::context> tls_;  // outlives stream_, which uses it
  tcp::resolver resolver_;
  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  http::response_parser<http::string_body> parser_;
  bool finished_ = false;
};

}  // namespace

std::string jwks_url_for_logs(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  std::string kept(url);
  if (const size_t sep = url.find("://"); sep != std::string_view::npos) {
    const size_t authority = sep + 3;
    const size_t authority_end = std::min(url.find('/', authority), url.size());
    const size_t at = url.substr(0, authority_end).rfind('@');
    if (at != std::string_view::npos && at >= authority)
      kept = std::string(url.substr(0, authority)) + std::string(url.substr(at + 1));
  }
  // A bad URL must not break the log line it ends up in: percent-encode
  // spaces, control characters and non-ASCII bytes.
  std::string out;
  for (const char c : kept) {
    const auto b = static_cast<unsigned char>(c);
    if (b > 0x20 && b < 0x7f) {
      out += c;
    } else {
      constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

JwksFetcher::JwksFetcher(boost::asio::io_context& io, const std::string& ca_file)
    : io_(io), tls_(std::make_shared<ssl::context>(ssl::context::tls_client)) {
  SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (ca_file.empty())
    tls_->set_default_verify_paths(ec);
  else
    tls_->load_verify_file(ca_file, ec);
  if (ec)
    throw std::runtime_error(ca_file.empty()
                                 ? "cannot load the system's CA certificates: " + ec.message()
                                 : "cannot load CA file " + ca_file + ": " + ec.message());
  tls_->set_verify_mode(ssl::verify_peer);
}

JwksFetcher::~JwksFetcher() = default;

void JwksFetcher::fetch(const std::string& url, std::chrono::milliseconds timeout, Done done) {
  Url parsed;
  if (std::string error = parse_url(url, parsed); !error.empty()) {
    // Never from inside fetch(): the caller may hold a lock or be mid-update.
    asio::post(io_, [done = std::move(done), error = std::move(error)]() mutable {
      done(std::nullopt, std::move(error));
    });
    return;
  }
  if (parsed.tls)
    std::make_shared<Fetch<ssl::stream<tcp::socket>>>(io_, std::move(parsed), timeout,
                                                      std::move(done), tls_)
        ->start();
  else
    std::make_shared<Fetch<tcp::socket>>(io_, std::move(parsed), timeout, std::move(done), nullptr)
        ->start();
}

}  // namespace herald::auth
