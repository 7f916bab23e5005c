// Blocking steps over asio's asynchronous operations, for the command-line
// client: run the io_context until one operation completes, or cancel it at
// a deadline. The client is one thread doing one thing at a time, but it
// needs deadlines on every step and SIGINT (sub) to interrupt any of them,
// which asio's synchronous calls do not offer. Owns no I/O object itself.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

namespace herald::cli {

using Clock = std::chrono::steady_clock;

// Runs `io` until `done` becomes true. If `deadline` passes first, calls
// `cancel` (which must make the pending operation complete, e.g. by closing
// its socket), still waits for `done`, and returns false. True when the
// operation completed before the deadline.
bool run_until(boost::asio::io_context& io, const bool& done, Clock::time_point deadline,
               const std::function<void()>& cancel);

// Sleeps until `deadline` while serving `io` (so a signal handler on it
// runs); returns early, false, when `stop` becomes true.
bool sleep_until(boost::asio::io_context& io, Clock::time_point deadline, const bool& stop);

}  // namespace herald::cli
