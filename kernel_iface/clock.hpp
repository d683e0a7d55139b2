// kernel_iface/clock.hpp — monotonic clocks for decay deadlines and statistics.
// Both read the vDSO (no system call on Linux x86-64); neither allocates.
#pragma once

#include <time.h>

#include <cstdint>

namespace usgc::kernel {

// Nanoseconds on CLOCK_MONOTONIC.
inline uint64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Milliseconds on CLOCK_MONOTONIC_COARSE (jiffy resolution, cheapest read): for decay deadlines.
inline uint64_t coarse_monotonic_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

}  // namespace usgc::kernel
