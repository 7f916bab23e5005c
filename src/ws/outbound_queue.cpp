// OutboundQueue; see outbound_queue.hpp.
#include "ws/outbound_queue.hpp"

namespace herald::ws {

void OutboundQueue::push(SharedFrame frame) {
  bytes_ += frame->size();
  frames_.push_back(std::move(frame));
}

int OutboundQueue::gather(iovec* iov, int max) const {
  int n = 0;
  for (size_t i = head_; i < frames_.size() && n < max; ++i, ++n) {
    auto bytes = frames_[i]->bytes();
    const size_t skip = (i == head_) ? head_offset_ : 0;
    iov[n].iov_base = const_cast<char*>(bytes.data() + skip);
    iov[n].iov_len = bytes.size() - skip;
  }
  return n;
}

void OutboundQueue::consume(size_t n) {
  bytes_ -= n;
  while (n > 0 && head_ < frames_.size()) {
    const size_t left = frames_[head_]->size() - head_offset_;
    if (n < left) {
      head_offset_ += n;
      return;
    }
    n -= left;
    frames_[head_].reset();
    ++head_;
    head_offset_ = 0;
  }
  if (head_ == frames_.size()) {
    frames_.clear();  // keeps capacity for the next turn
    head_ = 0;
    head_offset_ = 0;
  } else if (head_ > 64 && head_ * 2 > frames_.size()) {
    frames_.erase(frames_.begin(), frames_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

void OutboundQueue::drop_unstarted() {
  const size_t keep_until = head_ + (head_offset_ > 0 ? 1 : 0);
  for (size_t i = keep_until; i < frames_.size(); ++i) bytes_ -= frames_[i]->size();
  frames_.resize(keep_until);
  if (head_ == frames_.size()) clear();
}

void OutboundQueue::release_if_empty() {
  if (empty() && frames_.capacity() > 0) clear();
}

void OutboundQueue::clear() {
  std::vector<SharedFrame>().swap(frames_);
  head_ = 0;
  head_offset_ = 0;
  bytes_ = 0;
}

}  // namespace herald::ws
