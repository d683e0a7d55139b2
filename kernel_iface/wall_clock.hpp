// kernel_iface/wall_clock.hpp — clocks whose readings mean the same thing in another process:
// CLOCK_REALTIME (for people: "updated at", "started at") and CLOCK_BOOTTIME (to turn a
// process's start time in clock ticks since boot into a wall-clock time). Both read the vDSO;
// neither allocates. (clock.hpp holds the monotonic clocks used for deadlines.)
#pragma once

#include <time.h>

#include <cstdint>

namespace usgc::kernel {

// Nanoseconds since the Unix epoch.
inline uint64_t realtime_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Nanoseconds since boot, suspend included (the clock of /proc/<pid>/stat's start time).
inline uint64_t boottime_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace usgc::kernel
