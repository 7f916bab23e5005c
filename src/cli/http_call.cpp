// http_call: one request over Boost.Beast; see http_call.hpp.
#include "cli/http_call.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace herald::cli {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

// Largest reply read: a history page of history.max_request events of the
// largest data is far below it.
constexpr size_t kMaxReplyBytes = 256 * 1024 * 1024;

HttpReply http_call(const ServerUrl& server, std::string_view method, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    std::string body, Clock::time_point deadline) {
  boost::asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  const auto& ep = server.endpoint;
  HttpReply reply;
  bool done = false;
  error_code failure;
  std::string failed_step;
  const auto fail = [&](error_code ec, const char* step) {
    failure = ec;
    failed_step = step;
    done = true;
  };

  bhttp::request<bhttp::string_body> req;
  req.method(method == "POST" ? bhttp::verb::post : bhttp::verb::get);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, ep.host + ":" + ep.port);
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
    if (ec) return fail(ec, "cannot resolve the host");
    stream.async_connect(r, [&](error_code ec, const tcp::endpoint&) {
      if (ec) return fail(ec, "cannot connect");
      bhttp::async_write(stream, req, [&](error_code ec, size_t) {
        if (ec) return fail(ec, "cannot send the request");
        bhttp::async_read(stream, buffer, parser, [&](error_code ec, size_t) {
          if (ec) return fail(ec, "no reply");
          done = true;
        });
      });
    });
  });
  const bool in_time = run_until(io, done, deadline, [&] {
    resolver.cancel();
    error_code ignored;
    stream.socket().close(ignored);
  });
  if (!in_time) {
    reply.timed_out = true;
    reply.error = "timed out";
    return reply;
  }
  if (failure) {
    reply.error = failed_step + " (" + ep.host + ":" + ep.port + "): " + failure.message();
    return reply;
  }
  reply.ok = true;
  reply.status = parser.get().result_int();
  reply.body = std::move(parser.get().body());
  return reply;
}

}  // namespace herald::cli
