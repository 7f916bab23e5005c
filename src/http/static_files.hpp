// Static files from server.static_dir, fit for a web app's build output:
// validators (strong ETag from size and mtime, Last-Modified) and 304s,
// Cache-Control by name (hashed asset names immutable, the rest no-cache),
// precompressed .br/.gz siblings chosen by Accept-Encoding, single byte
// ranges (206/416), an optional SPA fallback to index.html, and bodies
// streamed from the file in small reads (never read whole). Owns only the
// mapping of a request path to a file and the response headers; the router
// decides when a request is a static one, the session writes the response.
#pragma once

#include <string>
#include <string_view>

#include "http/http_session.hpp"

namespace herald::http {

struct StaticOptions {
  std::string dir;            // empty: no static files
  bool spa_fallback = false;  // extensionless GET not found -> /index.html
};

// Whether `name` (a file name, or a path whose last segment is taken) looks
// content-hashed, so that it may be cached forever: the last '-' or '.'
// separated part of its stem (the name up to its first '.') is 8 to 64
// characters of [A-Za-z0-9_] with at least one digit (webpack/esbuild
// `app.3f9a2c1b.js`, `index-3f9a2c1b.js`), or, for a file under an `assets/`
// folder (Vite's `assets/[name]-[hash].js`), any 8 to 64 such characters.
bool is_hashed_asset_name(std::string_view path);

// Answers a GET or HEAD for `path` (the URL path, no query) from the static
// folder; 404 in the protocol's error shape when there is no such file.
void serve_static_file(const StaticOptions& options, const Request& req, std::string_view path,
                       const Responder& respond);

}  // namespace herald::http
