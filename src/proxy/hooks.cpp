// The backend hooks of one worker: request bodies, the call through the
// hook's pool, failures turned into Refusals, metrics; see hooks.hpp.
#include "proxy/hooks.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "protocol/messages.hpp"

namespace herald::proxy {

const char* to_string(Hook hook) {
  return metrics::kHookNames[static_cast<size_t>(hook)];
}

std::optional<std::pair<std::string, std::string>> parse_static_header(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view name = line.substr(0, colon);
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '(' || c == ')' || c == ',' || c == '/' || c == ';' ||
        c == '<' || c == '>' || c == '=' || c == '?' || c == '@' || c == '[' || c == ']' ||
        c == '{' || c == '}' || c == '"' || c == '\\')
      return std::nullopt;
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  for (char c : value)
    if (c == '\r' || c == '\n' || c == '\0') return std::nullopt;
  return std::make_pair(std::string(name), std::string(value));
}

std::shared_ptr<const schema::EventSchemas> load_rpc_schemas(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw schema::SchemaError("proxy.rpc_schema: cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  boost::json::error_code ec;
  const boost::json::value doc = boost::json::parse(text.str(), ec);
  const auto* methods = doc.if_object();
  if (ec || !methods)
    throw schema::SchemaError("proxy.rpc_schema: " + path +
                              ": not a JSON object {\"<method>\": {\"request\": ..., "
                              "\"response\": ...}}");
  boost::json::object events;
  for (const auto& [method, sides] : *methods) {
    const auto* o = sides.if_object();
    if (!o)
      throw schema::SchemaError("proxy.rpc_schema: " + path + ": /" + std::string(method) +
                                " must be an object with request and/or response");
    for (const auto& [side, s] : *o) {
      if (side != "request" && side != "response")
        throw schema::SchemaError("proxy.rpc_schema: " + path + ": /" + std::string(method) + "/" +
                                  std::string(side) + ": expected request or response");
      events[std::string(method) + "#" + std::string(side)] = s;
    }
  }
  return schema::EventSchemas::parse(path, boost::json::serialize(events));
}

std::optional<std::pair<std::string, std::string>> parse_rpc_route(std::string_view route,
                                                                   std::string* why) {
  const auto eq = route.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    if (why) *why = "expected \"<method prefix>=<url>\"";
    return std::nullopt;
  }
  std::string url(route.substr(eq + 1));
  if (!parse_url(url, why)) return std::nullopt;
  return std::make_pair(std::string(route.substr(0, eq)), std::move(url));
}

