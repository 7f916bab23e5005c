// The backend hook replies (src/proxy/replies.hpp), the upgrade header and
// cookie allow-lists (src/proxy/forwarding.hpp) and hook URLs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/forwarding.hpp"
#include "proxy/hooks.hpp"
#include "proxy/replies.hpp"

namespace herald::proxy {
namespace {

using protocol::ErrorCode;

// The alternative T of a reply (a copy: replies are temporaries here).
template <class T, class V>
T as(const V& v) {
  EXPECT_TRUE(std::holds_alternative<T>(v));
  const T* p = std::get_if<T>(&v);
  return p ? *p : T{};
}

TEST(ProxyReplies, ConnectResultIsAnIdentity) {
  auto r = parse_connect_reply(
      R"({"result":{"user":"u1","info":{"name":"Ann"},"caps":{"chat:*":["subscribe","publish"]},)"
      R"("channels":["news"],"expire_at":1900000000,"data":{"theme":"dark"}}})");
  const auto g = as<ConnectGrant>(r);
  EXPECT_EQ(g.claims.sub, "u1");
  EXPECT_EQ(g.claims.info, R"({"name":"Ann"})");
  EXPECT_EQ(g.claims.caps.ops_for("chat:lobby"),
            static_cast<auth::OpSet>(static_cast<auth::OpSet>(auth::Op::subscribe) |
                                     static_cast<auth::OpSet>(auth::Op::publish)));
  EXPECT_EQ(g.claims.channels, std::vector<std::string>{"news"});
  EXPECT_EQ(g.claims.exp, 1900000000);
  EXPECT_EQ(g.data, R"({"theme":"dark"})");
}

TEST(ProxyReplies, ConnectResultMayBeEmpty) {
  const auto g = as<ConnectGrant>(parse_connect_reply(R"({"result":{}})"));
  EXPECT_EQ(g.claims.sub, "");
  EXPECT_EQ(g.data, "");
  EXPECT_FALSE(g.claims.exp);
}

TEST(ProxyReplies, ErrorKeepsHeraldCodesElseForbidden) {
  auto e =
      as<Refusal>(parse_connect_reply(R"({"error":{"code":"unauthorized","message":"log in"}})"));
  EXPECT_EQ(e.code, ErrorCode::unauthorized);
  EXPECT_EQ(e.message, "log in");
  e = as<Refusal>(parse_publish_reply(R"({"error":{"code":"teapot"}})"));
  EXPECT_EQ(e.code, ErrorCode::forbidden);
  EXPECT_EQ(e.message, "refused by the application");
  e = as<Refusal>(parse_subscribe_reply(R"({"error":{"code":403,"message":"no"}})"));
  EXPECT_EQ(e.code, ErrorCode::forbidden);
  e = as<Refusal>(parse_rpc_reply(R"({"error":{"code":"validation_failed","message":"x"}})"));
  EXPECT_EQ(e.code, ErrorCode::validation_failed);
  // Long messages are cut.
  const std::string longer(5000, 'a');
  e = as<Refusal>(parse_rpc_reply(R"({"error":{"message":")" + longer + "\"}}"));
  EXPECT_EQ(e.message.size(), 1024u);
}

TEST(ProxyReplies, Disconnect) {
  auto d = as<Disconnect>(parse_subscribe_reply(R"({"disconnect":{"code":4500,"reason":"bye"}})"));
  EXPECT_EQ(d.code, 4500);
  EXPECT_EQ(d.reason, "bye");
  d = as<Disconnect>(parse_publish_reply(R"({"disconnect":{}})"));
  EXPECT_EQ(d.code, 4003);
  as<Malformed>(parse_publish_reply(R"({"disconnect":{"code":1000}})"));
  as<Malformed>(parse_publish_reply(R"({"disconnect":{"code":"4001"}})"));
}

TEST(ProxyReplies, Malformed) {
  for (const char* body : {"", "nope", "[]", "{}", R"({"result":1})", R"({"result":{},"error":{}})",
                           R"({"error":"no"})", R"({"disconnect":true})", R"({"other":{}})"}) {
    EXPECT_TRUE(std::holds_alternative<Malformed>(parse_publish_reply(body))) << body;
    EXPECT_TRUE(std::holds_alternative<Malformed>(parse_connect_reply(body))) << body;
  }
  for (const char* body :
       {R"({"result":{"user":5}})", R"({"result":{"channels":"a"}})",
        R"({"result":{"channels":[1]}})", R"({"result":{"expire_at":"soon"}})",
        R"({"result":{"caps":["subscribe"]}})", R"({"result":{"caps":{"a":["fly"]}}})"})
    EXPECT_TRUE(std::holds_alternative<Malformed>(parse_connect_reply(body))) << body;
}

TEST(ProxyReplies, PublishDataReplacedOnlyWhenGiven) {
  EXPECT_FALSE(as<PublishGrant>(parse_publish_reply(R"({"result":{}})")).data);
  EXPECT_EQ(as<PublishGrant>(parse_publish_reply(R"({"result":{"data":{"a":[1,2]}}})")).data,
            R"({"a":[1,2]})");
  EXPECT_EQ(as<PublishGrant>(parse_publish_reply(R"({"result":{"data":null}})")).data, "null");
}

TEST(ProxyReplies, SubscribeAndRpc) {
  const auto s = as<SubscribeGrant>(parse_subscribe_reply(R"({"result":{"info":{"r":"mod"}}})"));
  EXPECT_EQ(s.info, R"({"r":"mod"})");
  EXPECT_EQ(s.data, "");
  EXPECT_EQ(as<RpcGrant>(parse_rpc_reply(R"({"result":{}})")).data, "null");
  EXPECT_EQ(as<RpcGrant>(parse_rpc_reply(R"({"result":{"data":"ok"}})")).data, "\"ok\"");
}

TEST(ProxyReplies, Refresh) {
  const auto g = as<RefreshGrant>(
      parse_refresh_reply(R"({"result":{"expire_at":1900000000,"info":{"v":2}}})"));
  EXPECT_EQ(g.expire_at, 1900000000);
  EXPECT_EQ(g.info, R"({"v":2})");
  EXPECT_EQ(as<RefreshGrant>(parse_refresh_reply(R"({"result":{"expire_at":5}})")).info, "");
  for (const char* body : {R"({"result":{}})", R"({"result":{"expire_at":0}})",
                           R"({"result":{"expire_at":"1900000000"}})"})
    EXPECT_TRUE(std::holds_alternative<Malformed>(parse_refresh_reply(body))) << body;
  EXPECT_EQ(as<Refusal>(parse_refresh_reply(R"({"error":{"code":"unauthorized"}})")).code,
            ErrorCode::unauthorized);
}

TEST(ProxyUrls, RpcRoutes) {
  auto r = parse_rpc_route("todos.=http://127.0.0.1:3001/rpc");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, "todos.");
  EXPECT_EQ(r->second, "http://127.0.0.1:3001/rpc");
  std::string why;
  EXPECT_FALSE(parse_rpc_route("todos.", &why));
  EXPECT_FALSE(parse_rpc_route("=http://a/", &why));
  EXPECT_FALSE(parse_rpc_route("x=ws://a/", &why));
  EXPECT_THAT(why, ::testing::HasSubstr("https://"));
}

