// The redis engine's Lua scripts (scripts/*.lua, key layout in
// scripts/LAYOUT.md) as embedded in the binary. The definitions are generated
// at configure time from the .lua files (CMakeLists.txt,
// cmake/redis_scripts.cpp.in), so the files stay the one source of truth and
// the SHA1s always match the text Redis is sent.
// Owns nothing; pure data.
#pragma once

#include <string_view>

namespace herald::engine::redis {

enum class Script { publish, read, remove };

// The script's full text, exactly the bytes of its .lua file.
std::string_view redis_script(Script script);

// Its SHA1 in lowercase hex, the name EVALSHA calls it by.
std::string_view redis_script_sha1(Script script);

}  // namespace herald::engine::redis
