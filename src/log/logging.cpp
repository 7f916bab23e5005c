// Log setup and the JSON line formatter; see logging.hpp.
//
// A custom spdlog formatter rather than a pattern: a pattern cannot escape
// the message (quotes, newlines, control bytes in a channel name) and so
// cannot promise a parseable line, and it cannot lift an access line's
// fields to the top level of the object.
#include "log/logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace herald::log {

namespace {

std::atomic<bool> g_json{false};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = "{\"time\":\"";
    const auto since = msg.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    const std::time_t t = secs.count();
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[48];
    const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    line.append(buf, n);
    std::snprintf(buf, sizeof buf, ".%03dZ\",\"level\":", static_cast<int>(ms));
    line += buf;
    const auto level = spdlog::level::to_string_view(msg.level);
    append_json_string(line, std::string_view(level.data(), level.size()));
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const std::string_view logger(msg.logger_name.data(), msg.logger_name.size());
    const bool access = logger == "access";
    if (!logger.empty()) {
      line += ",\"logger\":";
      append_json_string(line, logger);
    }
    if (access && payload.starts_with("\"message\":")) {
      // An access line: already rendered as members (see access_log.cpp).
      line += ',';
      line += payload;
    } else {
      line += ",\"message\":";
      append_json_string(line, payload);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void configure(const std::string& level, const std::string& format) {
  auto main = spdlog::default_logger();
  if (!spdlog::get("access")) {
    // Same sinks: access lines interleave with the rest, in one stream.
    auto access =
        std::make_shared<spdlog::logger>("access", main->sinks().begin(), main->sinks().end());
    spdlog::register_logger(access);
  }
  g_json = format == "json";
  if (g_json) spdlog::set_formatter(std::make_unique<JsonFormatter>());
  spdlog::set_level(spdlog::level::from_str(level));
  // Access lines are info lines; they follow log_level like the rest.
}

bool json() {
  return g_json;
}

}  // namespace herald::log
