// pub, history and presence; see request_commands.hpp.
//
// Every request goes through Asker, which speaks HTTP or WebSocket, so the
// three commands read the same ServerMessage and fail the same way
// whichever transport answered.
#include "cli/request_commands.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <variant>
#include <vector>

#include "cli/http_call.hpp"
#include "cli/outcome.hpp"
#include "cli/server_message.hpp"
#include "cli/ws_session.hpp"
#include "protocol/command.hpp"
#include "protocol/messages.hpp"

namespace herald::cli {

namespace {

using Answer = std::variant<ServerMessage, Failure>;

struct HttpSpec {
  std::string method, target, body;
};

class Asker {
 public:
  explicit Asker(const ClientOptions& o) : o_(o) {}

  // `verb` names the request in failures ("publish refused: forbidden: …").
  Answer ask(std::string_view verb, const HttpSpec& http, std::string_view ws_type,
             std::string_view ws_fields) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(o_.timeout_ms);
    return use_websocket(o_) ? over_ws(verb, ws_type, ws_fields, deadline)
                             : over_http(verb, http, deadline);
  }

 private:
  Answer over_http(std::string_view verb, const HttpSpec& spec, Clock::time_point deadline) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!o_.api_key.empty()) headers.emplace_back("Authorization", "Bearer " + o_.api_key);
    auto reply = http_call(o_.server, spec.method, spec.target, headers, spec.body, deadline);
    if (!reply.ok) {
      return Failure{Exit::unreachable,
                     std::string(verb) + ": " +
                         (reply.timed_out ? "timed out after " + std::to_string(o_.timeout_ms) +
                                                " ms (--timeout-ms)"
                                          : reply.error)};
    }
    auto m = parse_server_message(reply.body);
    if (reply.status == 200 && m) return std::move(*m);
    if (m && !m->code.empty())
      return Failure{Exit::refused, std::string(verb) + " refused: " + describe_error(*m)};
    return Failure{Exit::refused, std::string(verb) + " refused: HTTP " +
                                      std::to_string(reply.status) +
                                      (reply.status == 200 ? " with a body that is not JSON" : "")};
  }

  Answer over_ws(std::string_view verb, std::string_view type, std::string_view fields,
                 Clock::time_point deadline) {
    if (!link_) {
      link_ = std::make_unique<WsLink>(io_);
      auto connected = open_and_connect(*link_, o_.server, o_.token, deadline);
      if (auto* f = std::get_if<Failure>(&connected)) return *f;
    }
    auto reply = ws_request(*link_, type, ++last_id_, fields, deadline);
    if (auto* m = std::get_if<ServerMessage>(&reply); m && m->type == "error")
      return Failure{Exit::refused, std::string(verb) + " refused: " + describe_error(*m)};
    if (auto* f = std::get_if<Failure>(&reply)) f->what = std::string(verb) + ": " + f->what;
    return reply;
  }

  const ClientOptions& o_;
  boost::asio::io_context io_;
  std::unique_ptr<WsLink> link_;
  uint64_t last_id_ = 0;
};

// `"channel":"<name>"`
std::string channel_field(std::string_view channel) {
  std::string out = "\"channel\":";
  protocol::append_json_string(out, channel);
  return out;
}

std::string channel_path(const ClientOptions& o, std::string_view channel, std::string_view what) {
  return api_target(o.server, "/api/channels/" + percent_encode(channel) + std::string(what));
}

// Whether `data` is one JSON value, not a value followed by more members
// (`1,"ephemeral":true` passes the parse of the whole body). Inside an
// array, more members are not JSON, and an array closed early (`1],[2`)
// already failed the parse of the body. One level deeper, so the limit of
// the body's own parse is the one that applies.
bool single_value(std::string_view data) {
  protocol::CommandParser parser(protocol::ParserLimits{1, 1, 130});
  std::string probe = "{\"d\":[";
  probe += data;
  probe += "]}";
  return std::holds_alternative<protocol::Command>(
      parser.parse_as(protocol::CommandType::pong, probe));
}

bool write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0;
}

}  // namespace

