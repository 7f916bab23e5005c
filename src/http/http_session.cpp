// HttpSession: request loop, keep-alive and WebSocket hand-over; see
// http_session.hpp.
#include "http/http_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdlib>

#include "log/access_log.hpp"
#include "protocol/messages.hpp"
#include "sse/event_stream.hpp"
#include "ws/handshake.hpp"

namespace herald::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

Response error_response(unsigned version, int status, std::string_view code,
                        std::string_view message, std::string_view details) {
  Response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  std::string body = "{\"type\":\"error\",\"code\":";
  protocol::append_json_string(body, code);
  body += ",\"message\":";
  protocol::append_json_string(body, message);
  if (!details.empty()) {
    body += ",\"details\":";
    body += details;
  }
  body += '}';
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

namespace {

// The value of the `token` query parameter of `target` ("" when absent).
// JWTs are base64url and dots, which need no percent-encoding, so the value
// is taken as it is.
std::string query_token(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto param = rest.substr(0, amp);
    if (param.starts_with("token=")) return std::string(param.substr(6));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

}  // namespace

HttpSession::HttpSession(net::Stream stream, HttpHost& host)
    : stream_(std::move(stream)), host_(host) {}

HttpSession::~HttpSession() = default;

void HttpSession::start() {
  if (!stream_.tls()) {
    read_request();
    return;
  }
  // The handshake counts against the request timeout, like a slow request.
  arm_deadline();
  stream_.async_handshake([self = shared_from_this()](beast::error_code ec, size_t) {
    if (self->finished_) return;
    if (ec) {
      // A plaintext client on the TLS port, an unknown CA, a port scan: not
      // worth more than a debug line each.
      spdlog::debug("TLS handshake failed: {}", ec.message());
      self->stop();
      return;
    }
    self->read_request();
  });
}

void HttpSession::stop() {
  if (finished_) return;
  stream_.close();
  finish();
}

void HttpSession::arm_deadline() {
  deadline_ = std::chrono::steady_clock::now() + host_.http_limits().request_timeout;
}

void HttpSession::check_deadline(std::chrono::steady_clock::time_point now) {
  if (!finished_ && now >= deadline_) stop();
}

void HttpSession::finish() {
  if (finished_) return;
  finished_ = true;
  host_.http_session_closed(*this);
}

void HttpSession::read_request() {
  const auto& limits = host_.http_limits();
  parser_.emplace();
  parser_->body_limit(limits.max_body_bytes);
  parser_->header_limit(static_cast<uint32_t>(limits.max_header_bytes));
  arm_deadline();
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
}

void HttpSession::on_request(beast::error_code ec) {
  if (finished_) return;
  if (host_.http_limits().access_log) {
    access_start_ = std::chrono::steady_clock::now();
    const auto& header = parser_->get();
    const std::string_view target = header.target();
    access_method_ = ec && target.empty() ? "-" : std::string(header.method_string());
    access_path_ = target.empty() ? "-" : std::string(target.substr(0, target.find('?')));
  }
  if (ec == bhttp::error::body_limit) {
    write(error_response(11, 413, "too_large", "request body too large"), true);
    return;
  }
  if (ec == bhttp::error::header_limit) {
    write(error_response(11, 431, "too_large", "request headers too large"), true);
    return;
  }
  if (ec == bhttp::error::end_of_stream || ec == boost::asio::error::eof ||
      ec == boost::asio::error::operation_aborted || ec == boost::asio::error::connection_reset) {
    stop();
    return;
  }
  if (ec) {
    write(error_response(11, 400, "bad_request", "malformed HTTP request"), true);
    return;
  }
  Request req = parser_->release();
  const auto& limits = host_.http_limits();
  std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (!limits.sse_path.empty() && path == limits.sse_path && !ws::is_upgrade_request(req)) {
    if (req.method() != bhttp::verb::get) {
      auto res =
          error_response(req.version(), 405, "bad_request",
                         "the SSE endpoint answers GET only (publish with POST /api/publish)");
      res.set(bhttp::field::allow, "GET");
      write(std::move(res), true);
      return;
    }
    open_sse(std::move(req));
    return;
  }
  if (ws::is_upgrade_request(req) || path == limits.ws_path) {
    if (path != limits.ws_path) {
      write(error_response(req.version(), 404, "bad_request", "no WebSocket endpoint here"), true);
      return;
    }
    if (!ws::is_upgrade_request(req)) {
      auto res = error_response(req.version(), 426, "bad_request",
                                "this path expects a WebSocket upgrade");
      res.set(bhttp::field::upgrade, "websocket");
      write(std::move(res), true);
      return;
    }
    auto decision = ws::check_upgrade(req, limits.allowed_origins, limits.compression);
    proxy::Headers forwarded;  // for the connect hook: the allow-listed ones only
    if (decision.accepted && !limits.forward.empty())
      for (const auto& f : req)
        proxy::forward_header(limits.forward, f.name_string(), f.value(), forwarded);
    write_raw(std::move(decision.response), decision.accepted, query_token(target),
              std::move(forwarded), decision.deflate);
    return;
  }
  const bool keep_alive = req.keep_alive();
  const unsigned version = req.version();
  beast::error_code peer_ec;
  const auto peer = stream_.socket().remote_endpoint(peer_ec).address();  // unspecified if gone
  host_.router().handle(std::move(req), peer,
                        [self = shared_from_this(), keep_alive, version](auto&& res) {
                          res.version(version);
                          res.keep_alive(keep_alive);
                          self->write(std::move(res), !keep_alive);
                        });
}

template <class Message>
void HttpSession::write(Message&& res, bool close_after) {
  if (finished_) return;
  if (close_after) res.keep_alive(false);
  using Msg = std::decay_t<Message>;
  // The message and its serializer live until the last byte is written.
  struct Out {
    explicit Out(Msg&& m) : msg(std::move(m)), sr(msg) {}
    Msg msg;
    bhttp::response_serializer<typename Msg::body_type> sr;
    size_t written = 0;
  };
  write_step(std::make_shared<Out>(std::move(res)), close_after);
}

template <class Out>
void HttpSession::write_step(std::shared_ptr<Out> out, bool close_after) {
  // Re-armed at each step: a large file may take long to send, but never
  // longer than request_timeout without progress.
  arm_deadline();
  bhttp::async_write_some(
      stream_, out->sr,
      [self = shared_from_this(), out, close_after](beast::error_code ec, size_t bytes) {
        out->written += bytes;
        if (!ec && !out->sr.is_done()) {
          self->write_step(out, close_after);
          return;
        }
        if (self->host_.http_limits().access_log) self->log_access(out->msg, out->written);
        if (ec || close_after) {
          self->stop();
          return;
        }
        self->read_request();
      });
}

namespace {

// The status of a response written as raw bytes ("HTTP/1.1 403 ..."), for
// log_access.
struct RawStatus {
  unsigned status;
  unsigned result_int() const { return status; }
};

}  // namespace

template <class Message>
void HttpSession::log_access(const Message& res, size_t bytes) {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - access_start_)
          .count();
  beast::error_code ec;
  const auto peer = stream_.socket().remote_endpoint(ec);
  log::http_access(access_method_, access_path_, res.result_int(), bytes, ms,
                   ec ? std::string("-") : peer.address().to_string());
}

void HttpSession::write_raw(std::string bytes, bool upgrade, std::string query_token,
                            proxy::Headers forwarded, bool deflate) {
  auto data = std::make_shared<std::string>(std::move(bytes));
  arm_deadline();
  boost::asio::async_write(
      stream_, boost::asio::buffer(*data),
      [self = shared_from_this(), data, upgrade, token = std::move(query_token),
       forwarded = std::move(forwarded), deflate](beast::error_code ec, size_t written) mutable {
        if (self->finished_) return;
        if (ec || !upgrade) {
          // A refused upgrade is an HTTP request like any other (an accepted
          // one is logged as a WebSocket connect by the worker).
          if (self->host_.http_limits().access_log && data->size() > 12)
            self->log_access(RawStatus{static_cast<unsigned>(std::atoi(data->c_str() + 9))},
                             written);
          self->stop();
          return;
        }
        auto pending = self->buffer_.data();
        std::string early(static_cast<const char*>(pending.data()), pending.size());
        auto stream = std::move(self->stream_);
        self->finish();
        self->host_.upgrade(std::move(stream), std::move(early), std::move(token),
                            std::move(forwarded), deflate);
      });
}

void HttpSession::open_sse(Request&& req) {
  const auto& limits = host_.http_limits();
  SseRequest sse;
  // The same origin rule as the WebSocket handshake; an allowed cross-origin
  // page also needs CORS headers to read the stream (with its cookies).
  const std::string_view origin = req[bhttp::field::origin];
  if (!limits.allowed_origins.empty()) {
    const bool allowed = std::any_of(
        limits.allowed_origins.begin(), limits.allowed_origins.end(), [&](const std::string& o) {
          return o == "*" || (!origin.empty() && beast::iequals(o, origin));
        });
    if (!allowed) {
      write(error_response(req.version(), 403, "forbidden", "origin not allowed"), true);
      return;
    }
    if (!origin.empty()) {
      sse.extra_headers = "Access-Control-Allow-Origin: " + std::string(origin) +
                          "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
    }
  }
  auto query = sse::parse_query(req.target(), limits.sse_max_channels);
  if (!query.error.empty()) {
    write(error_response(req.version(), 400, "bad_request", query.error), true);
    return;
  }
  sse.channels = std::move(query.channels);
  sse.query_token = std::move(query.token);
  sse.last_event_id = std::string(req["Last-Event-ID"]);
  if (sse.last_event_id.empty()) sse.last_event_id = std::move(query.last_event_id);
  if (!limits.token_cookie.empty())
    sse.cookie_token = sse::cookie_value(req[bhttp::field::cookie], limits.token_cookie);
  if (!limits.forward.empty())
    for (const auto& f : req)
      proxy::forward_header(limits.forward, f.name_string(), f.value(), sse.forwarded);
  // Logged by the worker as a connect and a close, like a WebSocket (its
  // status is only known once the session answered).
  auto stream = std::move(stream_);
  finish();
  host_.open_sse(std::move(stream), std::move(sse));
}

}  // namespace herald::http
