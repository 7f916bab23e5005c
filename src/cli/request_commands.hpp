// `herald pub`, `herald history` and `herald presence`: one question to the
// server each (history: one per page), over the HTTP API with the API key,
// or over the WebSocket as the token's user (client_options.hpp says
// which), with the answer on stdout. Each returns the process's exit code
// (outcome.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cli/client_options.hpp"

namespace herald::cli {

struct PubOptions {
  std::string channel, event, data;  // data: JSON text, or "-" for stdin
  bool ephemeral = false;
  std::string idempotency_key;
};

struct HistoryOptions {
  std::string channel;
  uint64_t limit = 100;
  std::optional<uint64_t> since;  // only events with offset > since, oldest first
  bool reverse = false;           // print newest first
};

struct PresenceOptions {
  std::string channel;
  bool stats = false;  // counts only (presence_stats)
};

// Prints the event's offset (nothing for an ephemeral event).
int run_pub(const ClientOptions& client, PubOptions pub);
// One event line (server_message.hpp) per event, oldest first unless reversed.
int run_history(const ClientOptions& client, const HistoryOptions& history);
// One JSON line: {"channel","members","complete"} or {"channel","clients","users"}.
int run_presence(const ClientOptions& client, const PresenceOptions& presence);

}  // namespace herald::cli
