// ApiRouter: server API, health check and static files; see api_router.hpp.
#include "http/api_router.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <filesystem>
#include <fstream>
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

Response error(ErrorCode code, std::string_view message) {
  return error_response(11, protocol::http_status(code), protocol::to_string(code), message);
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

void ApiRouter::handle(Request&& req, Responder respond) {
  std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  counters_.http_requests.add();
  if (path == "/healthz") {
    respond(json_response(200, R"({"status":"ok"})"));
    return;
  }
  if (path == "/metrics") {
    Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics::Registry::global().render();
    res.prepare_payload();
    respond(std::move(res));
    return;
  }
  if (path == "/api/publish") {
    if (req.method() != bhttp::verb::post) {
      auto res = error_response(11, 405, "bad_request", "use POST");
      res.set(bhttp::field::allow, "POST");
      respond(std::move(res));
      return;
    }
    publish(req, std::move(respond));
    return;
  }
  if (path.starts_with("/api/")) {
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

void ApiRouter::publish(const Request& req, Responder respond) {
  // Same parser and rules as a WebSocket publish: `data` stays the raw bytes sent.
  auto parsed = parser_.parse_as(protocol::CommandType::publish, req.body());
  if (auto* err = std::get_if<protocol::CommandError>(&parsed)) {
    respond(error(err->code, err->message));
    return;
  }
  auto& cmd = std::get<protocol::Command>(parsed);
  counters_.publishes.add();
  core::PublishRequest pub{
      std::move(cmd.channel), std::move(cmd.event), std::move(cmd.data), {}, {}, cmd.ephemeral};
  node_.publish(
      worker_, std::move(pub), [respond = std::move(respond)](const core::PublishResult& r) {
        if (r.failure) {
          respond(error(r.failure->code, r.failure->message));
          return;
        }
        respond(json_response(
            200, r.offset ? "{\"offset\":" + std::to_string(*r.offset) + "}" : std::string("{}")));
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
