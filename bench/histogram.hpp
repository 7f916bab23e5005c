// herald-bench: a fixed-size log-linear latency histogram (HDR-like).
//
// Values are nanoseconds. Values below 256 have their own bucket; above,
// each power of two is split into 128 linear buckets, so any recorded value
// is reported within 0.4% (half a bucket) of itself. Recording is an index
// computation and one increment; the table is ~60 KB whatever the count.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace herald::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 8;  // 2^8 = 256 exact values, then 128 per octave
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr uint64_t kHalf = kSub / 2;
  static constexpr size_t kBuckets = kSub + (64 - kSubBits) * kHalf;

  Histogram() : counts_(kBuckets, 0) {}

  void record(uint64_t v) {
    ++counts_[index(v)];
    ++count_;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
    sum_ += v;
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ ? max_ : 0; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }

  // The value at quantile q (0..1): the middle of the bucket holding the
  // ceil(q * count)-th smallest value, never above the exact maximum.
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * double(count_) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(middle(i), max_);
    }
    return max_;
  }

  void merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }

  static size_t index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    const int e = 63 - std::countl_zero(v);        // >= kSubBits
    const uint64_t m = v >> (e - (kSubBits - 1));  // in [kHalf, kSub)
    return static_cast<size_t>(kSub + uint64_t(e - kSubBits) * kHalf + (m - kHalf));
  }

  static uint64_t lower(size_t i) {
    if (i < kSub) return i;
    const uint64_t k = i - kSub;
    const int e = static_cast<int>(k / kHalf) + kSubBits;
    const uint64_t m = (k % kHalf) + kHalf;
    return m << (e - (kSubBits - 1));
  }

  static uint64_t middle(size_t i) {
    if (i < kSub) return i;
    const uint64_t k = i - kSub;
    const int e = static_cast<int>(k / kHalf) + kSubBits;
    const uint64_t width = uint64_t{1} << (e - (kSubBits - 1));
    return lower(i) + width / 2;
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace herald::bench
