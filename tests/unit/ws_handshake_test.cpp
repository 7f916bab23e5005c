// Unit tests for the WebSocket opening handshake (src/ws/handshake.*):
// the RFC 6455 accept key, token matching of Connection/Upgrade, every
// refusal with its status and JSON body, the origin allow-list, and that
// offered extensions and subprotocols are declined.
#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <vector>

#include "ws/handshake.hpp"

namespace {

namespace http = boost::beast::http;
namespace ws = herald::ws;

constexpr const char* kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
// RFC 6455 section 1.3 (a SHA-1 digest is 20 bytes: 28 base64 characters).
constexpr const char* kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

http::request_header<> valid_request() {
  http::request_header<> req;
  req.method(http::verb::get);
  req.target("/ws");
  req.version(11);
  req.set(http::field::host, "server.example.com");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::sec_websocket_key, kRfcKey);
  req.set(http::field::sec_websocket_version, "13");
  return req;
}

const std::vector<std::string> kAnyOrigin;

// Parses a complete HTTP response and checks it is framed correctly.
http::response<http::string_body> parse_response(const std::string& bytes) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(bytes), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(used, bytes.size()) << "trailing bytes after the response";
  EXPECT_TRUE(parser.is_done()) << "incomplete response:\n" << bytes;
  return parser.release();
}

void expect_refusal(const ws::UpgradeDecision& d, int status,
                    const std::string& code = "bad_request") {
  EXPECT_FALSE(d.accepted);
  EXPECT_EQ(d.status, status);
  EXPECT_FALSE(d.reason.empty());
  const auto res = parse_response(d.response);
  EXPECT_EQ(res.result_int(), static_cast<unsigned>(status));
  EXPECT_EQ(res.version(), 11u);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
  EXPECT_EQ(res[http::field::connection], "close");
  EXPECT_EQ(res.body(),
            R"({"type":"error","code":")" + code + R"(","message":")" + d.reason + R"("})");
  EXPECT_EQ(res.count(http::field::sec_websocket_accept), 0u);
}

