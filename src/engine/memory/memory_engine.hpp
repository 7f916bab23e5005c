// Private to the memory engine and its tests: make_memory_engine() with an
// injectable clock, so age limits can be tested without sleeping.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "engine/engine.hpp"

namespace herald::engine {

// Milliseconds since the Unix epoch, like NewEvent::ts_ms.
using Clock = std::function<int64_t()>;

// As make_memory_engine(limits), but events' ages are measured against
// `now_ms()` instead of the system clock.
std::unique_ptr<Engine> make_memory_engine(const MemoryLimits& limits, Clock now_ms);

}  // namespace herald::engine
