// Where the redis engine connects: `engine.redis_url` parsed into its parts.
//
// Accepted forms:
//   redis://[user[:password]@]host[:port][/db]
//   rediss://...                  same, over TLS (`tls` set; redis_tls.hpp)
//   unix:///path/to/sock[?db=N]
// user and password are percent-decoded; a password alone is written
// `redis://:password@host`. IPv6 hosts go in brackets (`redis://[::1]:6379`).
//
// Owns parsing and printing only; touches nothing else. Errors are
// std::invalid_argument whose messages name what is wrong and never contain
// the password (nor the user part, which may be a password written in the
// wrong place), so they can be logged as they are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::engine::redis {

struct RedisUrl {
  bool unix_socket = false;  // true: `path`; false: `host` and `port`
  bool tls = false;          // rediss://
  std::string host;
  uint16_t port = 6379;
  std::string path;
  std::string user;                     // "" with a password alone: AUTH <password>
  std::optional<std::string> password;  // set: AUTH is sent on connect
  int64_t db = 0;                       // not 0: SELECT is sent on connect
};

RedisUrl parse_redis_url(std::string_view url);

// The URL with the password replaced by `***`, for logs and error messages.
std::string redacted(const RedisUrl& url);

}  // namespace herald::engine::redis
