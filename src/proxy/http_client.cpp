// HttpPool: one backend endpoint's keep-alive connections and the requests
// in flight on them; see http_client.hpp.
#include "proxy/http_client.hpp"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>

#include "net/tls_client.hpp"

namespace herald::proxy {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// Largest reply body read from a backend: replies carry a decision and a
// little data, never a bulk transfer.
constexpr size_t kMaxReplyBytes = 4 * 1024 * 1024;

std::optional<Endpoint> parse_url(std::string_view url, std::string* why) {
  const auto fail = [&](std::string reason) -> std::optional<Endpoint> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  Endpoint ep;
  if (url.starts_with("https://")) {
    ep.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return fail("must start with http:// or https://");
  }
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  ep.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (authority.empty()) return fail("no host");
  if (authority.find('@') != std::string_view::npos)
    return fail("credentials in the URL are not supported; use static_headers");
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("unclosed '[' in the host");
    ep.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("unexpected text after the host");
      port = rest.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (ep.host.empty()) return fail("no host");
  if (port.empty() && authority.find(':') != std::string_view::npos && authority.front() != '[')
    return fail("empty port");
  if (!port.empty()) {
    unsigned n = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return fail("port must be a number");
      n = n * 10 + static_cast<unsigned>(c - '0');
      if (n > 65535) return fail("port must be at most 65535");
    }
    if (n == 0) return fail("port must not be 0");
    ep.port = std::string(port);
  } else {
    ep.port = ep.tls ? "443" : "80";
  }
  for (char c : ep.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return fail("spaces in the path");
  return ep;
}

// A plain or a TLS connection; `visit` hands the stream to generic code.
struct HttpPool::Connection {
  Connection(boost::asio::io_context& io, ssl::context* tls) {
    if (tls)
      secure.emplace(io, *tls);
    else
      plain.emplace(io);
  }
  beast::tcp_stream& tcp() { return plain ? *plain : beast::get_lowest_layer(*secure); }
  template <class F>
  void visit(F&& f) {
    if (plain)
      f(*plain);
    else
      f(*secure);
  }
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since;
};

struct HttpPool::Exchange {
  std::string body;
  std::function<void(HttpResult)> done;
  std::unique_ptr<Connection> conn;
  bool reused = false;
  bool retried = false;
  bool may_resend = true;
  std::chrono::steady_clock::time_point deadline;
  bhttp::request<bhttp::string_body> request;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
};

HttpPool::HttpPool(boost::asio::io_context& io, Endpoint endpoint, size_t max_concurrent,
                   std::chrono::milliseconds timeout, Headers static_headers,
                   const std::string& ca_file)
    : io_(io),
      endpoint_(std::move(endpoint)),
      max_concurrent_(max_concurrent),
      timeout_(timeout),
      static_headers_(std::move(static_headers)) {
  if (!endpoint_.tls) return;
  std::string why;
  tls_ = net::client_tls_context(ca_file, &why);
  if (!tls_) throw std::runtime_error("proxy: " + why);
}

HttpPool::~HttpPool() = default;

void HttpPool::post(std::string body, std::function<void(HttpResult)> done, bool may_resend) {
  if (in_flight_ >= max_concurrent_) {
    HttpResult r;
    r.outcome = HttpResult::Outcome::busy;
    r.error = "max_concurrent (" + std::to_string(max_concurrent_) + ") requests in flight";
    boost::asio::post(io_,
                      [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    return;
  }
  ++in_flight_;
  auto x = std::make_shared<Exchange>();
  x->body = std::move(body);
  x->done = std::move(done);
  x->may_resend = may_resend;
  x->deadline = std::chrono::steady_clock::now() + timeout_;
  x->request.method(bhttp::verb::post);
  x->request.target(endpoint_.target);
  x->request.version(11);
  const bool default_port = endpoint_.port == (endpoint_.tls ? "443" : "80");
  const bool v6 = endpoint_.host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + endpoint_.host + "]" : endpoint_.host;
  x->request.set(bhttp::field::host, default_port ? host : host + ":" + endpoint_.port);
  x->request.set(bhttp::field::user_agent, "herald-proxy");
  x->request.set(bhttp::field::content_type, "application/json");
  for (const auto& [name, value] : static_headers_) x->request.set(name, value);
  x->request.keep_alive(true);
  x->request.body() = x->body;
  x->request.prepare_payload();
  start(std::move(x), false);
}

std::unique_ptr<HttpPool::Connection> HttpPool::take_idle() {
  const auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    std::unique_ptr<Connection> c = std::move(idle_.back());
    idle_.pop_back();
    if (now - c->idle_since > kMaxIdle) continue;
    // Nothing may arrive on an idle HTTP/1.1 connection: 0 is the backend's
    // FIN, bytes are its close_notify or garbage; only "nothing yet" is fit.
    char byte;
    const auto fd = c->tcp().socket().native_handle();
    const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return c;
  }
  return nullptr;
}

void HttpPool::start(std::shared_ptr<Exchange> x, bool fresh) {
  if (!fresh) {
    if (auto c = take_idle()) {
      x->conn = std::move(c);
      x->reused = true;
      send(std::move(x));
      return;
    }
  }
  x->reused = false;
  x->conn = std::make_unique<Connection>(io_, tls_.get());
  auto resolver = std::make_shared<tcp::resolver>(io_);
  resolver->async_resolve(
      endpoint_.host, endpoint_.port,
      [this, self = shared_from_this(), x, resolver](boost::system::error_code ec,
                                                     tcp::resolver::results_type results) {
        if (ec) {
          finish(x, {HttpResult::Outcome::failed, 0, {}, "resolve: " + ec.message()});
          return;
        }
        x->conn->tcp().expires_at(x->deadline);
        x->conn->tcp().async_connect(
            results, [this, self, x](boost::system::error_code ec, const tcp::endpoint&) {
              if (ec) {
                const bool timeout = ec == beast::error::timeout;
                finish(x, {timeout ? HttpResult::Outcome::timeout : HttpResult::Outcome::failed,
                           0,
                           {},
                           "connect: " + ec.message()});
                return;
              }
              // Requests are small and latency-bound: no Nagle delay.
              boost::system::error_code ignored;
              x->conn->tcp().socket().set_option(tcp::no_delay(true), ignored);
              if (x->conn->secure)
                handshake(x);
              else
                send(x);
            });
      });
}

void HttpPool::handshake(std::shared_ptr<Exchange> x) {
  auto& stream = *x->conn->secure;
  net::expect_host(stream, endpoint_.host);  // SNI, and the certificate must name the host
  stream.async_handshake(
      ssl::stream_base::client, [this, self = shared_from_this(), x](boost::system::error_code ec) {
        if (ec) {
          const bool timeout = ec == beast::error::timeout;
          finish(x, {timeout ? HttpResult::Outcome::timeout : HttpResult::Outcome::failed,
                     0,
                     {},
                     "tls handshake: " + ec.message()});
          return;
        }
        send(x);
      });
}

void HttpPool::send(std::shared_ptr<Exchange> x) {
  x->conn->tcp().expires_at(x->deadline);
  x->conn->visit([&](auto& stream) {
    bhttp::async_write(stream, x->request,
                       [this, self = shared_from_this(), x](boost::system::error_code ec, size_t) {
                         if (ec) {
                           fail(x, ec, "write", true);
                           return;
                         }
                         receive(x);
                       });
  });
}

void HttpPool::receive(std::shared_ptr<Exchange> x) {
  x->parser.emplace();
  x->parser->body_limit(kMaxReplyBytes);
  x->conn->visit([&](auto& stream) {
    bhttp::async_read(
        stream, x->conn->buffer, *x->parser,
        [this, self = shared_from_this(), x](boost::system::error_code ec, size_t) {
          if (ec) {
            // Only a request no byte of reply came for may be sent again.
            fail(x, ec, "read", !x->parser->got_some());
            return;
          }
          auto res = x->parser->release();
          HttpResult r{HttpResult::Outcome::ok, res.result_int(), std::move(res.body()), {}};
          if (res.keep_alive() && idle_.size() < max_concurrent_) {
            x->conn->tcp().expires_never();
            x->conn->buffer.clear();
            x->conn->idle_since = std::chrono::steady_clock::now();
            idle_.push_back(std::move(x->conn));
          }
          finish(x, std::move(r));
        });
  });
}

void HttpPool::fail(std::shared_ptr<Exchange> x, boost::system::error_code ec,
                    std::string_view what, bool unanswered) {
  if (ec == beast::error::timeout) {
    finish(x, {HttpResult::Outcome::timeout, 0, {}, std::string(what) + ": timed out"});
    return;
  }
  // A kept-alive connection the backend closed just as it was reused: once
  // more on a new one, when the request may run twice.
  if (x->reused && unanswered && !x->retried && x->may_resend) {
    x->retried = true;
    x->conn.reset();
    start(x, true);
    return;
  }
  finish(x, {HttpResult::Outcome::failed, 0, {}, std::string(what) + ": " + ec.message()});
}

void HttpPool::finish(std::shared_ptr<Exchange> x, HttpResult result) {
  --in_flight_;
  x->conn.reset();
  auto done = std::move(x->done);
  done(std::move(result));
}

}  // namespace herald::proxy
