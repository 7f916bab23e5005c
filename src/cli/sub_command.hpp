// `herald sub`: subscribes to channels over the WebSocket and prints every
// event as one JSON line, flushed at once, until --count events, the
// --timeout-ms, SIGINT or SIGTERM. A dropped connection is resumed like the
// SDK does: reconnect with backoff, then `recover` each channel from the
// last event printed, so nothing is missed or printed twice; when the
// server cannot recover (the events are gone), stderr says so and the
// output continues from the channel's new position.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/client_options.hpp"

namespace herald::cli {

struct SubOptions {
  std::vector<std::string> channels;
  std::optional<uint64_t> history;  // also print the last N stored events
  std::string from;                 // "EPOCH:OFFSET" or "OFFSET": print events after it
  std::optional<uint64_t> count;    // stop after this many events
  uint64_t timeout_ms = 0;          // give up after this long (0: never)
};

int run_sub(const ClientOptions& client, const SubOptions& sub);

}  // namespace herald::cli
