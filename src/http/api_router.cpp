// ApiRouter: server API, health check and static files; see api_router.hpp.
#include "http/api_router.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "protocol/command.hpp"
#include "protocol/errors.hpp"
#include "protocol/messages.hpp"

namespace herald::http {

namespace bhttp = boost::beast::http;
using protocol::ErrorCode;

namespace {

Response json_response(int status, std::string body) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response error(ErrorCode code, std::string_view message, std::string_view details = {}) {
  return error_response(11, protocol::http_status(code), protocol::to_string(code), message,
                        details);
}

// 405 with the methods the route takes ("POST", "GET, HEAD").
Response method_not_allowed(std::string_view allow) {
  auto res = error_response(11, 405, "bad_request",
                            "use " + std::string(allow.substr(0, allow.find(','))));
  res.set(bhttp::field::allow, allow);
  return res;
}

// Same default as the WebSocket `history` command (docs/protocol.md, section 6).
constexpr std::string_view kChannelsPrefix = "/api/channels/";
constexpr std::string_view kHistorySuffix = "/history";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a URL path segment or query component ('+' stays '+').
// Empty optional when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// A non-negative integer from 0 to 2^64-1 in decimal digits only, as the
// protocol's integer fields.
std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::string_view content_type(const std::filesystem::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace

ApiRouter::ApiRouter(core::Node& node, unsigned worker, protocol::CommandParser& parser,
                     metrics::WorkerCounters& counters, ApiOptions options)
    : node_(node),
      worker_(worker),
      parser_(parser),
      counters_(counters),
      options_(std::move(options)) {}

void ApiRouter::handle(Request&& req, const boost::asio::ip::address& peer, Responder respond) {
  std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  counters_.http_requests.add();
  if (path == "/healthz") {
    respond(json_response(200, R"({"status":"ok"})"));
    return;
  }
  if (path == "/metrics") {
    if (options_.protect_metrics && !authorized(req, std::nullopt, respond)) return;
    Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics::Registry::global().render();
    res.prepare_payload();
    respond(std::move(res));
    return;
  }
  if (path == "/api/publish") {
    if (req.method() != bhttp::verb::post) return respond(method_not_allowed("POST"));
    if (!authorized(req, auth::Scope::publish, respond)) return;
    publish(req, std::move(respond));
    return;
  }
  if (path.starts_with(kChannelsPrefix) && path.ends_with(kHistorySuffix) &&
      path.size() >= kChannelsPrefix.size() + kHistorySuffix.size()) {
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
      return respond(method_not_allowed("GET, HEAD"));
    if (!authorized(req, auth::Scope::history, respond)) return;
    const std::string_view raw_channel = path.substr(
        kChannelsPrefix.size(), path.size() - kChannelsPrefix.size() - kHistorySuffix.size());
    const size_t q = target.find('?');
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    history(req, raw_channel, query, std::move(respond));
    return;
  }
  if (path == "/api/disconnect" || path == "/api/unsubscribe") {
    if (req.method() != bhttp::verb::post) return respond(method_not_allowed("POST"));
    if (!authorized(req, auth::Scope::admin, respond)) return;
    user_action(req, path == "/api/unsubscribe", std::move(respond));
    return;
  }
  if (path == "/api/admin/reload") {
    if (!authorized(req, auth::Scope::admin, respond)) return;
    admin_reload(req, peer, std::move(respond));
    return;
  }
  if (path.starts_with("/api/")) {
    if (!authorized(req, std::nullopt, respond)) return;
    respond(error_response(11, 404, "bad_request", "no such API route"));
    return;
  }
  if (!options_.static_dir.empty() &&
      (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head)) {
    serve_static(req, path, std::move(respond));
    return;
  }
  respond(error_response(11, 404, "bad_request", "not found"));
}

bool ApiRouter::authorized(const Request& req, std::optional<auth::Scope> scope,
                           Responder& respond) {
  if (!options_.api_keys || options_.api_keys->empty()) return true;
  const auto credential =
      auth::ApiKeys::credential_from_headers(req[bhttp::field::authorization], req["X-API-Key"]);
  if (credential.empty()) {
    auto res = error(ErrorCode::unauthorized,
                     "an API key is required (Authorization: Bearer <key> or X-API-Key)");
    res.set(bhttp::field::www_authenticate, "Bearer");
    respond(std::move(res));
    return false;
  }
  const auth::ApiKey* key = options_.api_keys->authenticate(credential);
  if (!key) {
    auto res = error(ErrorCode::unauthorized, "unknown API key");
    res.set(bhttp::field::www_authenticate, "Bearer error=\"invalid_token\"");
    respond(std::move(res));
    return false;
  }
  if (scope && !key->allows(*scope)) {
    respond(error(ErrorCode::forbidden, "API key '" + key->name + "' lacks the " +
                                            std::string(auth::to_string(*scope)) + " scope"));
    return false;
  }
  return true;
}

void ApiRouter::publish(const Request& req, Responder respond) {
  // Same parser and rules as a WebSocket publish: `data` stays the raw bytes sent.
  auto parsed = parser_.parse_as(protocol::CommandType::publish, req.body());
  if (auto* err = std::get_if<protocol::CommandError>(&parsed)) {
    respond(error(err->code, err->message));
    return;
  }
  auto& cmd = std::get<protocol::Command>(parsed);
  counters_.publishes.add();
  counters_.message_bytes.observe(static_cast<double>(cmd.data.size()));
  core::PublishRequest pub{
      std::move(cmd.channel), std::move(cmd.event), std::move(cmd.data), {}, {}, cmd.ephemeral};
  node_.publish(
      worker_, std::move(pub), [respond = std::move(respond)](const core::PublishResult& r) {
        if (r.failure) {
          respond(error(r.failure->code, r.failure->message, r.failure->details));
          return;
        }
        respond(json_response(
            200, r.offset ? "{\"offset\":" + std::to_string(*r.offset) + "}" : std::string("{}")));
      });
}

void ApiRouter::user_action(const Request& req, bool unsubscribe, Responder respond) {
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(req.body(), ec);
  if (ec || !body.is_object()) {
    respond(error(ErrorCode::invalid_json, "body: expected a JSON object"));
    return;
  }
  const auto& obj = body.as_object();
  const auto string_field = [&](std::string_view name, std::string& out) {
    const auto* v = obj.if_contains(name);
    if (!v) return true;
    if (!v->is_string()) return false;
    out = std::string(v->as_string());
    return true;
  };
  UserAction action;
  if (!string_field("user", action.user) || action.user.empty()) {
    respond(error(ErrorCode::bad_request, "user: required non-empty string"));
    return;
  }
  if (!string_field("reason", action.reason) || action.reason.size() > 100) {
    respond(error(ErrorCode::bad_request, "reason: must be a string of at most 100 bytes"));
    return;
  }
  if (unsubscribe) {
    if (!string_field("channel", action.channel) || action.channel.empty()) {
      respond(error(ErrorCode::bad_request, "channel: required string"));
      return;
    }
    if (std::string why =
            protocol::check_channel_name(action.channel, std::numeric_limits<size_t>::max());
        !why.empty()) {
      respond(error(ErrorCode::bad_request, why));
      return;
    }
  }
  options_.user_action(
      std::move(action), [respond = std::move(respond), unsubscribe](size_t count) {
        respond(json_response(
            200, std::string(unsubscribe ? "{\"unsubscribed\":" : "{\"disconnected\":") +
                     std::to_string(count) + "}"));
      });
}

void ApiRouter::admin_reload(const Request& req, const boost::asio::ip::address& peer,
                             Responder respond) {
  if (req.method() != bhttp::verb::post) return respond(method_not_allowed("POST"));
  // With API keys, the admin scope was checked and any peer may reload.
  // Without, only processes on this host may (an IPv4 peer on a dual-stack
  // socket shows as ::ffff:127.x) unless allow_remote_admin.
  const bool keyed = options_.api_keys && !options_.api_keys->empty();
  const bool loopback =
      peer.is_loopback() ||
      (peer.is_v6() && peer.to_v6().is_v4_mapped() &&
       boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, peer.to_v6()).is_loopback());
  if (!keyed && !loopback && !options_.allow_remote_admin) {
    respond(error(ErrorCode::forbidden,
                  "the admin API answers loopback peers only (server.allow_remote_admin)"));
    return;
  }
  options_.reload([respond = std::move(respond)](bool ok, std::string body) {
    respond(json_response(ok ? 200 : 400, std::move(body)));
  });
}

void ApiRouter::history(const Request& req, std::string_view raw_channel, std::string_view query,
                        Responder respond) {
  auto decoded = percent_decode(raw_channel);
  if (!decoded) {
    respond(error(ErrorCode::bad_request, "channel: bad percent-encoding"));
    return;
  }
  // The characters are checked here, on the exact bytes sent; the length
  // limit (limits.max_channel_length) by the command parser below, which
  // knows the configured value.
  if (std::string why = protocol::check_channel_name(*decoded, std::numeric_limits<size_t>::max());
      !why.empty()) {
    respond(error(ErrorCode::bad_request, why));
    return;
  }
  std::string body = "{\"channel\":";
  protocol::append_json_string(body, *decoded);
  body += '}';
  auto parsed = parser_.parse_as(protocol::CommandType::history, body);
  if (auto* err = std::get_if<protocol::CommandError>(&parsed)) {
    respond(error(err->code, err->message));
    return;
  }

  // limit, before and after; other parameters are ignored.
  std::optional<uint64_t> values[3];
  static constexpr std::string_view kNames[3] = {"limit", "before", "after"};
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    const auto key = percent_decode(pair.substr(0, eq));
    if (!key) continue;  // not one of ours: ignored like any unknown parameter
    for (size_t i = 0; i < 3; ++i) {
      if (*key != kNames[i]) continue;
      if (values[i]) {
        respond(error(ErrorCode::bad_request, std::string(kNames[i]) + ": duplicate parameter"));
        return;
      }
      const auto value =
          eq == std::string_view::npos ? std::nullopt : percent_decode(pair.substr(eq + 1));
      values[i] = value ? parse_u64(*value) : std::nullopt;
      if (!values[i]) {
        respond(error(ErrorCode::bad_request,
                      std::string(kNames[i]) + ": must be a non-negative integer"));
        return;
      }
    }
  }

