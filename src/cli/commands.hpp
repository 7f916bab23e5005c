// The command-line client's subcommands of the `herald` binary (`sub`,
// `pub`, `history`, `presence`), their options and --help texts, and
// running the one that was given. main.cpp only constructs this before
// parsing and calls run() after; the commands themselves live in
// sub_command.* and request_commands.*.
#pragma once

#include <optional>

#include "cli/client_options.hpp"
#include "cli/request_commands.hpp"
#include "cli/sub_command.hpp"

namespace CLI {
class App;
}

namespace herald::cli {

class ClientCommands {
 public:
  // Adds the subcommands to `app`, which must outlive this.
  explicit ClientCommands(CLI::App& app);

  // After parsing: the exit code of the client command that was given,
  // nullopt when the command line named another one.
  std::optional<int> run();

 private:
  ClientOptions client_;
  SubOptions sub_;
  PubOptions pub_;
  HistoryOptions history_;
  PresenceOptions presence_;
  CLI::App* sub_cmd_ = nullptr;
  CLI::App* pub_cmd_ = nullptr;
  CLI::App* history_cmd_ = nullptr;
  CLI::App* presence_cmd_ = nullptr;
};

}  // namespace herald::cli
