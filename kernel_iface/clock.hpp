// kernel_iface/clock.hpp — the clocks usgc reads. All read the vDSO (no system call on Linux
// x86-64); none allocates.
//   monotonic_ns / coarse_monotonic_ms : deadlines and durations inside this process (the decay
//                                        uses the coarse one, the cheapest read);
//   realtime_ns                        : times a person or another process reads ("updated at");
//   boottime_ns                        : the clock of /proc/<pid>/stat's start time;
//   cycle_counter                      : the TSC, to skip clock reads that cannot see a change.
#pragma once

#include <time.h>

#include <cerrno>
#include <cstdint>

namespace usgc::kernel {

inline uint64_t nanoseconds_of(clockid_t clock) {
  timespec ts;
  ::clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t monotonic_ns() {
  return nanoseconds_of(CLOCK_MONOTONIC);
}

// Milliseconds on CLOCK_MONOTONIC_COARSE (jiffy resolution): for decay deadlines.
inline uint64_t coarse_monotonic_ms() {
#if defined(__wasi__)  // WASI has no coarse clock: the monotonic one
  return nanoseconds_of(CLOCK_MONOTONIC) / 1000000u;
#else
  return nanoseconds_of(CLOCK_MONOTONIC_COARSE) / 1000000u;
#endif
}

// The CPU's time-stamp counter (rdtsc: one unprivileged instruction, no vDSO call), only to ask
// "has enough time passed to look at a clock again?": its rate is not known here and may differ
// between CPUs (a caller treats a counter that went back as "yes"). 0 where there is none (wasm32,
// other architectures): read the clock then.
[[gnu::always_inline]] inline uint64_t cycle_counter() {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return 0;
#endif
}

// Nanoseconds since the Unix epoch.
inline uint64_t realtime_ns() {
  return nanoseconds_of(CLOCK_REALTIME);
}

// Nanoseconds since boot, suspend included.
inline uint64_t boottime_ns() {
#if defined(__wasi__)  // WASI has no boot clock: the monotonic one (no suspend inside wasm)
  return nanoseconds_of(CLOCK_MONOTONIC);
#else
  return nanoseconds_of(CLOCK_BOOTTIME);
#endif
}

}  // namespace usgc::kernel

namespace usgc::kernel {

// Sleeps the calling OS thread for at least ns nanoseconds (clock_nanosleep, restarted after
// signals).
inline void sleep_for_ns(uint64_t ns) {
  struct timespec remaining;
  remaining.tv_sec = static_cast<time_t>(ns / 1000000000u);
  remaining.tv_nsec = static_cast<long>(ns % 1000000000u);
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &remaining, &remaining) == EINTR) {
  }
}

}  // namespace usgc::kernel
