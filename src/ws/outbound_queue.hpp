// A connection's queue of frames waiting to be written, with byte
// accounting for the slow-consumer limit. Holds references to shared
// frames; gathers them into iovecs so one writev sends many frames.
// A vector with a moving head instead of std::deque: std::deque allocates
// even when empty, which matters with many idle connections.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <vector>

#include "ws/shared_frame.hpp"

namespace herald::ws {

class OutboundQueue {
 public:
  void push(SharedFrame frame);
  bool empty() const { return head_ == frames_.size(); }
  // Bytes queued and not yet written.
  size_t bytes() const { return bytes_; }
  // Fills up to `max` iovecs from the head; returns how many.
  int gather(iovec* iov, int max) const;
  // Marks `n` bytes as written.
  void consume(size_t n);
  // Drops every frame not yet started; keeps a partly written head frame so
  // the byte stream stays well-formed for a close frame queued after it.
  void drop_unstarted();
  // Empties the queue and frees its storage.
  void clear();
  // Frees the storage of an empty queue. A busy connection keeps its
  // storage between flushes (no allocation per queued frame); the worker's
  // periodic tick calls this so idle connections hold none.
  void release_if_empty();

 private:
  std::vector<SharedFrame> frames_;
  size_t head_ = 0;         // first frame not fully written
  size_t head_offset_ = 0;  // bytes of frames_[head_] already written
  size_t bytes_ = 0;
};

}  // namespace herald::ws
