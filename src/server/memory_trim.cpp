// MemoryTrimmer and trim_heap; see memory_trim.hpp.
#include "server/memory_trim.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace herald::server {

namespace {

// Resident set in bytes (/proc/self/statm), 0 when unreadable.
size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

bool TrimTrigger::update(size_t open) {
  if (open >= peak) {
    peak = open;
    return false;
  }
  if (peak - open >= kMinDrop && open <= peak / 2) {
    peak = open;
    return true;
  }
  return false;
}

void trim_heap(size_t open, size_t peak) {
#if defined(__GLIBC__)
  const size_t before = resident_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  ::malloc_trim(0);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const size_t after = resident_bytes();
  spdlog::info(
      "returned free memory to the OS: {} connections open (from {}), RSS {:.1f} -> {:.1f} MiB "
      "in {:.1f} ms",
      open, peak, double(before) / 1048576.0, double(after) / 1048576.0, ms);
#else
  (void)open;
  (void)peak;
#endif
}

MemoryTrimmer::MemoryTrimmer(boost::asio::io_context& io, const std::atomic<size_t>& connections,
                             std::chrono::milliseconds period)
    : timer_(io), connections_(connections), period_(period) {}

void MemoryTrimmer::arm() {
  timer_.expires_after(period_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    const size_t peak = trigger_.peak;
    const size_t open = connections_.load(std::memory_order_relaxed);
    if (trigger_.update(open)) trim_heap(open, peak);
    arm();
  });
}

}  // namespace herald::server
