// kernel_iface/thread_usage.hpp — what the kernel says the calling thread has been charged with:
// its CPU time, the time it spent runnable but waiting for a CPU, its page faults and its
// context switches. Read twice around an interval, the differences say whether a slow interval
// was the thread's own work (CPU time close to the wall time), a wait for a CPU (run-queue wait:
// preemption by other threads, or a real-time thread throttled by kernel.sched_rt_runtime_us),
// page faults (minor: first touch or a reclaimed page; major: I/O) or a block in the kernel
// (voluntary switches: a lock such as the address-space lock, I/O).
//
// Sources: clock_gettime(CLOCK_THREAD_CPUTIME_ID) (nanoseconds), getrusage(RUSAGE_THREAD) (the
// counts), /proc/thread-self/schedstat (run-queue wait in nanoseconds; zero where the kernel has
// no schedstat). Four to six system calls: for tracing only (USGC_TRACE=gc), never on a hot
// path. No allocation. On wasm32 every figure is zero.
#pragma once

#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

struct ThreadUsage {
  uint64_t cpu_ns = 0;             // CPU time of the thread, user and system
  uint64_t run_queue_wait_ns = 0;  // runnable but not running (schedstat's second field)
  uint64_t minor_faults = 0;
  uint64_t major_faults = 0;
  uint64_t voluntary_switches = 0;    // the thread blocked
  uint64_t involuntary_switches = 0;  // the thread was preempted
};

// The calling thread's figures so far. An error only if getrusage or the clock fails (the
// schedstat file is optional: run_queue_wait_ns stays 0 without it).
Result<ThreadUsage> read_thread_usage();

// after - before, field by field (0 where a counter went backwards).
ThreadUsage thread_usage_delta(const ThreadUsage& before, const ThreadUsage& after);

}  // namespace usgc::kernel
