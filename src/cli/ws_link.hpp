// One WebSocket connection of the command-line client to the server
// (Boost.Beast over TCP), as blocking steps with deadlines (io_wait.hpp):
// open (resolve, connect, upgrade), send a text message, receive the next
// one, close. Owns the socket and nothing else: it knows no protocol
// message (sub_command.cpp and ws_request.cpp speak the protocol).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cli/io_wait.hpp"
#include "cli/server_url.hpp"

namespace herald::cli {

struct LinkStatus {
  enum class Kind { ok, timeout, closed, failed };
  Kind kind = Kind::ok;
  uint16_t close_code = 0;  // closed: the server's close code
  std::string what;         // for humans: what failed, or the close reason

  bool ok() const { return kind == Kind::ok; }
  // "closed by the server (4001 ...)", "timed out", "connection refused"...
  std::string describe() const;
};

class WsLink {
 public:
  explicit WsLink(boost::asio::io_context& io);
  ~WsLink();
  WsLink(const WsLink&) = delete;
  WsLink& operator=(const WsLink&) = delete;

  // Connects to `server` and upgrades at its ws_target. A link is opened
  // once; make a new one to reconnect.
  LinkStatus open(const ServerUrl& server, Clock::time_point deadline);
  LinkStatus send(std::string_view text, Clock::time_point deadline);
  // The next text message (the server sends nothing else).
  LinkStatus receive(std::string& text, Clock::time_point deadline);
  // A polite close (code 1000), waiting for the server's answer until
  // `deadline`; then the socket is closed in every case.
  void close(Clock::time_point deadline);
  // Closes the socket at once: the step in progress fails. For a signal
  // handler running on the same io_context.
  void abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::cli
