// The redis engine's replies as engine results: a script's reply (or the
// connection's failure) turned into AppendResult, HistoryResult,
// RemoveResult, or the StoredEvents of a gap fill's XRANGE, following the
// reply shapes LAYOUT.md gives for publish.lua, read.lua and remove.lua.
// Pure functions; used by the store (redis_engine.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/redis/redis_connection.hpp"

namespace herald::engine::redis {

// `why` prefixed "redis unavailable" (once): the message of every failure
// that means "nothing ran, retry" (clients see `unavailable`).
std::string unavailable(const std::string& why);
std::string decimal(uint64_t n);
std::string decimal(int64_t n);
// r's i-th element when r is an array and that element is of `kind`.
const Reply* element(const Reply& r, size_t i, Reply::Kind kind);
// A reply as the caller sees it: nullopt when ok, else the error to report.
std::optional<std::string> error_of(const Result& result);

// Fills `out` (any engine result) with the error of a failed call: a
// connection failure is `unavailable` (nothing stored), an error reply not.
template <typename Out>
bool failed(const Result& result, Out& out) {
  auto e = error_of(result);
  if (!e) return false;
  out.error = std::move(*e);
  out.unavailable = std::holds_alternative<Failure>(result);
  return true;
}

AppendResult to_append_result(Result&& result, std::string& key);
HistoryResult to_history_result(Result&& result);
RemoveResult to_remove_result(Result&& result);
// The stream entries of a fill (XRANGE reply), fields by position as
// publish.lua writes them: t e d c u i. nullopt when malformed.
std::optional<std::vector<StoredEvent>> to_entries(Reply& r);

}  // namespace herald::engine::redis
