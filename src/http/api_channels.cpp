// ApiRouter, channel routes besides history: presence and presence stats,
// destroying a channel, the list of channels with subscribers and the
// node's info (docs/protocol.md section 10). Each answers from core::Node
// the way the WebSocket commands do.
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <limits>

#include "http/api_router.hpp"
#include "http/api_util.hpp"
#include "protocol/messages.hpp"

namespace herald::http {

namespace bhttp = boost::beast::http;
using protocol::ErrorCode;

namespace {

constexpr std::string_view kChannelsPrefix = "/api/channels/";
constexpr std::string_view kPresenceSuffix = "/presence";
constexpr std::string_view kStatsSuffix = "/presence-stats";
constexpr size_t kDefaultChannelsLimit = 100;
constexpr size_t kMaxChannelsLimit = 10000;

const auto kStarted = std::chrono::steady_clock::now();

// The value of query parameter `name` (percent-decoded), nullopt if absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) != std::string(name)) continue;
    if (eq == std::string_view::npos) return std::string();
    return percent_decode(pair.substr(eq + 1)).value_or("\x01");  // bad encoding: no match
  }
  return std::nullopt;
}

}  // namespace

bool ApiRouter::route_channels(const Request& req, std::string_view path, std::string_view query,
                               Responder& respond) {
  const auto method = req.method();
  const bool get = method == bhttp::verb::get || method == bhttp::verb::head;
  if (path == "/api/info") {
    if (!get) return respond(method_not_allowed("GET, HEAD")), true;
    if (!authorized(req, auth::Scope::admin, respond)) return true;
    info(std::move(respond));
    return true;
  }
  if (path == "/api/channels") {
    if (!get) return respond(method_not_allowed("GET, HEAD")), true;
    if (!authorized(req, auth::Scope::admin, respond)) return true;
    list_channels(query, std::move(respond));
    return true;
  }
  std::string_view rest = path.substr(kChannelsPrefix.size());
  // A channel whose name ends like a sub-resource is destroyed with its '/'
  // written %2F (docs/protocol.md section 10).
  const bool sub_resource =
      rest.ends_with("/history") || rest.ends_with(kPresenceSuffix) || rest.ends_with(kStatsSuffix);
  if (method == bhttp::verb::delete_ && !sub_resource) {
    // The whole rest is the channel (names may hold '/').
    if (!authorized(req, auth::Scope::destroy, respond, auth::Scope::admin)) return true;
    auto channel = channel_from_path(rest, respond);
    if (channel) destroy(req, std::move(*channel), std::move(respond));
    return true;
  }
  for (const bool stats : {true, false}) {
    const std::string_view suffix = stats ? kStatsSuffix : kPresenceSuffix;
    if (!rest.ends_with(suffix) || rest.size() == suffix.size()) continue;
    if (!get) return respond(method_not_allowed("GET, HEAD")), true;
    if (!authorized(req, auth::Scope::presence, respond)) return true;
    auto channel = channel_from_path(rest.substr(0, rest.size() - suffix.size()), respond);
    if (channel) presence(req, std::move(*channel), stats, std::move(respond));
    return true;
  }
  return false;
}

std::optional<std::string> ApiRouter::channel_from_path(std::string_view raw, Responder& respond) {
  auto decoded = percent_decode(raw);
  if (!decoded) {
    respond(error(ErrorCode::bad_request, "channel: bad percent-encoding"));
    return std::nullopt;
  }
  // The characters are checked here, on the exact bytes sent; the length
  // limit (limits.max_channel_length) by the command parser, which knows the
  // configured value.
  if (std::string why = protocol::check_channel_name(*decoded, std::numeric_limits<size_t>::max());
      !why.empty()) {
    respond(error(ErrorCode::bad_request, why));
    return std::nullopt;
  }
  std::string body = "{\"channel\":";
  protocol::append_json_string(body, *decoded);
  body += '}';
  auto parsed = parser_.parse_as(protocol::CommandType::history, body);
  if (auto* err = std::get_if<protocol::CommandError>(&parsed)) {
    respond(error(err->code, err->message));
    return std::nullopt;
  }
  return std::move(std::get<protocol::Command>(parsed).channel);
}

