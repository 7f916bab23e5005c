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

std::string random_epoch() {
  std::random_device rd;
  uint64_t bits = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string epoch(8, '0');
  for (char& c : epoch) {
    c = kDigits[bits % 36];
    bits /= 36;
  }
  return epoch;
}

}  // namespace herald::engine
