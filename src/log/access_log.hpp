// The access log (server.access_log): one line per HTTP request and per
// WebSocket connect and close, through the "access" logger (logging.hpp).
// Never given a query string: a URL's query may hold a token.
#pragma once

#include <cstdint>
#include <string_view>

namespace herald::log {

// An HTTP request answered: `path` without its query, `bytes` written for
// the response (headers and body), `duration_ms` from the request's arrival
// to the last byte written.
void http_access(std::string_view method, std::string_view path, unsigned status, uint64_t bytes,
                 double duration_ms, std::string_view peer);

// A WebSocket connection opened (`close_code` 0) or closed.
void ws_access(std::string_view event, std::string_view client_id, unsigned close_code,
               double duration_ms, std::string_view peer);

}  // namespace herald::log
