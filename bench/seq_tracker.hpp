// herald-bench: per (subscriber, publisher) sequence checking. Publisher p
// numbers its messages 1..count[p]; every subscriber must see each exactly
// once, each one more than the previous. The in-order case costs one
// compare; a pair that ever leaves it gets an exact bitset of seen seqs,
// grown as far as the highest seq seen (within a memory budget; past it,
// counts fall back to comparing with the highest seq seen and are flagged
// approximate). Counts may be huge (a publisher that stops on a timer gets
// a cap, not its real count): they only bound what is valid.
#pragma once

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace herald::bench {

class SeqTracker {
 public:
  enum class Result { in_order, out_of_order, duplicate, invalid };

  SeqTracker(uint64_t subscribers, std::vector<uint64_t> counts,
             uint64_t max_bitset_bytes = 256ull << 20)
      : pubs_(counts.size()),
        counts_(std::move(counts)),
        last_(subscribers * pubs_, 0),
        tracked_(subscribers * pubs_, 0),
        budget_(max_bitset_bytes) {}

  Result record(uint64_t sub, uint64_t pub, uint64_t seq) {
    if (pub >= pubs_ || seq == 0 || seq > counts_[pub]) {
      ++invalid_;
      return Result::invalid;
    }
    const uint64_t key = sub * pubs_ + pub;
    uint64_t& last = last_[key];
    if (seq == last + 1 && !tracked_[key]) {
      last = seq;
      ++unique_;
      return Result::in_order;
    }
    return anomaly(key, pub, seq);
  }

  uint64_t unique() const { return unique_; }              // distinct (sub, pub, seq) seen
  uint64_t duplicated() const { return duplicated_; }      // seen again
  uint64_t out_of_order() const { return out_of_order_; }  // first sight, but not last + 1
  uint64_t invalid() const { return invalid_; }            // unknown pub or seq out of range
  bool approximate() const { return approximate_; }

 private:
  Result anomaly(uint64_t key, uint64_t, uint64_t seq) {
    uint64_t& last = last_[key];
    if (!tracked_[key]) {
      if (!grow_ok(0, std::max(last, seq) / 64 + 1)) return approximate_result(last, seq);
      auto& bits = seen_[key];
      bits.assign(std::max(last, seq) / 64 + 1, 0);
      used_ += bits.size() * 8;
      for (uint64_t s = 1; s <= last; ++s)
        bits[s / 64] |= uint64_t{1} << (s % 64);  // seen in order
      tracked_[key] = 1;
    }
    auto& bits = seen_[key];
    if (seq / 64 >= bits.size()) {
      const uint64_t words = std::max<uint64_t>(seq / 64 + 1, bits.size() * 2);
      if (!grow_ok(bits.size(), words)) return approximate_result(last, seq);
      used_ += (words - bits.size()) * 8;
      bits.resize(words, 0);
    }
    const uint64_t bit = uint64_t{1} << (seq % 64);
    if (bits[seq / 64] & bit) {
      ++duplicated_;
      return Result::duplicate;
    }
    bits[seq / 64] |= bit;
    ++unique_;
    const bool in_order = seq == last + 1;
    if (seq > last) last = seq;
    if (in_order) return Result::in_order;
    ++out_of_order_;
    return Result::out_of_order;
  }

  bool grow_ok(uint64_t have_words, uint64_t want_words) const {
    return used_ + (want_words - have_words) * 8 <= budget_;
  }

  // Past the budget: compare with the highest seq seen only.
  Result approximate_result(uint64_t& last, uint64_t seq) {
    approximate_ = true;
    if (seq <= last) {
      ++duplicated_;
      return Result::duplicate;
    }
    ++out_of_order_;
    ++unique_;
    last = seq;
    return Result::out_of_order;
  }

  uint64_t pubs_;
  std::vector<uint64_t> counts_;
  std::vector<uint64_t> last_;    // [sub * P + pub]: highest seq seen
  std::vector<uint8_t> tracked_;  // [sub * P + pub]: has a bitset in seen_
  std::unordered_map<uint64_t, std::vector<uint64_t>> seen_;
  uint64_t budget_, used_ = 0;
  bool approximate_ = false;
  uint64_t unique_ = 0, duplicated_ = 0, out_of_order_ = 0, invalid_ = 0;
};

}  // namespace herald::bench
