// Small helpers every engine needs: event timestamps and new epoch names.
#pragma once

#include <cstdint>
#include <string>

namespace herald::engine {

// Milliseconds since the Unix epoch (event `ts`, age limits).
int64_t system_now_ms();

// A new epoch name: 8 base36 characters (~41 bits) from the system's random
// source.
std::string random_epoch();

}  // namespace herald::engine
