// Test fixture for the redis engine's tests: a real /usr/bin/redis-server on
// a free 127.0.0.1 port and a unix socket, in its own temporary directory,
// without persistence; started in the constructor (waiting for PING),
// stopped (SIGKILL) and removed in the destructor, and stop()/start() in
// between for failure tests (start() reuses the port and directory).
// call() is a small synchronous client of its own (one connection per call)
// for the "other connection" of the tests: PUBLISH, CLIENT KILL, ACL.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/redis/resp.hpp"

namespace herald::engine::redis::testing {

class RedisServer {
 public:
  // extra: more redis-server arguments, e.g. {"--requirepass", "pw"}.
  // password: what call() authenticates with.
  explicit RedisServer(std::vector<std::string> extra = {}, std::string password = "")
      : extra_(std::move(extra)), password_(std::move(password)) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "herald-redis-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    // ctest runs tests in parallel: a port found free may be taken by
    // another test's server before ours binds it; then ours exits and start()
    // throws, and another port is tried.
    for (int attempt = 1;; ++attempt) {
      port_ = free_port();
      try {
        start();
        return;
      } catch (const std::exception&) {
        if (attempt == 5) throw;
      }
    }
  }
  ~RedisServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  std::string socket_path() const { return dir_ + "/redis.sock"; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  void start() {
    std::vector<std::string> args = {"/usr/bin/redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_,
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--unixsocket",
                                     socket_path(),
                                     "--unixsocketperm",
                                     "700",
                                     "--logfile",
                                     dir_ + "/redis.log",
                                     "--daemonize",
                                     "no"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("redis-server exited at start: " + log());
      }
      // Answered by our process, not another test's server on the same port.
      try {
        if (to_string(call({"PING"})) == "+PONG" && ours()) return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("redis-server did not answer PING: " + log());
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string log() const {
    std::ifstream in(dir_ + "/redis.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // One command on a fresh connection (AUTH first with the password given).
  Reply call(std::initializer_list<std::string_view> args) const {
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port_});
    std::string out;
    if (!password_.empty()) append_command(out, {"AUTH", password_});
    append_command(out, args);
    asio::write(socket, asio::buffer(out));
    ReplyReader reader;
    std::vector<Reply> replies;
    size_t want = password_.empty() ? 1 : 2;
    char buf[4096];
    while (replies.size() < want) {
      while (auto r = reader.next()) replies.push_back(std::move(*r));
      if (replies.size() >= want) break;
      size_t n = socket.read_some(asio::buffer(buf));
      reader.feed(buf, n);
    }
    return replies.back();
  }

 private:
  // Whether the server answering on port() is the process this fixture started.
  bool ours() {
    const Reply info = call({"INFO", "server"});
    return info.str.find("process_id:" + std::to_string(pid_) + "\r\n") != std::string::npos;
  }

  static uint16_t free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(
        io, {boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(0)});
    return a.local_endpoint().port();
  }

  std::vector<std::string> extra_;
  std::string password_;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// Runs `io` until `done()` or the timeout; false on timeout.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
  io.restart();
  io.run_for(d);
}

}  // namespace herald::engine::redis::testing