TEST(ProxyForwarding, OnlyAllowListedHeadersAndCookies) {
  ForwardRules rules{{"authorization", "user-agent"}, {"session", "csrf"}};
  Headers out;
  forward_header(rules, "Authorization", "Bearer x", out);
  forward_header(rules, "X-Other", "y", out);
  forward_header(rules, "Cookie", "tracking=1; session=abc; csrf=t; other=2", out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (std::pair<std::string, std::string>{"authorization", "Bearer x"}));
  EXPECT_EQ(out[1], (std::pair<std::string, std::string>{"cookie", "session=abc; csrf=t"}));
  Headers none;
  forward_header(rules, "Cookie", "tracking=1", none);
  EXPECT_TRUE(none.empty());
  // Without forward_cookies, the Cookie header is a header like another.
  ForwardRules whole{{"cookie"}, {}};
  Headers all;
  forward_header(whole, "cookie", "a=1; b=2", all);
  EXPECT_EQ(all.at(0).second, "a=1; b=2");
  EXPECT_EQ(filter_cookies(" session = abc ;x=1", {"session"}), "session = abc");
}

TEST(ProxyUrls, ParseHttpUrls) {
  auto ep = parse_url("http://127.0.0.1:3000/api/herald/connect?x=1");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, "3000");
  EXPECT_EQ(ep->target, "/api/herald/connect?x=1");
  ep = parse_url("http://[::1]/");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->port, "80");
  ep = parse_url("http://backend");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->target, "/");
  std::string why;
  ep = parse_url("https://app.example.com/hooks");
  ASSERT_TRUE(ep);
  EXPECT_TRUE(ep->tls);
  EXPECT_EQ(ep->port, "443");
  EXPECT_FALSE(parse_url("http://a/")->tls);
  for (const char* bad : {"ftp://x/", "x/y", "http://", "http://:80/", "http://a:b/", "http://a:0/",
                          "http://a:70000/", "http://u:p@a/", "http://a/ b"})
    EXPECT_FALSE(parse_url(bad, &why)) << bad;
}

TEST(ProxyUrls, StaticHeaders) {
  auto h = parse_static_header("X-Herald-Secret:  abc def");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->first, "X-Herald-Secret");
  EXPECT_EQ(h->second, "abc def");
  EXPECT_FALSE(parse_static_header("no colon"));
  EXPECT_FALSE(parse_static_header(": v"));
  EXPECT_FALSE(parse_static_header("Bad Name: v"));
  EXPECT_FALSE(parse_static_header("X: a\r\nInjected: 1"));
}

}  // namespace
}  // namespace herald::proxy