  core::HistoryRequest hreq;
  hreq.channel = std::move(std::get<protocol::Command>(parsed).channel);
  // Node::history caps the limit at history.max_request.
  hreq.query.limit =
      values[0]
          ? static_cast<size_t>(std::min<uint64_t>(*values[0], std::numeric_limits<size_t>::max()))
          : core::kDefaultHistoryLimit;
  hreq.query.before = values[1];
  hreq.query.after = values[2];
  const bool head = req.method() == bhttp::verb::head;
  std::string channel = hreq.channel;
  node_.history(worker_, std::move(hreq),
                [respond = std::move(respond), channel = std::move(channel),
                 head](const core::HistoryResult& r) {
                  if (r.failure) {
                    respond(error(r.failure->code, r.failure->message));
                    return;
                  }
                  std::string out = "{\"channel\":";
                  out.reserve(64 + channel.size() + r.epoch.size() + r.events_json.size());
                  protocol::append_json_string(out, channel);
                  out += ",\"epoch\":";
                  protocol::append_json_string(out, r.epoch);
                  out += ",\"offset\":" + std::to_string(r.offset) + ",\"events\":";
                  out += r.events_json.empty() ? std::string_view("[]") : r.events_json;
                  out += '}';
                  Response res = json_response(200, std::move(out));
                  if (head) res.body().clear();
                  respond(std::move(res));
                });
}

void ApiRouter::serve_static(const Request& req, std::string_view path, Responder respond) {
  namespace fs = std::filesystem;
  std::string rel(path);
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  // Refuse anything that could climb out of the static folder.
  if (rel.find("..") != std::string::npos || rel.find('\0') != std::string::npos ||
      rel.find('\\') != std::string::npos) {
    respond(error_response(11, 404, "bad_request", "not found"));
    return;
  }
  fs::path file = fs::path(options_.static_dir) / rel.substr(1);
  std::error_code ec;
  if (fs::is_directory(file, ec)) file /= "index.html";
  std::ifstream in(file, std::ios::binary);
  if (!in || !fs::is_regular_file(file, ec)) {
    respond(error_response(11, 404, "bad_request", "not found"));
    return;
  }
  std::ostringstream content;
  content << in.rdbuf();
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, content_type(file));
  res.set(bhttp::field::cache_control, "no-cache");
  res.body() = std::move(content).str();
  res.prepare_payload();
  if (req.method() == bhttp::verb::head) res.body().clear();
  respond(std::move(res));
}

}  // namespace herald::http
