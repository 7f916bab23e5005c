// Timestamps and epoch names shared by the engines; see clock_and_epoch.hpp.
#include "engine/clock_and_epoch.hpp"

#include <chrono>
#include <random>

namespace herald::engine {

int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Epochs name a channel's life; they are shown to clients, not secrets, so
// a per-thread generator seeded once from the system's random source does:
// the redis engine asks for one with every publish (the candidate for a new
// channel), and opening std::random_device each time was ~80% of a
// worker's CPU at 21 k publishes/s on one channel (perf, bench/RESULTS.md).
std::string random_epoch() {
  thread_local std::mt19937_64 generator{[] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }()};
  uint64_t bits = generator();
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string epoch(8, '0');
  for (char& c : epoch) {
    c = kDigits[bits % 36];
    bits /= 36;
  }
  return epoch;
}

}  // namespace herald::engine
