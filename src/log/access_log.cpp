// Access log lines, text or JSON members; see access_log.hpp.
#include "log/access_log.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>

#include "log/logging.hpp"

namespace herald::log {

namespace {

void emit(const std::string& line) {
  if (auto logger = spdlog::get("access")) logger->info("{}", line);
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

void http_access(std::string_view method, std::string_view path, unsigned status, uint64_t bytes,
                 double duration_ms, std::string_view peer) {
  std::string line;
  if (json()) {
    std::string message =
        std::string(method) + " " + std::string(path) + " " + std::to_string(status);
    line = "\"message\":";
    append_json_string(line, message);
    line += ",\"kind\":\"http\",\"method\":";
    append_json_string(line, method);
    line += ",\"path\":";
    append_json_string(line, path);
    line += ",\"status\":" + std::to_string(status) + ",\"bytes\":" + std::to_string(bytes) +
            ",\"duration_ms\":" + number(duration_ms) + ",\"peer\":";
    append_json_string(line, peer);
  } else {
    line = "http " + std::string(method) + " " + std::string(path) + " " + std::to_string(status) +
           " bytes=" + std::to_string(bytes) + " duration_ms=" + number(duration_ms) +
           " peer=" + std::string(peer);
  }
  emit(line);
}

void ws_access(std::string_view event, std::string_view client_id, unsigned close_code,
               double duration_ms, std::string_view peer) {
  std::string line;
  const bool closed = event == "close";
  if (json()) {
    std::string message = "ws " + std::string(event) + " " + std::string(client_id);
    if (closed) message += " " + std::to_string(close_code);
    line = "\"message\":";
    append_json_string(line, message);
    line += ",\"kind\":\"ws\",\"event\":";
    append_json_string(line, event);
    line += ",\"client\":";
    append_json_string(line, client_id);
    if (closed)
      line += ",\"close_code\":" + std::to_string(close_code) +
              ",\"duration_ms\":" + number(duration_ms);
    line += ",\"peer\":";
    append_json_string(line, peer);
  } else {
    line = "ws " + std::string(event) + " client=" + std::string(client_id);
    if (closed)
      line += " close_code=" + std::to_string(close_code) + " duration_ms=" + number(duration_ms);
    line += " peer=" + std::string(peer);
  }
  emit(line);
}

}  // namespace herald::log
