// run_until and sleep_until; see io_wait.hpp.
#include "cli/io_wait.hpp"

#include <boost/asio/steady_timer.hpp>

namespace herald::cli {

bool run_until(boost::asio::io_context& io, const bool& done, Clock::time_point deadline,
               const std::function<void()>& cancel) {
  // An io_context that ran out of work (the previous step's last handler)
  // is stopped, and run_one() would return at once.
  if (io.stopped()) io.restart();
  boost::asio::steady_timer timer(io, deadline);
  bool timed_out = false;
  bool timer_ran = false;
  timer.async_wait([&](const boost::system::error_code& ec) {
    timer_ran = true;
    if (!ec && !done) {
      timed_out = true;
      cancel();
    }
  });
  while (!done || !timer_ran) {
    if (done) timer.cancel();
    if (io.run_one() == 0) {
      // Nothing left to run, so `done` can never change (a bug): fail the
      // step rather than report it done.
      io.restart();
      timed_out = timed_out || !done;
      break;
    }
  }
  return !timed_out;
}

bool sleep_until(boost::asio::io_context& io, Clock::time_point deadline, const bool& stop) {
  if (io.stopped()) io.restart();
  boost::asio::steady_timer timer(io, deadline);
  bool ran = false;
  timer.async_wait([&](const boost::system::error_code&) { ran = true; });
  while (!ran) {
    if (stop) timer.cancel();
    if (io.run_one() == 0) {
      io.restart();
      break;
    }
  }
  return !stop;
}

}  // namespace herald::cli