void ApiRouter::presence(const Request& req, std::string channel, bool stats_only,
                         Responder respond) {
  const bool head = req.method() == bhttp::verb::head;
  std::string name = channel;
  node_.presence(worker_, std::move(channel), stats_only,
                 [respond = std::move(respond), name = std::move(name), stats_only,
                  head](const core::PresenceResult& r) {
                   if (r.failure) {
                     respond(error(r.failure->code, r.failure->message));
                     return;
                   }
                   std::string out = "{\"channel\":";
                   protocol::append_json_string(out, name);
                   if (stats_only) {
                     out += ",\"clients\":" + std::to_string(r.clients);
                     if (r.users) out += ",\"users\":" + std::to_string(*r.users);
                   } else {
                     out += ",\"members\":" + r.members_json;
                     out += r.complete ? ",\"complete\":true" : ",\"complete\":false";
                   }
                   out += '}';
                   Response res = json_response(200, std::move(out));
                   if (head) res.body().clear();
                   respond(std::move(res));
                 });
}

void ApiRouter::destroy(const Request& req, std::string channel, Responder respond) {
  core::DestroyRequest dreq;
  dreq.channel = std::move(channel);
  // Optional body {"event", "data"?}: the final event, read by the command
  // parser so its name and data follow the publish rules (data kept byte for
  // byte). The path's channel is spliced in as the command's channel.
  std::string_view body = req.body();
  while (!body.empty() && (body.front() == ' ' || body.front() == '\t' || body.front() == '\r' ||
                           body.front() == '\n'))
    body.remove_prefix(1);
  if (!body.empty()) {
    if (body.front() != '{') {
      respond(error(ErrorCode::invalid_json, "body: expected a JSON object {\"event\", \"data\"}"));
      return;
    }
    body.remove_prefix(1);
    std::string command = "{\"channel\":";
    protocol::append_json_string(command, dreq.channel);
    const size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos || body[first] != '}') command += ',';
    command += body;
    auto parsed = parser_.parse_as(protocol::CommandType::destroy, command);
    if (auto* err = std::get_if<protocol::CommandError>(&parsed)) {
      respond(error(err->code, err->message));
      return;
    }
    auto& cmd = std::get<protocol::Command>(parsed);
    dreq.event = std::move(cmd.event);
    dreq.data = std::move(cmd.data);
  }
  node_.destroy(worker_, std::move(dreq),
                [respond = std::move(respond)](const core::DestroyResult& r) {
                  if (r.failure) {
                    respond(error(r.failure->code, r.failure->message, r.failure->details));
                    return;
                  }
                  std::string out = "{\"epoch\":";
                  protocol::append_json_string(out, r.epoch);
                  out += '}';
                  respond(json_response(200, std::move(out)));
                });
}

void ApiRouter::list_channels(std::string_view query, Responder respond) {
  const auto prefix = query_param(query, "prefix").value_or("");
  size_t limit = kDefaultChannelsLimit;
  if (auto text = query_param(query, "limit")) {
    const auto value = parse_u64(*text);
    if (!value || *value > kMaxChannelsLimit) {
      respond(error(ErrorCode::bad_request,
                    "limit: must be an integer from 0 to " + std::to_string(kMaxChannelsLimit)));
      return;
    }
    limit = static_cast<size_t>(*value);
  }
  node_.channels(worker_, prefix, limit,
                 [respond = std::move(respond)](const core::ChannelsResult& r) {
                   std::string out = "{\"channels\":[";
                   bool first = true;
                   for (const auto& c : r.channels) {
                     if (!first) out += ',';
                     first = false;
                     out += "{\"channel\":";
                     protocol::append_json_string(out, c.channel);
                     out += ",\"subscribers\":" + std::to_string(c.subscribers) + "}";
                   }
                   out += "],\"total\":" + std::to_string(r.total) + "}";
                   respond(json_response(200, std::move(out)));
                 });
}

void ApiRouter::info(Responder respond) {
  node_.stats(worker_, [this, respond = std::move(respond)](const core::NodeStats& s) {
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now() - kStarted)
                            .count();
    std::string out = "{\"version\":";
    protocol::append_json_string(out, HERALD_VERSION);
    out += ",\"uptime_s\":" + std::to_string(uptime);
    out += ",\"workers\":" + std::to_string(node_.workers());
    out += ",\"connections\":" + std::to_string(metrics::Registry::global().open_connections());
    out += ",\"subscriptions\":" + std::to_string(s.subscriptions);
    out += ",\"channels\":" + std::to_string(s.channels);
    out += ",\"engine\":";
    protocol::append_json_string(out, options_.engine_name);
    out += '}';
    respond(json_response(200, std::move(out)));
  });
}

}  // namespace herald::http
