// Process-wide log setup: the level and the line format of spdlog's default
// logger (server.log_level, server.log_format) and the "access" logger that
// shares its output. Owns the JSON line formatter; touches nothing else.
#pragma once

#include <string>
#include <string_view>

namespace herald::log {

// Sets the level ("info", ...) and format ("text" or "json") of every line
// the process logs from here on. json: one object per line,
// {"time","level","message"[,"logger"][, fields of access lines]}.
void configure(const std::string& level, const std::string& format);

// Whether the format is json (access lines render their fields for it).
bool json();

// Appends `s` as a JSON string literal (quotes and escapes).
void append_json_string(std::string& out, std::string_view s);

}  // namespace herald::log
