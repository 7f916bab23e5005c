// Process-wide log setup: the level and the line format of spdlog's default
// logger (server.log_level, server.log_format) and the "access" logger that
// shares its output. Owns the JSON line formatter; touches nothing else.
#pragma once

#include <string>
#include <string_view>

#include "protocol/messages.hpp"

namespace herald::log {

// Sets the level ("info", ...) and format ("text" or "json") of every line
// the process logs from here on. json: one object per line,
// {"time","level","message"[,"logger"][, fields of access lines]}.
void configure(const std::string& level, const std::string& format);

// Whether the format is json (access lines render their fields for it).
bool json();

// JSON string literals: protocol::append_json_string (messages.hpp), the
// one escaper of the server (invalid UTF-8 becomes U+FFFD, so every line
// stays valid JSON for a log shipper).
using protocol::append_json_string;

}  // namespace herald::log
