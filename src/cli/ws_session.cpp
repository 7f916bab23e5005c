// connect and request/reply over a WsLink; see ws_session.hpp.
#include "cli/ws_session.hpp"

#include "protocol/messages.hpp"

namespace herald::cli {

Failure link_failure(std::string_view doing, const LinkStatus& status) {
  return {Exit::unreachable, std::string(doing) + ": " + status.describe()};
}

std::string request_text(std::string_view type, uint64_t id, std::string_view fields) {
  std::string out = "{\"type\":";
  protocol::append_json_string(out, type);
  out += ",\"id\":" + std::to_string(id);
  if (!fields.empty()) {
    out += ',';
    out += fields;
  }
  out += '}';
  return out;
}

std::variant<ServerMessage, Failure> ws_request(WsLink& link, std::string_view type, uint64_t id,
                                                std::string_view fields,
                                                Clock::time_point deadline) {
  const std::string doing = std::string(type) + " over the WebSocket";
  if (auto st = link.send(request_text(type, id, fields), deadline); !st.ok())
    return link_failure(doing, st);
  const std::string want_id = std::to_string(id);
  std::string text;
  for (;;) {
    if (auto st = link.receive(text, deadline); !st.ok()) return link_failure(doing, st);
    std::string why;
    auto m = parse_server_message(text, &why);
    if (!m) return Failure{Exit::refused, doing + ": unreadable reply (" + why + ")"};
    if (m->type == "ping") {
      if (auto st = link.send(R"({"type":"pong"})", deadline); !st.ok())
        return link_failure(doing, st);
      continue;
    }
    if (m->id == want_id) return std::move(*m);
    // An error without id answers no request of ours but ends nothing
    // either; anything else (events, join/leave) is not asked for here.
  }
}

std::variant<ServerMessage, Failure> open_and_connect(WsLink& link, const ServerUrl& server,
                                                      const std::string& token,
                                                      Clock::time_point deadline) {
  if (auto st = link.open(server, deadline); !st.ok()) {
    const auto& ep = server.endpoint;
    return link_failure(std::string("cannot connect to ") + (ep.tls ? "wss://" : "ws://") +
                            host_port(ep) + server.ws_target,
                        st);
  }
  std::string fields;
  if (!token.empty()) {
    fields = "\"token\":";
    protocol::append_json_string(fields, token);
  }
  auto reply = ws_request(link, "connect", 0, fields, deadline);
  if (auto* m = std::get_if<ServerMessage>(&reply); m && m->type != "connected")
    return Failure{Exit::refused, "connect refused: " + describe_error(*m)};
  return reply;
}

}  // namespace herald::cli
