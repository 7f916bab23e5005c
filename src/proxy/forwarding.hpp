// Which parts of a WebSocket upgrade request reach the connect hook: only
// the headers and cookies named by [proxy] forward_headers and
// forward_cookies. Everything else (and every other cookie of an allowed
// Cookie header) stays in Herald.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/http_client.hpp"

namespace herald::proxy {

struct ForwardRules {
  std::vector<std::string> headers;  // lower-case names
  std::vector<std::string> cookies;  // exact names
  bool empty() const { return headers.empty() && cookies.empty(); }
};

// `name` (any case) and `value` of one request header: appends it to `out`
// (name in lower case) when allowed. A Cookie header is kept with only the
// allowed cookies, when forward_cookies names any (else it is a header like
// another: forwarded whole only when forward_headers names "cookie").
void forward_header(const ForwardRules& rules, std::string_view name, std::string_view value,
                    Headers& out);

// The cookies of a Cookie header value named in `allowed`, as a Cookie
// header value ("a=1; b=2"), "" when none.
std::string filter_cookies(std::string_view cookie_header, const std::vector<std::string>& allowed);

}  // namespace herald::proxy
