// WebSocket opening handshake (RFC 6455 section 4.2), server side: checks an
// upgrade request parsed by Beast and renders the exact response bytes, the
// 101 with Sec-WebSocket-Accept or a JSON error answer that closes the
// connection. permessage-deflate is answered when enabled and acceptable
// (ws/deflate_offer.cpp); other extensions and subprotocols are declined by
// not echoing them.
#include "ws/handshake.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <vector>

#include "ws/deflate_offer.hpp"

namespace herald::ws {
namespace {

namespace http = boost::beast::http;
namespace base64 = boost::beast::detail::base64;

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kKeyBytes = 16;
constexpr size_t kKeyChars = 24;  // base64 of 16 bytes, "==" padded

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  const auto ows = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && ows(s.back())) s.remove_suffix(1);
  return s;
}

template <class String>
std::string_view view(const String& s) {
  return std::string_view(s.data(), s.size());
}

// Whether any `field` header holds `token` in its comma-separated list
// (case-insensitive, as for Connection and Upgrade).
bool has_token(const http::request_header<>& req, http::field field, std::string_view token) {
  auto [it, end] = req.equal_range(field);
  for (; it != end; ++it) {
    std::string_view list = view(it->value());
    while (!list.empty()) {
      const size_t comma = list.find(',');
      if (iequals(trim(list.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return false;
}

// The single value of `field`, or false when it is absent or repeated.
bool single_value(const http::request_header<>& req, http::field field, std::string_view& out) {
  auto [it, end] = req.equal_range(field);
  if (it == end || std::next(it) != end) return false;
  out = trim(view(it->value()));
  return true;
}

bool valid_key(std::string_view key) {
  if (key.size() != kKeyChars || key.substr(kKeyChars - 2) != "==") return false;
  unsigned char decoded[base64::decoded_size(kKeyChars)];
  const auto [written, read] = base64::decode(decoded, key.data(), key.size());
  return written == kKeyBytes && read == kKeyChars - 2;
}

std::string json_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view status_text(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 426:
      return "Upgrade Required";
    default:
      return "Error";
  }
}

UpgradeDecision refuse(int status, std::string reason) {
  std::string body = R"({"type":"error","code":")";
  body += status == 403 ? "forbidden" : "bad_request";
  body += R"(","message":")";
  body += json_escape(reason);
  body += "\"}";

  UpgradeDecision d;
  d.status = status;
  d.response = "HTTP/1.1 " + std::to_string(status) + " ";
  d.response += status_text(status);
  d.response += "\r\nContent-Type: application/json\r\nContent-Length: ";
  d.response += std::to_string(body.size());
  d.response += "\r\nConnection: close\r\n";
  if (status == 426) d.response += "Sec-WebSocket-Version: 13\r\n";  // RFC 6455 4.4
  d.response += "\r\n";
  d.response += body;
  d.reason = std::move(reason);
  return d;
}

}  // namespace

bool is_upgrade_request(const http::request_header<>& req) {
  return has_token(req, http::field::upgrade, "websocket");
}

UpgradeDecision check_upgrade(const http::request_header<>& req,
                              const std::vector<std::string>& allowed_origins, bool deflate) {
  if (req.method() != http::verb::get) return refuse(400, "WebSocket upgrade requires GET");
  if (req.version() < 11) return refuse(400, "WebSocket upgrade requires HTTP/1.1");
  if (!has_token(req, http::field::upgrade, "websocket")) {
    return refuse(400, "missing Upgrade: websocket");
  }
  if (!has_token(req, http::field::connection, "upgrade")) {
    return refuse(400, "missing Connection: Upgrade");
  }
  std::string_view key;
  if (!single_value(req, http::field::sec_websocket_key, key) || !valid_key(key)) {
    return refuse(400, "missing or invalid Sec-WebSocket-Key");
  }
  std::string_view version;
  if (!single_value(req, http::field::sec_websocket_version, version) || version != "13") {
    return refuse(426, "unsupported Sec-WebSocket-Version (13 required)");
  }
  if (!allowed_origins.empty()) {
    const std::string_view origin = trim(view(req[http::field::origin]));
    const bool allowed = std::any_of(
        allowed_origins.begin(), allowed_origins.end(),
        [&](const std::string& o) { return o == "*" || (!origin.empty() && iequals(o, origin)); });
    if (!allowed) return refuse(403, "origin not allowed");
  }

  UpgradeDecision d;
  d.accepted = true;
  d.status = 101;
  d.response =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  d.response += accept_key(key);
  d.response += "\r\n";
  if (deflate) {
    std::vector<std::string_view> offers;
    auto [it, end] = req.equal_range(http::field::sec_websocket_extensions);
    for (; it != end; ++it) offers.push_back(view(it->value()));
    if (const auto answer = negotiate_deflate(offers); !answer.empty()) {
      d.response += "Sec-WebSocket-Extensions: ";
      d.response += answer;
      d.response += "\r\n";
      d.deflate = true;
    }
  }
  d.response += "\r\n";
  return d;
}

std::string accept_key(std::string_view client_key) {
  std::string input;
  input.reserve(client_key.size() + kWebSocketGuid.size());
  input.append(client_key).append(kWebSocketGuid);
  // OpenSSL 3 looks the algorithm up by name on every EVP_Digest call with
  // EVP_sha1() (~40% of a handshake's instructions); fetch it once per
  // thread and reuse one context.
  struct Sha1 {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Sha1() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local Sha1 sha1;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (!sha1.md || !sha1.ctx || EVP_DigestInit_ex(sha1.ctx, sha1.md, nullptr) != 1 ||
      EVP_DigestUpdate(sha1.ctx, input.data(), input.size()) != 1 ||
      EVP_DigestFinal_ex(sha1.ctx, digest, &digest_len) != 1) {
    return {};  // only on allocation failure inside OpenSSL; the peer then fails the handshake
  }
  std::string out(base64::encoded_size(digest_len), '\0');
  out.resize(base64::encode(out.data(), digest, digest_len));
  return out;
}

}  // namespace herald::ws
