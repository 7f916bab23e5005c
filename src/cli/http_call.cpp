// http_call: one request over Boost.Beast, plain or TLS; see http_call.hpp.
#include "cli/http_call.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <functional>
#include <optional>

#include "net/tls_client.hpp"

namespace herald::cli {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

namespace {

// Largest reply read: a history page of history.max_request events of the
// largest data is far below it.
constexpr size_t kMaxReplyBytes = 256 * 1024 * 1024;

using Done = std::function<void(error_code, const char* step)>;

// Sends `req` on the connected `stream` and reads the reply into `parser`.
template <class Stream>
void exchange(Stream& stream, bhttp::request<bhttp::string_body>& req, beast::flat_buffer& buffer,
              bhttp::response_parser<bhttp::string_body>& parser, Done done) {
  bhttp::async_write(stream, req, [&stream, &buffer, &parser, done](error_code ec, size_t) {
    if (ec) return done(ec, "cannot send the request");
    bhttp::async_read(stream, buffer, parser,
                      [done](error_code ec, size_t) { done(ec, ec ? "no reply" : ""); });
  });
}

}  // namespace

HttpReply http_call(const ServerUrl& server, std::string_view method, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    std::string body, Clock::time_point deadline) {
  const auto& ep = server.endpoint;
  HttpReply reply;
  boost::asio::io_context io;
  std::unique_ptr<boost::asio::ssl::context> tls_context;
  std::optional<beast::tcp_stream> plain;
  std::optional<net::TlsStream> tls;
  if (ep.tls) {
    tls_context = net::client_tls_context(server.ca_file, &reply.error);
    if (!tls_context) return reply;
    tls.emplace(io, *tls_context);
    net::expect_host(*tls, ep.host);
  } else {
    plain.emplace(io);
  }
  auto& socket = tls ? beast::get_lowest_layer(*tls).socket() : plain->socket();
  tcp::resolver resolver(io);
  bool done = false;
  error_code failure;
  std::string failed_step;
  const Done finish = [&](error_code ec, const char* step) {
    failure = ec;
    failed_step = step;
    done = true;
  };

  bhttp::request<bhttp::string_body> req;
  req.method(method == "POST" ? bhttp::verb::post : bhttp::verb::get);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, host_header(ep));
  req.set(bhttp::field::user_agent, "herald-cli/" HERALD_VERSION);
  req.set(bhttp::field::connection, "close");
  for (const auto& [name, value] : headers) req.set(name, value);
  if (req.method() == bhttp::verb::post) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxReplyBytes);

  resolver.async_resolve(ep.host, ep.port, [&](error_code ec, tcp::resolver::results_type r) {
    if (ec) return finish(ec, "cannot resolve the host");
    auto& lowest = tls ? beast::get_lowest_layer(*tls) : *plain;
    lowest.async_connect(r, [&](error_code ec, const tcp::endpoint&) {
      if (ec) return finish(ec, "cannot connect");
      if (!tls) return exchange(*plain, req, buffer, parser, finish);
      tls->async_handshake(boost::asio::ssl::stream_base::client, [&](error_code ec) {
        if (ec) return finish(ec, "TLS handshake");
        exchange(*tls, req, buffer, parser, finish);
      });
    });
  });
  const bool in_time = run_until(io, done, deadline, [&] {
    resolver.cancel();
    error_code ignored;
    socket.close(ignored);
  });
  if (!in_time) {
    reply.timed_out = true;
    reply.error = "timed out";
    return reply;
  }
  if (failure) {
    reply.error = failed_step + " (" + host_port(ep) + "): " + failure.message();
    return reply;
  }
  reply.ok = true;
  reply.status = parser.get().result_int();
  reply.body = std::move(parser.get().body());
  return reply;
}

}  // namespace herald::cli
