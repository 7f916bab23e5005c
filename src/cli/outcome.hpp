// The command-line client's exit codes and the one way its commands report
// a failure on stderr. Owns nothing else; every src/cli command returns an
// Outcome so `herald sub|pub|history|presence` exit the same way
// (docs/operations.md, "Command-line client", lists the codes).
#pragma once

#include <string>

namespace herald::cli {

enum class Exit : int {
  ok = 0,           // done
  refused = 1,      // the server answered with an error (or ended the subscription)
  usage = 2,        // bad option or input, found before anything was sent
  unreachable = 3,  // cannot connect, the connection failed, or a timeout
};

// A failure on its way to main: the exit code and the stderr line.
struct Failure {
  Exit code = Exit::refused;
  std::string what;
};

// Prints "herald: <what>" on stderr (one line) and returns `code`, so a
// command ends with `return fail(Exit::refused, ...)`. `what` must never
// hold a token or an API key.
int fail(Exit code, const std::string& what);

int fail(const Failure& f);

// A note on stderr that is not a failure ("herald: reconnecting ...").
void note(const std::string& what);

}  // namespace herald::cli
