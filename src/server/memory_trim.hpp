// MemoryTrimmer: gives the heap memory that glibc's malloc keeps after many
// connections closed back to the OS (malloc_trim), so a server whose
// connections come and go in waves does not stay at the size of its
// biggest wave. Runs on the signal thread (server.cpp), never on a worker:
// a trim walks every arena and takes its lock for a few milliseconds.
// Reads only the process-wide connection count; owns only its timer.
// Measured against doing nothing, malloc_trim on a timer, jemalloc and
// mimalloc: bench/RESULTS.md, "Returning freed memory".
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>

namespace herald::server {

// When to trim: the open connections fell to half of their peak since the
// last trim or lower, and by at least kMinDrop of them (a few hundred
// kilobytes or more to give back; below that a trim is not worth its
// locks). Then the peak starts again from the current count, so a long
// decline trims a few times (at 1/2, 1/4, ... of the peak), not every tick.
struct TrimTrigger {
  static constexpr size_t kMinDrop = 1000;
  size_t peak = 0;

  // The count now (called once a tick); true when a trim is due.
  bool update(size_t open);
};

// Returns free heap memory to the OS and logs what went (glibc: malloc_trim;
// elsewhere nothing). `open` and `peak`: the connection counts, for the log.
void trim_heap(size_t open, size_t peak);

class MemoryTrimmer {
 public:
  MemoryTrimmer(boost::asio::io_context& io, const std::atomic<size_t>& connections,
                std::chrono::milliseconds period = std::chrono::seconds(1));
  void start() { arm(); }

 private:
  void arm();

  boost::asio::steady_timer timer_;
  const std::atomic<size_t>& connections_;
  std::chrono::milliseconds period_;
  TrimTrigger trigger_;
};

}  // namespace herald::server
