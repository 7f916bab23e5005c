// WsLink: the client's WebSocket over Boost.Beast, plain or TLS (https://
// and wss:// URLs); see ws_link.hpp.
#include "cli/ws_link.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <functional>

#include "net/tls_client.hpp"

namespace herald::cli {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

std::string LinkStatus::describe() const {
  switch (kind) {
    case Kind::ok:
      return "ok";
    case Kind::timeout:
      return "timed out";
    case Kind::closed:
      return "closed by the server (" + std::to_string(close_code) +
             (what.empty() ? std::string() : " " + what) + ")";
    case Kind::failed:
      break;
  }
  return what;
}

struct WsLink::Impl {
  using PlainWs = websocket::stream<beast::tcp_stream>;
  using TlsWs = websocket::stream<net::TlsStream>;

  explicit Impl(boost::asio::io_context& io) : io(io) {}

  // Calls f with the stream, whichever kind open() made.
  template <class F>
  decltype(auto) with_ws(F&& f) {
    return tls ? f(*tls) : f(*plain);
  }

  // Runs until the operation started by `start(done_handler)` completes.
  // `cancel` makes it complete at the deadline (default: close the socket).
  template <class Start>
  LinkStatus step(Clock::time_point deadline, std::string_view what, Start start,
                  const std::function<void()>& cancel = {}) {
    bool done = false;
    error_code result;
    start([&](error_code ec) {
      result = ec;
      done = true;
    });
    const std::function<void()> stop = cancel ? cancel : std::function<void()>([this] { abort(); });
    if (!run_until(io, done, deadline, stop)) return {LinkStatus::Kind::timeout, 0, {}};
    if (!result) return {};
    if (result == websocket::error::closed) {
      const auto reason = with_ws([](auto& ws) { return ws.reason(); });
      return {LinkStatus::Kind::closed, static_cast<uint16_t>(reason.code),
              std::string(reason.reason.data(), reason.reason.size())};
    }
    return {LinkStatus::Kind::failed, 0, std::string(what) + ": " + result.message()};
  }

  void abort() {
    error_code ignored;
    if (tls) beast::get_lowest_layer(*tls).socket().close(ignored);
    if (plain) beast::get_lowest_layer(*plain).socket().close(ignored);
  }

  boost::asio::io_context& io;
  std::unique_ptr<boost::asio::ssl::context> tls_context;
  std::unique_ptr<PlainWs> plain;  // one of these two, once open() began
  std::unique_ptr<TlsWs> tls;
  beast::flat_buffer buffer;
};

WsLink::WsLink(boost::asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
WsLink::~WsLink() = default;

LinkStatus WsLink::open(const ServerUrl& server, Clock::time_point deadline) {
  auto& im = *impl_;
  const auto& ep = server.endpoint;
  if (ep.tls) {
    std::string why;
    im.tls_context = net::client_tls_context(server.ca_file, &why);
    if (!im.tls_context) return {LinkStatus::Kind::failed, 0, why};
    im.tls = std::make_unique<Impl::TlsWs>(im.io, *im.tls_context);
    net::expect_host(im.tls->next_layer(), ep.host);
  } else {
    im.plain = std::make_unique<Impl::PlainWs>(im.io);
  }
  tcp::resolver resolver(im.io);
  tcp::resolver::results_type addresses;
  auto status = im.step(
      deadline, "cannot resolve " + ep.host,
      [&](auto done) {
        resolver.async_resolve(ep.host, ep.port,
                               [&, done](error_code ec, tcp::resolver::results_type r) {
                                 addresses = std::move(r);
                                 done(ec);
                               });
      },
      [&] { resolver.cancel(); });
  if (!status.ok()) return status;
  status = im.step(deadline, "cannot connect to " + host_port(ep), [&](auto done) {
    im.with_ws([&](auto& ws) {
      beast::get_lowest_layer(ws).async_connect(
          addresses, [done](error_code ec, const tcp::endpoint&) { done(ec); });
    });
  });
  if (!status.ok()) return status;
  if (im.tls) {
    status = im.step(deadline, "TLS handshake with " + host_port(ep), [&](auto done) {
      im.tls->next_layer().async_handshake(boost::asio::ssl::stream_base::client,
                                           [done](error_code ec) { done(ec); });
    });
    if (!status.ok()) return status;
  }
  return im.with_ws([&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "herald-cli/" HERALD_VERSION);
    }));
    const std::string host = host_header(ep);
    auto st = im.step(deadline, "WebSocket upgrade at " + server.ws_target, [&](auto done) {
      ws.async_handshake(host, server.ws_target, [done](error_code ec) { done(ec); });
    });
    if (st.ok()) ws.text(true);
    return st;
  });
}

LinkStatus WsLink::send(std::string_view text, Clock::time_point deadline) {
  auto& im = *impl_;
  return im.with_ws([&](auto& ws) {
    return im.step(deadline, "send", [&](auto done) {
      ws.async_write(boost::asio::buffer(text.data(), text.size()),
                     [done](error_code ec, size_t) { done(ec); });
    });
  });
}

LinkStatus WsLink::receive(std::string& text, Clock::time_point deadline) {
  auto& im = *impl_;
  im.buffer.clear();
  auto status = im.with_ws([&](auto& ws) {
    return im.step(deadline, "receive", [&](auto done) {
      ws.async_read(im.buffer, [done](error_code ec, size_t) { done(ec); });
    });
  });
  if (status.ok()) text = beast::buffers_to_string(im.buffer.data());
  return status;
}

void WsLink::close(Clock::time_point deadline) {
  auto& im = *impl_;
  if (!im.tls && !im.plain) return;
  im.with_ws([&](auto& ws) {
    if (!ws.is_open()) return;
    im.step(deadline, "close", [&](auto done) {
      ws.async_close(websocket::close_code::normal, [done](error_code ec) { done(ec); });
    });
  });
  im.abort();
}

void WsLink::abort() {
  impl_->abort();
}

}  // namespace herald::cli
