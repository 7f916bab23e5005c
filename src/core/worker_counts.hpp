// WorkerCounts: how many subscriptions each worker holds on one owned
// channel (Node::OwnedChannel::counts), in 16 bytes: the counts of up to
// three workers inline, a heap array beyond. The owner keeps one per
// channel with subscribers, so for idle connections each subscribed to its
// own channel this is paid per connection (issue 15; a small_vector<
// uint32_t, 4> took 40). Owns nothing else; only the owner's thread uses it.
//
// The interface is the part of a vector the node uses: empty() for "not set
// up yet", resize() once to the worker count, then size(), [], begin/end.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

namespace herald::core {

class WorkerCounts {
 public:
  static constexpr uint32_t kInline = 3;

  WorkerCounts() = default;
  WorkerCounts(WorkerCounts&& o) noexcept { take(o); }
  WorkerCounts& operator=(WorkerCounts&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  WorkerCounts(const WorkerCounts&) = delete;
  WorkerCounts& operator=(const WorkerCounts&) = delete;
  ~WorkerCounts() { release(); }

  bool empty() const { return words_[0] == 0; }
  uint32_t size() const { return words_[0]; }

  // From empty to `n` zero counts (the node sizes it once, to the worker
  // count); any other resize drops what was counted.
  void resize(uint32_t n) {
    release();
    if (n > kInline) {
      uint32_t* heap = new uint32_t[n]();
      std::memcpy(&words_[2], &heap, sizeof heap);
    } else {
      words_[1] = words_[2] = words_[3] = 0;
    }
    words_[0] = n;
  }

  uint32_t* begin() { return data(); }
  uint32_t* end() { return data() + size(); }
  const uint32_t* begin() const { return data(); }
  const uint32_t* end() const { return data() + size(); }
  uint32_t& operator[](uint32_t i) { return data()[i]; }
  uint32_t operator[](uint32_t i) const { return data()[i]; }

 private:
  bool on_heap() const { return words_[0] > kInline; }
  uint32_t* heap() const {
    uint32_t* p;
    std::memcpy(&p, &words_[2], sizeof p);
    return p;
  }
  uint32_t* data() { return on_heap() ? heap() : &words_[1]; }
  const uint32_t* data() const { return on_heap() ? heap() : &words_[1]; }
  void release() {
    if (on_heap()) delete[] heap();
    words_[0] = 0;
  }
  void take(WorkerCounts& o) {
    std::memcpy(words_, o.words_, sizeof words_);
    o.words_[0] = 0;
  }

  // words_[0]: the worker count. Up to kInline workers: their counts in
  // words_[1..3]; more: words_[2..3] hold the heap array's pointer (8-byte
  // aligned by alignas).
  alignas(8) uint32_t words_[4] = {0, 0, 0, 0};
};

static_assert(sizeof(WorkerCounts) == 16);

}  // namespace herald::core
