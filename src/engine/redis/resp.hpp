// RESP (the Redis protocol) for the redis engine: the Reply value type, the
// reader that turns bytes from a connection into Replies (hiredis' redisReader
// does the parsing; hiredis does no I/O for us, see redis_link.hpp), and the
// encoder of commands.
//
// Owns nothing but the reader's buffer; pure data, no I/O, no threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace herald::engine::redis {

struct Reply {
  enum class Kind { status, error, integer, string, nil, array };
  Kind kind = Kind::nil;
  std::string str;  // status, error and string
  int64_t integer = 0;
  std::vector<Reply> elements;  // array

  bool is_error() const { return kind == Kind::error; }
  bool is_nil() const { return kind == Kind::nil; }
};

// For tests and logs: +OK, -ERR ..., :1, "bulk", (nil), [a, b].
std::string to_string(const Reply& reply);

// Bytes in, Replies out, in order. Not copyable (owns a redisReader).
class ReplyReader {
 public:
  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  void feed(const char* data, size_t size);
  // The next complete reply, or nullopt when more bytes are needed. Throws
  // std::runtime_error on a protocol error (the connection is unusable then).
  std::optional<Reply> next();

 private:
  redisReader* reader_;
};

// Appends one command as a RESP array of bulk strings.
void append_command(std::string& out, std::initializer_list<std::string_view> args);
void append_command(std::string& out, const std::vector<std::string>& args);
void append_command(std::string& out, const std::vector<std::string_view>& args);

}  // namespace herald::engine::redis
