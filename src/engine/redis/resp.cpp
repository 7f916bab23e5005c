// RESP reader and encoder (resp.hpp).
//
// The reader hands hiredis our own object functions, so a reply is built
// directly as a Reply tree: the root is allocated, and every element is
// constructed in place in its parent's `elements`, which is sized once by
// createArray and never grows, so the pointers hiredis keeps stay valid.
// hiredis 0.14 frees only the root (r->reply) through freeObject, on error
// or when the reader is freed, never an element on its own.
#include "engine/redis/resp.hpp"

#include <hiredis/read.h>

#include <stdexcept>

namespace herald::engine::redis {
namespace {

Reply* slot(const redisReadTask* task) {
  if (task->parent == nullptr) return new Reply();
  auto* parent = static_cast<Reply*>(task->parent->obj);
  return &parent->elements[static_cast<size_t>(task->idx)];
}

void* create_string(const redisReadTask* task, char* str, size_t len) {
  Reply* r = slot(task);
  r->kind = task->type == REDIS_REPLY_ERROR    ? Reply::Kind::error
            : task->type == REDIS_REPLY_STATUS ? Reply::Kind::status
                                               : Reply::Kind::string;
  r->str.assign(str, len);
  return r;
}

void* create_array(const redisReadTask* task, int elements) {
  Reply* r = slot(task);
  r->kind = Reply::Kind::array;
  r->elements.resize(static_cast<size_t>(elements));
  return r;
}

void* create_integer(const redisReadTask* task, long long value) {
  Reply* r = slot(task);
  r->kind = Reply::Kind::integer;
  r->integer = value;
  return r;
}

void* create_nil(const redisReadTask* task) {
  Reply* r = slot(task);
  r->kind = Reply::Kind::nil;
  return r;
}

void free_object(void* obj) {
  delete static_cast<Reply*>(obj);
}

redisReplyObjectFunctions kFunctions = {create_string, create_array, create_integer, create_nil,
                                        free_object};

void append_bulk(std::string& out, std::string_view arg) {
  out += '$';
  out += std::to_string(arg.size());
  out += "\r\n";
  out += arg;
  out += "\r\n";
}

template <typename Range>
void append_range(std::string& out, const Range& args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (std::string_view arg : args) append_bulk(out, arg);
}

}  // namespace

ReplyReader::ReplyReader() : reader_(redisReaderCreateWithFunctions(&kFunctions)) {
  if (reader_ == nullptr) throw std::bad_alloc();
  // hiredis compacts its buffer only when over maxbuf unused bytes; 0 would
  // keep every read buffer forever, the default (16 KiB) is fine.
}

ReplyReader::~ReplyReader() {
  redisReaderFree(reader_);
}

void ReplyReader::feed(const char* data, size_t size) {
  if (redisReaderFeed(reader_, data, size) != REDIS_OK) {
    throw std::runtime_error(std::string("redis protocol: ") + reader_->errstr);
  }
}

std::optional<Reply> ReplyReader::next() {
  void* obj = nullptr;
  if (redisReaderGetReply(reader_, &obj) != REDIS_OK) {
    throw std::runtime_error(std::string("redis protocol: ") + reader_->errstr);
  }
  if (obj == nullptr) return std::nullopt;
  auto* r = static_cast<Reply*>(obj);
  Reply out = std::move(*r);
  delete r;
  return out;
}

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  append_range(out, args);
}
void append_command(std::string& out, const std::vector<std::string>& args) {
  append_range(out, args);
}
void append_command(std::string& out, const std::vector<std::string_view>& args) {
  append_range(out, args);
}

std::string to_string(const Reply& reply) {
  switch (reply.kind) {
    case Reply::Kind::status:
      return "+" + reply.str;
    case Reply::Kind::error:
      return "-" + reply.str;
    case Reply::Kind::integer:
      return ":" + std::to_string(reply.integer);
    case Reply::Kind::string:
      return "\"" + reply.str + "\"";
    case Reply::Kind::nil:
      return "(nil)";
    case Reply::Kind::array: {
      std::string out = "[";
      for (size_t i = 0; i < reply.elements.size(); ++i) {
        if (i != 0) out += ", ";
        out += to_string(reply.elements[i]);
      }
      return out + "]";
    }
  }
  return "?";
}

}  // namespace herald::engine::redis
