// A pooled keep-alive HTTP/1.1 client for one backend endpoint, on one
// worker's io_context (Boost.Beast): the transport of the backend hooks
// (proxy::Hooks). Owns its connections and nothing else; it knows neither
// hooks nor sessions.
//
// Bounded: at most `max_concurrent` requests in flight; one more fails at
// once with `busy` instead of queueing (a slow backend must not grow a
// backlog). Each request has a deadline (connecting included) after which
// it fails with `timeout`. Connections are reused while the backend keeps
// them alive, at most kMaxIdle after their last reply (shorter than common
// keep-alive timeouts, e.g. Node's 5 s), and only after a check that the
// backend has not closed them meanwhile. A request that still fails on a
// reused connection before any reply arrived (the backend closed it at that
// very moment) is sent once more on a new one, if the caller said it may
// be: the backend may have run it (it could have crashed before answering),
// so requests that are not safe to run twice (an rpc, a publish hook that
// stores) fail instead.
//
// https:// URLs are served over TLS (OpenSSL through Boost.Asio): the
// backend's certificate must chain to the system's CA store (or to
// [proxy] ca_file) and name the URL's host.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace herald::proxy {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Endpoint {
  std::string host;    // name or address, without brackets
  std::string port;    // "80" by default
  std::string target;  // path and query, "/" at least
  bool tls = false;    // https://
};

// Parses "http[s]://host[:port][/path]"; nullopt and `why` when it is not one.
std::optional<Endpoint> parse_url(std::string_view url, std::string* why = nullptr);

struct HttpResult {
  enum class Outcome { ok, busy, timeout, failed };
  Outcome outcome = Outcome::failed;
  unsigned status = 0;  // the HTTP status when ok
  std::string body;     // when ok
  std::string error;    // what failed (for logs; never holds header values)
};

class HttpPool : public std::enable_shared_from_this<HttpPool> {
 public:
  // `ca_file`: for https, a PEM file of the CAs to trust instead of the
  // system's ("" for those). Throws std::runtime_error when it cannot be read.
  HttpPool(boost::asio::io_context& io, Endpoint endpoint, size_t max_concurrent,
           std::chrono::milliseconds timeout, Headers static_headers,
           const std::string& ca_file = {});
  ~HttpPool();

  // How long a kept-alive connection may stay idle and still be reused.
  static constexpr std::chrono::seconds kMaxIdle{4};

  // POSTs `body` (JSON) with `headers` and the static headers; `done` runs
  // on the io_context's thread, never before post() returns. `may_resend`:
  // the request may be sent a second time (see above).
  void post(std::string body, std::function<void(HttpResult)> done, bool may_resend = true);

  size_t in_flight() const { return in_flight_; }
  size_t idle_connections() const { return idle_.size(); }

 private:
  struct Connection;
  struct Exchange;
  void start(std::shared_ptr<Exchange> x, bool fresh);
  // An idle connection fit for a request: not idle too long, and the
  // backend has neither closed it nor sent anything since its last reply.
  std::unique_ptr<Connection> take_idle();
  void handshake(std::shared_ptr<Exchange> x);
  void send(std::shared_ptr<Exchange> x);
  void receive(std::shared_ptr<Exchange> x);
  // A failed write or read; `unanswered`: no byte of the reply arrived.
  void fail(std::shared_ptr<Exchange> x, boost::system::error_code ec, std::string_view what,
            bool unanswered);
  void finish(std::shared_ptr<Exchange> x, HttpResult result);

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  size_t max_concurrent_;
  std::chrono::milliseconds timeout_;
  Headers static_headers_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // https only
  size_t in_flight_ = 0;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace herald::proxy
