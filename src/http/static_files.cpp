// Static files: path mapping, validators, encodings, ranges and caching
// headers; see static_files.hpp.
#include "http/static_files.hpp"

#include <sys/stat.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <optional>

namespace herald::http {

namespace bhttp = boost::beast::http;

namespace {

struct FileInfo {
  std::string path;
  uint64_t size = 0;
  time_t mtime = 0;
  long mtime_ns = 0;
};

std::optional<FileInfo> regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return FileInfo{path, static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string_view extension_of(std::string_view path) {
  const auto slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : name.substr(dot);
}

std::string_view content_type(std::string_view path) {
  const std::string_view ext = extension_of(path);
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".webmanifest") return "application/manifest+json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".gif") return "image/gif";
  if (ext == ".webp") return "image/webp";
  if (ext == ".avif") return "image/avif";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".woff") return "font/woff";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  if (ext == ".xml") return "application/xml";
  return "application/octet-stream";
}

// IMF-fixdate (RFC 9110 5.6.7), the only date format sent.
std::string http_date(time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::optional<time_t> parse_http_date(std::string_view s) {
  const std::string text(s);
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return ::timegm(&tm);
}

// Strong: a byte range of one representation must stay valid for exactly
// that content; size and mtime to the nanosecond change with any rewrite
// (as nginx's), and the variant's own file gives its own tag.
std::string etag_of(const FileInfo& f, std::string_view encoding) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "\"%llx-%llx%s%.*s\"", static_cast<unsigned long long>(f.size),
                static_cast<unsigned long long>(f.mtime) * 1000000000ULL +
                    static_cast<unsigned long long>(f.mtime_ns),
                encoding.empty() ? "" : "-", static_cast<int>(encoding.size()), encoding.data());
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether Accept-Encoding takes `coding` (by name or '*', with q > 0).
bool accepts_encoding(std::string_view header, std::string_view coding) {
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? "" : header.substr(comma + 1);
    const auto semi = item.find(';');
    std::string_view name = trim(item.substr(0, semi));
    bool zero = false;
    if (semi != std::string_view::npos) {
      std::string_view param = trim(item.substr(semi + 1));
      if (param.starts_with("q=") || param.starts_with("Q=")) {
        param.remove_prefix(2);
        zero = !param.empty() && param.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (zero) continue;
    if (name.size() == coding.size() || name == "*") {
      bool same = name == "*";
      if (!same) {
        same = true;
        for (size_t i = 0; i < name.size(); ++i)
          if (std::tolower(static_cast<unsigned char>(name[i])) != coding[i]) same = false;
      }
      if (same) return true;
    }
  }
  return false;
}

// If-None-Match: "*" or a list of tags, compared weakly (RFC 9110 13.1.2).
bool none_match_hits(std::string_view header, std::string_view etag) {
  if (trim(header) == "*") return true;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view tag = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? "" : header.substr(comma + 1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};
enum class RangeOutcome { none, satisfiable, unsatisfiable };

// One "bytes=" range; a list of several is ignored (the whole file is
// sent, which RFC 9110 allows), as is any syntax we do not take.
RangeOutcome parse_range(std::string_view header, uint64_t size, ByteRange& out) {
  if (!header.starts_with("bytes=")) return RangeOutcome::none;
  std::string_view spec = trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeOutcome::none;
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeOutcome::none;
  const auto number = [](std::string_view s) -> std::optional<uint64_t> {
    if (s.empty() || s.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
  };
  const std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
  if (a.empty()) {  // suffix: the last N bytes
    const auto n = number(b);
    if (!n) return RangeOutcome::none;
    if (*n == 0 || size == 0) return RangeOutcome::unsatisfiable;
    out.length = std::min(*n, size);
    out.first = size - out.length;
    return RangeOutcome::satisfiable;
  }
  const auto first = number(a);
  if (!first) return RangeOutcome::none;
  std::optional<uint64_t> last;
  if (!b.empty()) {
    last = number(b);
    if (!last || *last < *first) return RangeOutcome::none;
  }
  if (*first >= size) return RangeOutcome::unsatisfiable;
  const uint64_t end = last ? std::min(*last, size - 1) : size - 1;
  out.first = *first;
  out.length = end - *first + 1;
  return RangeOutcome::satisfiable;
}

bool hash_chars(std::string_view s, bool need_digit) {
  if (s.size() < 8 || s.size() > 64) return false;
  bool digit = false;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else if (!std::isalpha(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return digit || !need_digit;
}

Response not_found() {
  return error_response(11, 404, "bad_request", "not found");
}

}  // namespace

bool is_hashed_asset_name(std::string_view path) {
  const auto slash = path.rfind('/');
  const std::string_view dir = slash == std::string_view::npos ? "" : path.substr(0, slash + 1);
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const bool in_assets =
      dir.starts_with("assets/") || dir.find("/assets/") != std::string_view::npos;
  // The stem's parts: "index-3f9a2c1b.js" -> "index", "3f9a2c1b";
  // "app.3f9a2c1b.js" -> "app", "3f9a2c1b".
  const auto last_dot = name.rfind('.');
  if (last_dot == std::string_view::npos || last_dot == 0) return false;
  std::string_view stem = name.substr(0, last_dot);
  // ".min.js", ".chunk.js" and the like sit between the hash and the extension.
  for (;;) {
    const auto cut = stem.find_last_of("-.");
    if (cut == std::string_view::npos) return false;
    const std::string_view part = stem.substr(cut + 1);
    if (hash_chars(part, !in_assets)) return true;
    if (stem[cut] != '.' || part.size() >= 8) return false;
    stem = stem.substr(0, cut);
  }
}

void serve_static_file(const StaticOptions& options, const Request& req, std::string_view path,
                       const Responder& respond) {
  std::string rel(path);
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  // Refuse anything that could climb out of the static folder.
  if (rel.front() != '/' || rel.find("..") != std::string::npos ||
      rel.find('\0') != std::string::npos || rel.find('\\') != std::string::npos) {
    respond(not_found());
    return;
  }
  std::string file = options.dir + rel;
  if (is_directory(file)) {
    file += "/index.html";
    rel += "/index.html";
  }
  auto info = regular_file(file);
  if (!info && options.spa_fallback && extension_of(rel).empty()) {
    // A client-side route (/chat/room-7): the app's shell handles it.
    rel = "/index.html";
    file = options.dir + rel;
    info = regular_file(file);
  }
  if (!info) {
    respond(not_found());
    return;
  }

  // Precompressed siblings, Brotli first (smaller), when the client takes them.
  const std::string type(content_type(rel));
  std::string_view encoding;
  const std::string_view accept = req[bhttp::field::accept_encoding];
  for (const std::string_view coding : {std::string_view("br"), std::string_view("gzip")}) {
    if (!accepts_encoding(accept, coding)) continue;
    if (auto variant = regular_file(file + (coding == "br" ? ".br" : ".gz"))) {
      info = std::move(variant);
      encoding = coding;
      break;
    }
  }
  const std::string etag = etag_of(*info, encoding);
  const std::string last_modified = http_date(info->mtime);
  const bool head = req.method() == bhttp::verb::head;

  const auto set_common = [&](auto& res) {
    res.set(bhttp::field::etag, etag);
    res.set(bhttp::field::last_modified, last_modified);
    res.set(bhttp::field::cache_control, is_hashed_asset_name(rel.substr(1))
                                             ? "public, max-age=31536000, immutable"
                                             : "no-cache");
    res.set(bhttp::field::vary, "Accept-Encoding");
    res.set(bhttp::field::accept_ranges, "bytes");
  };

  // Conditional GET: If-None-Match wins; If-Modified-Since only without it.
  bool not_modified = false;
  if (const auto inm = req[bhttp::field::if_none_match]; !inm.empty()) {
    not_modified = none_match_hits(inm, etag);
  } else if (const auto ims = req[bhttp::field::if_modified_since]; !ims.empty()) {
    const auto since = parse_http_date(ims);
    not_modified = since && info->mtime <= *since;
  }
  if (not_modified) {
    Response res{bhttp::status::not_modified, 11};
    set_common(res);
    respond(std::move(res));
    return;
  }

  ByteRange range{0, info->size};
  RangeOutcome outcome = RangeOutcome::none;
  if (const auto header = req[bhttp::field::range]; !header.empty()) {
    // If-Range: the range only if the client's copy is this one.
    const auto if_range = req[bhttp::field::if_range];
    if (if_range.empty() || if_range == etag || if_range == last_modified)
      outcome = parse_range(header, info->size, range);
  }
  if (outcome == RangeOutcome::unsatisfiable) {
    Response res{bhttp::status::range_not_satisfiable, 11};
    set_common(res);
    res.set(bhttp::field::content_range, "bytes */" + std::to_string(info->size));
    res.prepare_payload();
    respond(std::move(res));
    return;
  }
  if (outcome == RangeOutcome::none) range = ByteRange{0, info->size};
  const auto status =
      outcome == RangeOutcome::satisfiable ? bhttp::status::partial_content : bhttp::status::ok;

  FileSlice slice;
  boost::beast::error_code ec;
  slice.open(info->path.c_str(), boost::beast::file_mode::scan, ec);
  if (!ec) slice.select(range.first, range.length, ec);
  if (ec) {
    respond(not_found());  // gone or unreadable since the stat
    return;
  }
  const auto fill = [&](auto& res) {
    set_common(res);
    res.set(bhttp::field::content_type, type);
    if (!encoding.empty()) res.set(bhttp::field::content_encoding, encoding);
    if (status == bhttp::status::partial_content)
      res.set(bhttp::field::content_range, "bytes " + std::to_string(range.first) + "-" +
                                               std::to_string(range.first + range.length - 1) +
                                               "/" + std::to_string(info->size));
  };
  if (head) {
    Response res{status, 11};
    fill(res);
    res.content_length(range.length);
    respond(std::move(res));
    return;
  }
  FileResponse res{status, 11};
  fill(res);
  res.body().reset(std::move(slice), ec);
  res.prepare_payload();
  respond(std::move(res));
}

}  // namespace herald::http
