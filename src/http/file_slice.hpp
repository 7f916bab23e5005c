// FileSlice: a POSIX file of which only the bytes [offset, offset+length)
// are sent, for Beast's basic_file_body (a byte range, or the whole file).
// basic_file_body streams it in 4 KiB reads, so a response never holds a
// file in memory. Owns nothing but the open file.
#pragma once

#include <boost/beast/core/file_posix.hpp>
#include <boost/beast/http/basic_file_body.hpp>
#include <boost/beast/http/message.hpp>
#include <cstdint>

namespace herald::http {

class FileSlice : public boost::beast::file_posix {
 public:
  // After open(): the body is `length` bytes from `offset`.
  void select(uint64_t offset, uint64_t length, boost::beast::error_code& ec) {
    seek(offset, ec);
    length_ = length;
  }
  // What basic_file_body sends (it caches this at reset()).
  uint64_t size(boost::beast::error_code& ec) const {
    ec = {};
    return length_;
  }

 private:
  uint64_t length_ = 0;
};

using FileBody = boost::beast::http::basic_file_body<FileSlice>;
using FileResponse = boost::beast::http::response<FileBody>;

}  // namespace herald::http
