// ApiRouter: server API, health check and static files; see api_router.hpp.
#include "http/api_router.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <limits>
#include <optional>

#include "http/api_util.hpp"
#include "http/static_files.hpp"
#include "protocol/command.hpp"
#include "protocol/errors.hpp"
#include "protocol/messages.hpp"

namespace herald::http {

namespace bhttp = boost::beast::http;
using protocol::ErrorCode;

namespace {

constexpr std::string_view kHistorySuffix = "/history";

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
  if (path == "/api/channels" || path == "/api/info" || path.starts_with(kChannelsPrefix)) {
    const size_t q = target.find('?');
    if (route_channels(req, path, q == std::string_view::npos ? "" : target.substr(q + 1), respond))
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
  if (!options_.statics.dir.empty() &&
      (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head)) {
    serve_static_file(options_.statics, req, path, respond);
    return;
  }
  respond(error_response(11, 404, "bad_request", "not found"));
}

bool ApiRouter::authorized(const Request& req, std::optional<auth::Scope> scope, Responder& respond,
                           std::optional<auth::Scope> or_scope) {
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
  if (scope && !key->allows(*scope) && !(or_scope && key->allows(*or_scope))) {
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
  // The key may also come as the Idempotency-Key header (as payment APIs
  // take it); checked like the body field.
  if (const auto header = req["Idempotency-Key"]; !header.empty()) {
    if (!cmd.idempotency_key.empty() && cmd.idempotency_key != header) {
      respond(error(ErrorCode::bad_request, "Idempotency-Key header and idempotency_key differ"));
      return;
    }
    std::string why = protocol::check_idempotency_key(header);
    if (why.empty() && cmd.ephemeral)
      why = "idempotency_key: not allowed on ephemeral events (they are never stored)";
    if (!why.empty()) {
      respond(error(ErrorCode::bad_request, why));
      return;
    }
    cmd.idempotency_key = std::string(header);
  }
  counters_.publishes.add();
  counters_.message_bytes.observe(static_cast<double>(cmd.data.size()));
  core::PublishRequest pub{std::move(cmd.channel),
                           std::move(cmd.event),
                           std::move(cmd.data),
                           {},
                           {},
                           cmd.ephemeral,
                           {},
                           std::move(cmd.idempotency_key)};
  node_.publish(worker_, std::move(pub),
                [respond = std::move(respond)](const core::PublishResult& r) {
                  if (r.failure) {
                    respond(error(r.failure->code, r.failure->message, r.failure->details));
                    return;
                  }
                  std::string body = "{";
                  if (r.offset) body += "\"offset\":" + std::to_string(*r.offset);
                  if (r.replayed) body += ",\"replayed\":true";
                  body += '}';
                  respond(json_response(200, std::move(body)));
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
  auto channel_name = channel_from_path(raw_channel, respond);
  if (!channel_name) return;

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
  hreq.channel = std::move(*channel_name);
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

}  // namespace herald::http
