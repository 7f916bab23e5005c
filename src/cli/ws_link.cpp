// WsLink: the client's WebSocket over Boost.Beast; see ws_link.hpp.
#include "cli/ws_link.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <optional>

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
  explicit Impl(boost::asio::io_context& io) : io(io), ws(io) {}

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
      const auto& reason = ws.reason();
      return {LinkStatus::Kind::closed, static_cast<uint16_t>(reason.code),
              std::string(reason.reason.data(), reason.reason.size())};
    }
    return {LinkStatus::Kind::failed, 0, std::string(what) + ": " + result.message()};
  }

  void abort() {
    error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
  }

  boost::asio::io_context& io;
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
};

WsLink::WsLink(boost::asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
WsLink::~WsLink() = default;

LinkStatus WsLink::open(const ServerUrl& server, Clock::time_point deadline) {
  auto& im = *impl_;
  tcp::resolver resolver(im.io);
  tcp::resolver::results_type addresses;
  const auto& ep = server.endpoint;
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
  status = im.step(deadline, "cannot connect to " + ep.host + ":" + ep.port, [&](auto done) {
    beast::get_lowest_layer(im.ws).async_connect(
        addresses, [done](error_code ec, const tcp::endpoint&) { done(ec); });
  });
  if (!status.ok()) return status;
  im.ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "herald-cli/" HERALD_VERSION);
  }));
  const std::string host = ep.host + ":" + ep.port;
  status = im.step(deadline, "WebSocket upgrade at " + server.ws_target, [&](auto done) {
    im.ws.async_handshake(host, server.ws_target, [done](error_code ec) { done(ec); });
  });
  if (status.ok()) im.ws.text(true);
  return status;
}

LinkStatus WsLink::send(std::string_view text, Clock::time_point deadline) {
  auto& im = *impl_;
  return im.step(deadline, "send", [&](auto done) {
    im.ws.async_write(boost::asio::buffer(text.data(), text.size()),
                      [done](error_code ec, size_t) { done(ec); });
  });
}

LinkStatus WsLink::receive(std::string& text, Clock::time_point deadline) {
  auto& im = *impl_;
  im.buffer.clear();
  auto status = im.step(deadline, "receive", [&](auto done) {
    im.ws.async_read(im.buffer, [done](error_code ec, size_t) { done(ec); });
  });
  if (status.ok()) text = beast::buffers_to_string(im.buffer.data());
  return status;
}

void WsLink::close(Clock::time_point deadline) {
  auto& im = *impl_;
  if (im.ws.is_open()) {
    im.step(deadline, "close", [&](auto done) {
      im.ws.async_close(websocket::close_code::normal, [done](error_code ec) { done(ec); });
    });
  }
  im.abort();
}

void WsLink::abort() {
  impl_->abort();
}

}  // namespace herald::cli
