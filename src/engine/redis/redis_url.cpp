// Parsing and printing of redis URLs (redis_url.hpp). Every error message is
// built from fixed text and the parts after the user info only: the user
// info is found first (by the LAST '@', since a raw password may contain '/',
// '?' or '@') and never echoed.
#include "engine/redis/redis_url.hpp"

#include <charconv>
#include <stdexcept>

namespace herald::engine::redis {
namespace {

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("engine.redis_url: " + what);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `what` names the part ("the user", "the password"); its text is not shown.
std::string percent_decode(std::string_view s, const char* what) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) bad(std::string("bad percent-escape in ") + what);
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int64_t parse_db(std::string_view s) {
  int64_t db = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), db);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || db < 0 || db > 1'000'000) {
    bad("database '" + std::string(s) + "' is not a number from 0");
  }
  return db;
}

void parse_unix(std::string_view rest, RedisUrl& url) {
  // rest is "/path[?db=N]" (from "unix://" + "/path"); no user info here.
  url.unix_socket = true;
  size_t q = rest.find('?');
  url.path = percent_decode(rest.substr(0, q), "the socket path");
  if (url.path.empty() || url.path[0] != '/') {
    bad("unix:// needs an absolute socket path (unix:///path/to/redis.sock)");
  }
  if (q == std::string_view::npos) return;
  std::string_view query = rest.substr(q + 1);
  if (!query.starts_with("db=") || query.find('&') != std::string_view::npos) {
    bad("unix:// takes one query parameter, ?db=N");
  }
  url.db = parse_db(query.substr(3));
}

void parse_host_port(std::string_view hp, RedisUrl& url) {
  std::string_view port;
  if (hp.starts_with('[')) {  // [IPv6]:port
    size_t close = hp.find(']');
    if (close == std::string_view::npos) bad("unclosed '[' in the host");
    url.host = std::string(hp.substr(1, close - 1));
    std::string_view after = hp.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad("unexpected text after ']' in the host");
      port = after.substr(1);
      if (port.empty()) bad("empty port");
    }
  } else {
    size_t colon = hp.find(':');
    url.host = std::string(hp.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = hp.substr(colon + 1);
      if (port.empty()) bad("empty port");
    }
  }
  if (url.host.empty()) bad("missing host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      bad("port '" + std::string(port) + "' is not a number from 1 to 65535");
    }
    url.port = static_cast<uint16_t>(value);
  }
}

}  // namespace

RedisUrl parse_redis_url(std::string_view text) {
  RedisUrl url;
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    bad("expected redis://, rediss:// or unix:// at the start");
  }
  std::string_view scheme = text.substr(0, sep);
  std::string_view rest = text.substr(sep + 3);
  if (scheme == "unix") {
    parse_unix(rest, url);
    return url;
  }
  if (scheme == "rediss") {
    url.tls = true;
  } else if (scheme != "redis") {
    // Not echoed: with a mistyped scheme, the first "://" may lie inside the password.
    bad("unknown scheme (expected redis://, rediss:// or unix://)");
  }
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      // Could be a password written without its ':' (redis://secret@host),
      // so it is refused rather than sent as a user name, and not shown.
      bad("user given without a password (write redis://:password@host for a password alone)");
    }
    url.user = percent_decode(userinfo.substr(0, colon), "the user");
    url.password = percent_decode(userinfo.substr(colon + 1), "the password");
    if (url.password->empty()) bad("empty password");
  }
  size_t slash = rest.find_first_of("/?#");
  parse_host_port(rest.substr(0, slash), url);
  if (slash == std::string_view::npos) return url;
  if (rest[slash] != '/') bad("query strings and fragments are not supported in redis://");
  std::string_view db = rest.substr(slash + 1);
  if (!db.empty()) url.db = parse_db(db);
  return url;
}

std::string redacted(const RedisUrl& url) {
  if (url.unix_socket) {
    std::string out = "unix://" + url.path;
    if (url.db != 0) out += "?db=" + std::to_string(url.db);
    return out;
  }
  std::string out = url.tls ? "rediss://" : "redis://";
  if (url.password) out += percent_encode(url.user) + ":***@";
  bool v6 = url.host.find(':') != std::string::npos;
  out += v6 ? "[" + url.host + "]" : url.host;
  out += ":" + std::to_string(url.port);
  if (url.db != 0) out += "/" + std::to_string(url.db);
  return out;
}

}  // namespace herald::engine::redis