TEST(WsHandshake, AcceptKeyRfc6455Example) {
  EXPECT_EQ(ws::accept_key(kRfcKey), kRfcAccept);
  // The example exchange shown on Wikipedia's WebSocket page.
  EXPECT_EQ(ws::accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(WsHandshake, ValidRequestIsAcceptedWithExactResponse) {
  const auto d = ws::check_upgrade(valid_request(), kAnyOrigin);
  EXPECT_TRUE(d.accepted);
  EXPECT_EQ(d.status, 101);
  EXPECT_EQ(d.response,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "\r\n");
}

TEST(WsHandshake, IsUpgradeRequest) {
  EXPECT_TRUE(ws::is_upgrade_request(valid_request()));
  auto req = valid_request();
  req.set(http::field::upgrade, "h2c, WebSocket");
  EXPECT_TRUE(ws::is_upgrade_request(req));
  req.erase(http::field::upgrade);
  EXPECT_FALSE(ws::is_upgrade_request(req));
  req.set(http::field::upgrade, "h2c");
  EXPECT_FALSE(ws::is_upgrade_request(req));
  req.set(http::field::upgrade, "websockets");
  EXPECT_FALSE(ws::is_upgrade_request(req));
}

TEST(WsHandshake, ConnectionAndUpgradeTokensAreCaseInsensitiveLists) {
  for (const char* connection : {"Upgrade", "upgrade", "UPGRADE", "keep-alive, Upgrade",
                                 "keep-alive,upgrade", "Upgrade , keep-alive", "close,\tupgrade"}) {
    auto req = valid_request();
    req.set(http::field::connection, connection);
    EXPECT_TRUE(ws::check_upgrade(req, kAnyOrigin).accepted) << connection;
  }
  for (const char* upgrade : {"websocket", "WebSocket", "WEBSOCKET", "foo, websocket"}) {
    auto req = valid_request();
    req.set(http::field::upgrade, upgrade);
    EXPECT_TRUE(ws::check_upgrade(req, kAnyOrigin).accepted) << upgrade;
  }
  // Tokens spread over several header lines count too.
  auto req = valid_request();
  req.set(http::field::connection, "keep-alive");
  req.insert(http::field::connection, "Upgrade");
  EXPECT_TRUE(ws::check_upgrade(req, kAnyOrigin).accepted);
  // But a token only containing "upgrade" does not.
  req = valid_request();
  req.set(http::field::connection, "upgraded, keep-alive");
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
}

TEST(WsHandshake, NonGetIsRefused) {
  for (auto verb : {http::verb::post, http::verb::put, http::verb::head}) {
    auto req = valid_request();
    req.method(verb);
    expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
  }
}

TEST(WsHandshake, Http10IsRefused) {
  auto req = valid_request();
  req.version(10);
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
}

TEST(WsHandshake, MissingUpgradeOrConnectionIsRefused) {
  auto req = valid_request();
  req.erase(http::field::upgrade);
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
  req = valid_request();
  req.set(http::field::upgrade, "h2c");
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
  req = valid_request();
  req.erase(http::field::connection);
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
  req = valid_request();
  req.set(http::field::connection, "keep-alive");
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
}

TEST(WsHandshake, MissingOrInvalidKeyIsRefused) {
  auto req = valid_request();
  req.erase(http::field::sec_websocket_key);
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
  for (const char* key : {
           "",
           "dGhlIHNhbXBsZQ==",              // 10 bytes
           "dGhlIHNhbXBsZSBub25jZSEh",      // 18 bytes, no padding
           "dGhlIHNhbXBsZSBub25jZQ",        // padding missing
           "dGhlIHNhbXBsZSBub25jZQ=",       // half the padding
           "dGhlIHNhbXBsZSBub25j*Q==",      // not base64
           "dGhlIHNhbXBsZSBub25jZ===",      // padding too early
           "dGhlIHNhbXBsZSBub25jZQ==AAAA",  // 19 bytes
       }) {
    req = valid_request();
    req.set(http::field::sec_websocket_key, key);
    expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
  }
  // Two keys are ambiguous.
  req = valid_request();
  req.insert(http::field::sec_websocket_key, "AQIDBAUGBwgJCgsMDQ4PEA==");
  expect_refusal(ws::check_upgrade(req, kAnyOrigin), 400);
  // Any 16 bytes will do.
  req = valid_request();
  req.set(http::field::sec_websocket_key, "AQIDBAUGBwgJCgsMDQ4PEA==");
  EXPECT_TRUE(ws::check_upgrade(req, kAnyOrigin).accepted);
}

TEST(WsHandshake, WrongVersionGets426WithSupportedVersion) {
  for (const char* version : {"8", "12", "14", "13, 8", ""}) {
    auto req = valid_request();
    req.set(http::field::sec_websocket_version, version);
    const auto d = ws::check_upgrade(req, kAnyOrigin);
    expect_refusal(d, 426);
    EXPECT_EQ(parse_response(d.response)[http::field::sec_websocket_version], "13") << version;
  }
  auto req = valid_request();
  req.erase(http::field::sec_websocket_version);
  const auto d = ws::check_upgrade(req, kAnyOrigin);
  expect_refusal(d, 426);
  EXPECT_NE(d.response.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
}

TEST(WsHandshake, OriginAllowList) {
  const std::vector<std::string> allowed = {"https://app.example.com", "http://localhost:3000"};
  auto req = valid_request();
  req.set(http::field::origin, "https://app.example.com");
  EXPECT_TRUE(ws::check_upgrade(req, allowed).accepted);
  req.set(http::field::origin, "http://localhost:3000");
  EXPECT_TRUE(ws::check_upgrade(req, allowed).accepted);

  req.set(http::field::origin, "https://evil.example.com");
  expect_refusal(ws::check_upgrade(req, allowed), 403, "forbidden");
  req.set(http::field::origin, "https://app.example.com.evil.com");
  expect_refusal(ws::check_upgrade(req, allowed), 403, "forbidden");
  req.set(http::field::origin, "http://localhost:3001");
  expect_refusal(ws::check_upgrade(req, allowed), 403, "forbidden");
  req.erase(http::field::origin);
  expect_refusal(ws::check_upgrade(req, allowed), 403, "forbidden");

  // "*" allows anything, an empty list allows anything.
  req.set(http::field::origin, "https://evil.example.com");
  EXPECT_TRUE(ws::check_upgrade(req, {"https://app.example.com", "*"}).accepted);
  EXPECT_TRUE(ws::check_upgrade(req, kAnyOrigin).accepted);
  req.erase(http::field::origin);
  EXPECT_TRUE(ws::check_upgrade(req, {"*"}).accepted);
  EXPECT_TRUE(ws::check_upgrade(req, kAnyOrigin).accepted);
}

TEST(WsHandshake, ExtensionsAndSubprotocolsAreNotEchoed) {
  auto req = valid_request();
  req.set(http::field::sec_websocket_extensions,
          "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame");
  req.set(http::field::sec_websocket_protocol, "chat, superchat");
  const auto d = ws::check_upgrade(req, kAnyOrigin);
  ASSERT_TRUE(d.accepted);
  EXPECT_EQ(d.response.find("Sec-WebSocket-Extensions"), std::string::npos);
  EXPECT_EQ(d.response.find("Sec-WebSocket-Protocol"), std::string::npos);
  EXPECT_EQ(d.response.find("deflate"), std::string::npos);
  EXPECT_NE(d.response.find(std::string("Sec-WebSocket-Accept: ") + kRfcAccept + "\r\n"),
            std::string::npos);
}

TEST(WsHandshake, AcceptedResponseParsesAsHttp) {
  const auto d = ws::check_upgrade(valid_request(), kAnyOrigin);
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a 101 has no body
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(d.response), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_header_done());
  const auto& res = parser.get();
  EXPECT_EQ(res.result(), http::status::switching_protocols);
  EXPECT_EQ(res[http::field::upgrade], "websocket");
  EXPECT_EQ(res[http::field::connection], "Upgrade");
  EXPECT_EQ(res[http::field::sec_websocket_accept], std::string(kRfcAccept));
}

}  // namespace
