// Registering and dispatching the client's subcommands; see commands.hpp.
#include "cli/commands.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>

#include "cli/outcome.hpp"
#include "protocol/command.hpp"

namespace herald::cli {

namespace {

const char* const kExitCodes =
    "Exit codes: 0 ok; 1 the server refused (its error code and message on stderr);\n"
    "2 bad usage or input (nothing sent); 3 cannot connect, connection lost, or timeout.\n"
    "Secrets (--token, --api-key) are sent to the server only, never printed.";

// The environment variables are read in run(), not by CLI11: its 2.1
// lets a variable override the flag given on a subcommand's command line.
void add_common(CLI::App* cmd, ClientOptions& o, bool request_timeout) {
  cmd->add_option("--url", o.url,
                  "Server URL, http[s]://host:port[/base] (env HERALD_URL; default "
                  "http://localhost:8080)");
  cmd->add_option("--ws-path", o.ws_path,
                  "The server's WebSocket path under the URL (server.ws_path, default /ws)");
  cmd->add_option("--token", o.token,
                  "Connection token (JWT) for the WebSocket (env HERALD_TOKEN)");
  cmd->add_option("--api-key", o.api_key, "API key for the HTTP API (env HERALD_API_KEY)");
  cmd->add_option("--ca-file", o.ca_file,
                  "https:// URLs: PEM file of the CAs to trust instead of the system's");
  if (request_timeout)
    cmd->add_option("--timeout-ms", o.timeout_ms,
                    "Give up on a request after this long (default 10000): exit 3")
        ->check(CLI::NonNegativeNumber);
}

// `value` from the environment variable `env` unless `flag` was given.
void from_env(const CLI::App* cmd, const char* flag, const char* env, std::string& value) {
  if (cmd->get_option(flag)->count() > 0) return;
  if (const char* v = std::getenv(env); v && *v) value = v;
}

}  // namespace

ClientCommands::ClientCommands(CLI::App& app) {
  sub_cmd_ =
      app.add_subcommand("sub", "Subscribe to channels and print their events as JSON lines");
  sub_cmd_->add_option("channels", sub_.channels, "Channels to subscribe to")->required();
  auto* history = sub_cmd_
                      ->add_option("--history", sub_.history,
                                   "Print the last N stored events of each channel first")
                      ->check(CLI::NonNegativeNumber);
  sub_cmd_
      ->add_option("--from", sub_.from,
                   "Print the events after this position first: EPOCH:OFFSET (from an "
                   "earlier output line) or OFFSET (in the current epoch)")
      ->excludes(history);
  sub_cmd_->add_option("--count", sub_.count, "Exit after printing N events")
      ->check(CLI::NonNegativeNumber);
  sub_cmd_
      ->add_option("--timeout-ms", sub_.timeout_ms,
                   "Exit after this long (0, the default: never); with --count, "
                   "reaching it first is exit 3")
      ->check(CLI::NonNegativeNumber);
  add_common(sub_cmd_, client_, false);
  sub_cmd_->footer(
      std::string(
          "Over the WebSocket (with --token, as that user). One line per event, flushed at once:\n"
          "  {\"channel\":…,\"event\":…,\"offset\":…,\"epoch\":…,\"ts\":…,\"from\":…,\"data\":…}\n"
          "(offset absent for ephemeral events, from for HTTP-published ones). A dropped\n"
          "connection is resumed with backoff and recovered from the last event printed: no\n"
          "gap, no duplicate; when the server cannot recover, stderr says so. Ctrl-C: exit 0.\n"
          "  herald sub chat:lobby --history 10 | jq -c .data\n") +
      kExitCodes);

  pub_cmd_ = app.add_subcommand("pub", "Publish one event; prints its offset");
  pub_cmd_->add_option("channel", pub_.channel, "Channel")->required();
  pub_cmd_->add_option("event", pub_.event, "Event name")->required();
  pub_cmd_->add_option("data", pub_.data, "The event's data as JSON, or - to read it from stdin")
      ->required();
  pub_cmd_->add_flag("--ephemeral", pub_.ephemeral, "Not stored, no offset (typing indicators)");
  pub_cmd_->add_option("--idempotency-key", pub_.idempotency_key,
                       "Makes a retry safe: the same key stores the event once");
  add_common(pub_cmd_, client_, true);
  pub_cmd_->footer(
      std::string(
          "Over the HTTP API (POST /api/publish) with --api-key or none; over the WebSocket\n"
          "when only --token is given. DATA is checked before sending (not JSON: exit 2).\n"
          "  herald pub chat:lobby chat.message '{\"text\":\"hi\"}'\n"
          "  jq -c '{text: .}' <<< '\"hello\"' | herald pub chat:lobby chat.message -\n") +
      kExitCodes);

  history_cmd_ = app.add_subcommand("history", "Print a channel's stored events as JSON lines");
  history_cmd_->add_option("channel", history_.channel, "Channel")->required();
  history_cmd_->add_option("--limit", history_.limit, "At most N events (default 100)")
      ->check(CLI::NonNegativeNumber);
  history_cmd_
      ->add_option("--since", history_.since,
                   "Only events after this offset, the oldest N (default: the newest N)")
      ->check(CLI::NonNegativeNumber);
  history_cmd_->add_flag("--reverse", history_.reverse, "Newest first");
  add_common(history_cmd_, client_, true);
  history_cmd_->footer(
      std::string("Oldest first, one line per event as `herald sub` prints them. Over the HTTP\n"
                  "API, or the WebSocket when only --token is given; pages past the server's\n"
                  "history.max_request.\n"
                  "  herald history chat:lobby --limit 20 | jq -r .data.text\n") +
      kExitCodes);

  presence_cmd_ = app.add_subcommand("presence", "Print who is subscribed to a channel, as JSON");
  presence_cmd_->add_option("channel", presence_.channel, "Channel")->required();
  presence_cmd_->add_flag("--stats", presence_.stats, "Counts only: {channel, clients, users}");
  add_common(presence_cmd_, client_, true);
  presence_cmd_->footer(
      std::string("{\"channel\":…,\"members\":[{\"client\",\"user\"?,\"info\"?},…],\"complete\":…}"
                  " (namespaces\nwith presence = true). Over the HTTP API, or the WebSocket when "
                  "only --token is given.\n"
                  "  herald presence room:x7 | jq -r '.members[].user'\n") +
      kExitCodes);
}

std::optional<int> ClientCommands::run() {
  if (!sub_cmd_->parsed() && !pub_cmd_->parsed() && !history_cmd_->parsed() &&
      !presence_cmd_->parsed())
    return std::nullopt;
  for (const auto* cmd : {sub_cmd_, pub_cmd_, history_cmd_, presence_cmd_}) {
    if (!cmd->parsed()) continue;
    from_env(cmd, "--url", "HERALD_URL", client_.url);
    from_env(cmd, "--token", "HERALD_TOKEN", client_.token);
    from_env(cmd, "--api-key", "HERALD_API_KEY", client_.api_key);
  }
  std::string why;
  auto server = parse_server_url(client_.url, client_.ws_path, &why);
  if (!server) return fail(Exit::usage, why);
  client_.server = std::move(*server);
  client_.server.ca_file = client_.ca_file;

  std::vector<std::string> channels = sub_.channels;
  if (pub_cmd_->parsed()) channels = {pub_.channel};
  if (history_cmd_->parsed()) channels = {history_.channel};
  if (presence_cmd_->parsed()) channels = {presence_.channel};
  for (const auto& channel : channels) {
    // Characters only: the length limit is the server's configuration.
    if (auto bad = protocol::check_channel_name(channel, 65536); !bad.empty())
      return fail(Exit::usage, bad);
    if (std::count(channels.begin(), channels.end(), channel) > 1)
      return fail(Exit::usage, "channel " + channel + " given twice");
  }

  if (sub_cmd_->parsed()) return run_sub(client_, sub_);
  if (pub_cmd_->parsed()) return run_pub(client_, pub_);
  if (history_cmd_->parsed()) return run_history(client_, history_);
  return run_presence(client_, presence_);
}

}  // namespace herald::cli
