// One HTTP/1.1 request of the command-line client to the server's HTTP API
// (Boost.Beast over TCP, a new connection per request), with a deadline
// over connecting, sending and reading the reply. Owns nothing between
// calls; knows no API route (request_commands.cpp builds them).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/io_wait.hpp"
#include "cli/server_url.hpp"

namespace herald::cli {

struct HttpReply {
  bool ok = false;         // a reply arrived (any status)
  bool timed_out = false;  // when !ok: the deadline passed
  unsigned status = 0;
  std::string body;
  std::string error;  // when !ok: what failed (never a header value)
};

// `method` is "GET" or "POST"; `headers` are added as given (an API key is
// one: it is never part of `error`).
HttpReply http_call(const ServerUrl& server, std::string_view method, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    std::string body, Clock::time_point deadline);

}  // namespace herald::cli