int run_pub(const ClientOptions& client, PubOptions pub) {
  if (pub.data == "-") {
    pub.data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return fail(Exit::usage, "cannot read DATA from stdin");
  }
  std::string fields = channel_field(pub.channel) + ",\"event\":";
  protocol::append_json_string(fields, pub.event);
  if (pub.ephemeral) fields += ",\"ephemeral\":true";
  if (!pub.idempotency_key.empty()) {
    fields += ",\"idempotency_key\":";
    protocol::append_json_string(fields, pub.idempotency_key);
  }
  fields += ",\"data\":" + pub.data;
  const std::string body = "{" + fields + "}";
  // Checked here with the server's own parser, so that bad input is exit
  // code 2 and never reaches the server. Name lengths are the server's
  // configuration (limits.*): only their characters are checked here.
  protocol::CommandParser parser(protocol::ParserLimits{65536, 65536, 128});
  const auto parsed = parser.parse_as(protocol::CommandType::publish, body);
  if (const auto* e = std::get_if<protocol::CommandError>(&parsed)) {
    if (e->code == protocol::ErrorCode::invalid_json)
      return fail(Exit::usage, "DATA is not valid JSON (nothing was sent)");
    return fail(Exit::usage, e->message + " (nothing was sent)");
  }
  if (!single_value(pub.data))
    return fail(Exit::usage, "DATA is not valid JSON (nothing was sent)");
  Asker asker(client);
  auto answer = asker.ask("publish", {"POST", api_target(client.server, "/api/publish"), body},
                          "publish", fields);
  if (auto* f = std::get_if<Failure>(&answer)) return fail(*f);
  const auto& m = std::get<ServerMessage>(answer);
  if (m.offset && !write_out(std::to_string(*m.offset) + "\n"))
    return fail(Exit::usage, "cannot write to stdout");
  return 0;
}

int run_history(const ClientOptions& client, const HistoryOptions& h) {
  Asker asker(client);
  std::vector<std::vector<EventFields>> pages;  // in the order fetched
  std::string epoch;
  uint64_t got = 0;
  std::optional<uint64_t> after = h.since;  // paging forward
  std::optional<uint64_t> before;           // paging backward (newest first)
  while (got < h.limit) {
    const uint64_t want = h.limit - got;
    std::string query = "?limit=" + std::to_string(want);
    std::string fields = channel_field(h.channel) + ",\"limit\":" + std::to_string(want);
    if (after) {
      query += "&after=" + std::to_string(*after);
      fields += ",\"after\":" + std::to_string(*after);
    }
    if (before) {
      query += "&before=" + std::to_string(*before);
      fields += ",\"before\":" + std::to_string(*before);
    }
    auto answer =
        asker.ask("history", {"GET", channel_path(client, h.channel, "/history") + query, ""},
                  "history", fields);
    if (auto* f = std::get_if<Failure>(&answer)) return fail(*f);
    auto& m = std::get<ServerMessage>(answer);
    if (epoch.empty()) epoch = m.epoch;
    if (m.events.empty() || m.epoch != epoch) break;
    got += m.events.size();
    if (after) {
      after = m.events.back().offset;
    } else {
      before = m.events.front().offset;
    }
    const bool last =
        !m.events.front().offset || (before && *before <= 1) || !m.events.back().offset;
    pages.push_back(std::move(m.events));
    if (last) break;
  }
  // Pages walking backward came newest first: oldest first is their reverse.
  std::vector<const EventFields*> events;
  const auto add_page = [&](const std::vector<EventFields>& page) {
    for (const auto& ev : page) events.push_back(&ev);
  };
  if (after) {
    for (const auto& page : pages) add_page(page);
  } else {
    for (auto it = pages.rbegin(); it != pages.rend(); ++it) add_page(*it);
  }
  if (h.reverse) std::reverse(events.begin(), events.end());
  std::string out;
  for (const auto* ev : events) append_event_line(out, *ev, epoch);
  if (!write_out(out)) return fail(Exit::usage, "cannot write to stdout");
  return 0;
}

int run_presence(const ClientOptions& client, const PresenceOptions& p) {
  Asker asker(client);
  const std::string verb = p.stats ? "presence_stats" : "presence";
  auto answer = asker.ask(
      verb, {"GET", channel_path(client, p.channel, p.stats ? "/presence-stats" : "/presence"), ""},
      verb, channel_field(p.channel));
  if (auto* f = std::get_if<Failure>(&answer)) return fail(*f);
  const auto& m = std::get<ServerMessage>(answer);
  std::string out = "{" + channel_field(m.channel);
  if (p.stats) {
    out += ",\"clients\":" + (m.clients.empty() ? std::string("0") : m.clients);
    if (!m.users.empty()) out += ",\"users\":" + m.users;
  } else {
    out += ",\"members\":" + (m.members.empty() ? std::string("[]") : m.members);
    out += ",\"complete\":" + (m.complete.empty() ? std::string("true") : m.complete);
  }
  out += "}\n";
  if (!write_out(out)) return fail(Exit::usage, "cannot write to stdout");
  return 0;
}

}  // namespace herald::cli
