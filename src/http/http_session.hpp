// One HTTP/1.1 connection, plain or over TLS (net::Stream), until it closes
// or becomes a WebSocket.
//
// Reads requests with Boost.Beast (header and body limits from config, a
// deadline for each request, checked by the worker's periodic tick rather
// than a timer per connection), answers them through the Router, keeps the
// connection alive when the client asks, and hands the socket over to the
// host when a valid WebSocket upgrade arrives at the WebSocket path, along
// with any bytes read past the request (they belong to the WebSocket), or
// to an SSE session when a GET arrives at the SSE path.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "http/file_slice.hpp"
#include "net/tls_stream.hpp"
#include "proxy/forwarding.hpp"

namespace herald::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
// Answers one request: with an in-memory response, or with a file streamed
// from disk (static files). Built from a callable that takes either.
class Responder {
 public:
  Responder() = default;
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, Responder>) Responder(F f)
      : text_(f), file_(std::move(f)) {}  // NOLINT: implicit, like std::function
  void operator()(Response&& res) const { text_(std::move(res)); }
  void operator()(FileResponse&& res) const { file_(std::move(res)); }

 private:
  std::function<void(Response&&)> text_;
  std::function<void(FileResponse&&)> file_;
};

// The application's routes (server API, health, static files).
class Router {
 public:
  virtual ~Router() = default;
  // Answers `req`, which came from `peer`, by calling `respond` exactly
  // once, now or later, on the same thread.
  virtual void handle(Request&& req, const boost::asio::ip::address& peer, Responder respond) = 0;
};

struct HttpLimits {
  size_t max_body_bytes = 1024 * 1024;
  size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds request_timeout{10000};
  std::string ws_path = "/ws";
  std::vector<std::string> allowed_origins;
  // Upgrade request headers handed to the WebSocket session for the
  // connect hook ([proxy] forward_headers, forward_cookies).
  proxy::ForwardRules forward;
  bool access_log = false;        // server.access_log: a line per request
  bool compression = false;       // server.compression: accept permessage-deflate offers
  std::string sse_path = "/sse";  // server.sse_path; "": no SSE endpoint
  size_t sse_max_channels = 256;  // limits.max_channels_per_connection
  std::string token_cookie = "herald_token";  // auth.token_cookie; "": none
};

// A GET on the SSE path, handed over with its socket (nothing answered yet:
// the SSE session writes the response).
struct SseRequest {
  std::vector<std::string> channels;  // the `channel` query parameters, in order
  std::string query_token;            // the `token` query parameter, "" when absent
  std::string cookie_token;           // the auth.token_cookie cookie, "" when absent
  // The Last-Event-ID header, else the `last_event_id` query parameter.
  std::string last_event_id;
  std::string extra_headers;  // CORS response headers for an allowed Origin
  proxy::Headers forwarded;   // as for a WebSocket upgrade
};

class HttpSession;

// What an HTTP session needs from the worker that owns it.
class HttpHost {
 public:
  virtual ~HttpHost() = default;
  virtual Router& router() = 0;
  virtual const HttpLimits& http_limits() const = 0;
  // A WebSocket handshake succeeded: the stream (101 already sent; its
  // SSL, if any, goes with the socket), the bytes that followed the request,
  // and the `token` query parameter of the upgrade URL ("" when absent), and
  // the request headers HttpLimits::forward lets through; `deflate`:
  // permessage-deflate was negotiated.
  virtual void upgrade(net::Stream stream, std::string early_bytes, std::string query_token,
                       proxy::Headers forwarded, bool deflate) = 0;
  // A GET on HttpLimits::sse_path: the stream goes to an SSE session.
  virtual void open_sse(net::Stream stream, SseRequest req) = 0;
  virtual void http_session_closed(HttpSession& s) = 0;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(net::Stream stream, HttpHost& host);
  ~HttpSession();
  void start();
  // Closes the connection now (server shutdown).
  void stop();
  // Closes the connection when its current request or response is overdue.
  void check_deadline(std::chrono::steady_clock::time_point now);

 private:
  void read_request();
  void on_request(boost::beast::error_code ec);
  template <class Message>
  void write(Message&& res, bool close_after);
  template <class Out>
  void write_step(std::shared_ptr<Out> out, bool close_after);
  template <class Message>
  void log_access(const Message& res, size_t bytes);
  void write_raw(std::string bytes, bool upgrade, std::string query_token = {},
                 proxy::Headers forwarded = {}, bool deflate = false);
  // GET on the SSE path: checks the origin, hands the stream over.
  void open_sse(Request&& req);
  void finish();

  void arm_deadline();

  net::Stream stream_;
  std::chrono::steady_clock::time_point deadline_;
  HttpHost& host_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  bool finished_ = false;
  // The request being answered, for its access log line (access_log only).
  std::string access_method_;
  std::string access_path_;  // without the query: it may hold a token
  std::chrono::steady_clock::time_point access_start_;
};

// A JSON error response in the protocol's error shape; `details` is JSON
// ("" for none).
Response error_response(unsigned version, int status, std::string_view code,
                        std::string_view message, std::string_view details = {});

}  // namespace herald::http