Hooks::Hooks(boost::asio::io_context& io, const config::ProxyConfig& config,
             metrics::WorkerCounters* counters)
    : io_(io), counters_(counters) {
  Headers static_headers;
  for (const auto& line : config.static_headers) {
    auto header = parse_static_header(line);
    if (!header) throw std::runtime_error("proxy.static_headers: not a \"Name: value\" header");
    static_headers.push_back(std::move(*header));
  }
  // Each hook's bounds: its own, or the shared ones.
  const std::chrono::milliseconds own_timeout[] = {config.connect_timeout, config.subscribe_timeout,
                                                   config.publish_timeout, config.rpc_timeout,
                                                   config.refresh_timeout};
  const size_t own_max[] = {config.connect_max_concurrent, config.subscribe_max_concurrent,
                            config.publish_max_concurrent, config.rpc_max_concurrent,
                            config.refresh_max_concurrent};
  for (size_t i = 0; i < std::size(timeouts_); ++i) {
    timeouts_[i] = own_timeout[i].count() ? own_timeout[i] : config.timeout;
    max_concurrent_[i] = own_max[i] ? own_max[i] : config.max_concurrent;
  }
  const std::string* urls[] = {&config.connect_url, &config.subscribe_url, &config.publish_url,
                               &config.rpc_url, &config.refresh_url};
  for (size_t i = 0; i < std::size(urls); ++i) {
    if (urls[i]->empty()) continue;
    std::string why;
    auto endpoint = parse_url(*urls[i], &why);
    if (!endpoint)
      throw std::runtime_error(std::string("proxy.") + metrics::kHookNames[i] + "_url: " + why);
    pools_[i] = std::make_shared<HttpPool>(io, std::move(*endpoint), max_concurrent_[i],
                                           timeouts_[i], static_headers, config.ca_file);
  }
  for (const auto& line : config.rpc_routes) {
    std::string why;
    auto route = parse_rpc_route(line, &why);
    if (!route) throw std::runtime_error("proxy.rpc_routes: " + why);
    rpc_routes_.emplace_back(
        route->first, std::make_shared<HttpPool>(io, *parse_url(route->second),
                                                 max_concurrent_[static_cast<size_t>(Hook::rpc)],
                                                 timeouts_[static_cast<size_t>(Hook::rpc)],
                                                 static_headers, config.ca_file));
  }
  std::stable_sort(rpc_routes_.begin(), rpc_routes_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  rules_.headers = config.forward_headers;
  rules_.cookies = config.forward_cookies;
  connect_with_token_ = config.connect_with_token;
  if (!config.rpc_schema.empty()) rpc_schemas_ = load_rpc_schemas(config.rpc_schema);
}

Hooks::~Hooks() = default;

namespace {

// Request bodies are written by hand, splicing the clients' raw JSON in as
// they sent it (already validated by the command parser), not re-serialized.
void field(std::string& out, std::string_view name, std::string_view value) {
  out += out.size() > 1 ? ",\"" : "\"";
  out += name;
  out += "\":";
  protocol::append_json_string(out, value);
}

void raw_field(std::string& out, std::string_view name, std::string_view raw) {
  out += out.size() > 1 ? ",\"" : "\"";
  out += name;
  out += "\":";
  out += raw.empty() ? std::string_view("null") : raw;
}

Refusal unavailable(Hook hook) {
  return Refusal{
      protocol::ErrorCode::unavailable,
      std::string("the application's ") + to_string(hook) + " hook is unavailable; retry later"};
}

Refusal internal(Hook hook) {
  return Refusal{protocol::ErrorCode::internal,
                 std::string("the application's ") + to_string(hook) + " hook answered badly"};
}

}  // namespace

template <class Reply>
void Hooks::call(Hook hook, HttpPool& pool, std::string body, Reply (*parse)(std::string_view),
                 std::function<void(Reply)> done) {
  const auto index = static_cast<size_t>(hook);
  auto& m = counters_->hooks[index];
  m.requests.add();
  const auto started = std::chrono::steady_clock::now();
  // An rpc or a publish the backend may have run (and stored) must not run
  // again because a kept-alive connection broke under it.
  const bool may_resend = hook != Hook::rpc && hook != Hook::publish;
  pool.post(
      std::move(body),
      [hook, parse, started, &m, done = std::move(done)](HttpResult r) {
        m.seconds.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        using O = HttpResult::Outcome;
        if (r.outcome != O::ok) {
          m.errors.add();
          if (r.outcome != O::busy)  // the bound is reached under load: no log line per refusal
            spdlog::warn("proxy {} hook: {}", to_string(hook), r.error);
          done(unavailable(hook));
          return;
        }
        if (r.status < 200 || r.status > 299) {
          m.errors.add();
          spdlog::warn("proxy {} hook: the backend answered HTTP {}", to_string(hook), r.status);
          done(unavailable(hook));
          return;
        }
        Reply reply = parse(r.body);
        if (auto* bad = std::get_if<Malformed>(&reply)) {
          m.errors.add();
          spdlog::warn("proxy {} hook: malformed reply from the backend ({})", to_string(hook),
                       bad->why);
          done(internal(hook));
          return;
        }
        done(std::move(reply));
      },
      may_resend);
}

void Hooks::connect(const ConnectRequest& req, std::function<void(ConnectReply)> done) {
  std::string body = "{";
  field(body, "client", req.client);
  field(body, "transport", "websocket");
  field(body, "protocol", "json");
  body += ",\"headers\":{";
  if (req.headers) {
    // Names are unique in the object: a repeated header's values are joined.
    std::vector<std::pair<std::string_view, std::string>> merged;
    for (const auto& header : *req.headers) {
      // (Not a structured binding: clang before 16 cannot capture one.)
      const auto& name = header.first;
      auto it = std::find_if(merged.begin(), merged.end(),
                             [&](const auto& m) { return m.first == name; });
      if (it == merged.end())
        merged.emplace_back(name, header.second);
      else
        it->second += ", " + header.second;
    }
    bool first = true;
    for (const auto& [name, value] : merged) {
      if (!first) body += ',';
      first = false;
      protocol::append_json_string(body, name);
      body += ':';
      protocol::append_json_string(body, value);
    }
  }
  body += '}';
  raw_field(body, "data", req.data);
  field(body, "ip", req.ip);
  body += '}';
  call<ConnectReply>(Hook::connect, *pools_[0], std::move(body), &parse_connect_reply,
                     std::move(done));
}

void Hooks::subscribe(const ChannelRequest& req, std::function<void(SubscribeReply)> done) {
  std::string body = "{";
  field(body, "client", req.client);
  field(body, "user", req.user);
  field(body, "channel", req.channel);
  raw_field(body, "data", req.data);
  body += '}';
  call<SubscribeReply>(Hook::subscribe, *pools_[1], std::move(body), &parse_subscribe_reply,
                       std::move(done));
}

void Hooks::publish(const ChannelRequest& req, std::function<void(PublishReply)> done) {
  std::string body = "{";
  field(body, "client", req.client);
  field(body, "user", req.user);
  field(body, "channel", req.channel);
  field(body, "event", req.event);
  raw_field(body, "data", req.data);
  body += '}';
  call<PublishReply>(Hook::publish, *pools_[2], std::move(body), &parse_publish_reply,
                     std::move(done));
}

void Hooks::rpc(const RpcRequest& req, std::function<void(RpcReply)> done) {
  std::string body = "{";
  field(body, "client", req.client);
  field(body, "user", req.user);
  field(body, "method", req.method);
  raw_field(body, "data", req.data);
  body += '}';
  HttpPool* pool = pools_[3].get();
  for (const auto& [prefix, route] : rpc_routes_) {
    if (req.method.starts_with(prefix)) {
      pool = route.get();
      break;
    }
  }
  if (!pool) {
    boost::asio::post(io_, [done = std::move(done), method = std::string(req.method)] {
      done(Refusal{protocol::ErrorCode::bad_request,
                   "rpc: no route for method '" + method + "' (proxy.rpc_routes, rpc_url)"});
    });
    return;
  }
  call<RpcReply>(Hook::rpc, *pool, std::move(body), &parse_rpc_reply, std::move(done));
}

void Hooks::refresh(const RefreshRequest& req, std::function<void(RefreshReply)> done) {
  std::string body = "{";
  field(body, "client", req.client);
  field(body, "user", req.user);
  body += ",\"expire_at\":" + std::to_string(req.expire_at) + "}";
  call<RefreshReply>(Hook::refresh, *pools_[4], std::move(body), &parse_refresh_reply,
                     std::move(done));
}

}  // namespace herald::proxy
