// gc/shared_pause_probe.hpp — where a long shared pause lost its time (USGC_TRACE_PAUSE_US, and
// USGC_TRACE=gc with a 1 ms threshold unless USGC_TRACE_PAUSE_US says otherwise).
//
// A shared collection stops the world twice (gc/shared_collector.cpp): each stop's pause runs
// from the last P's acknowledgement to the resume store. Inside it the collector passes a few
// checkpoints — its return from stop_the_world ("wake": it noticed the last acknowledgement),
// the end of each step of its work in the stop, the start of the resume — and reads the
// monotonic clock (vDSO, tens of nanoseconds) at each: always on, nothing a pause can see. A stop
// whose pause reaches the threshold is printed stretch by stretch (gc/trace.hpp), with the
// kernel's account of the collector's thread (kernel_iface/thread_usage.hpp) over the stop's
// window: read just before the stop is requested and just after the world resumed, outside the
// pause (four to six system calls each, made only while the threshold is set). The verdict sorts
// the longest stretch by that account:
//   run-queue  the thread waited for a CPU: run-queue wait of at least half the stretch, or an
//              involuntary switch (another thread on the collector's CPU);
//   slept      the thread blocked in the kernel (a voluntary switch) and the window's time off
//              the CPU covers half the stretch (a requester that sleeps while the Ps arrive,
//              USGC_SAFEPOINT_WAIT=sleep or a loaded machine, also sleeps before the pause);
//   on-cpu     neither, and the window's time off the CPU is under half the stretch: the kernel
//              charged the thread with the stretch as CPU time. Its own work when the stretch
//              does much (a drain of many objects), else the virtual CPU was not running: the
//              hypervisor (a VM that reports no steal time, as /proc/stat's steal column shows)
//              or interrupts (bench/cpu_hiccups.cpp measures how often that happens to a thread
//              that only reads the clock);
//   off-cpu    off the CPU for the stretch with no switch counted (rare: the counters' races).
// With the account comes how the requester waited for the Ps (safepoint's breakdown of the stop):
// "slept" (the last acknowledgement had to wake it: a long "wake" is that wake-up's latency) or
// "spun" (it kept its CPU, yielding it between looks after its pure spin: a long "wake" is the
// CPU it gave away, or lost, coming back late), and whether it kept its slot.
//
// Owner only: a SharedPauseProbe lives on the collector's stack for one collection (one at a
// time: the collection lock); nobody else reads it.
#pragma once

#include <cstdint>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/thread_usage.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::gc {

struct StopProbe {
  static constexpr uint32_t kMaxStretches = 12;
  uint64_t stopped_ns = 0;                    // the last acknowledgement (the pause starts)
  uint64_t resumed_ns = 0;                    // the resume store (the pause ends)
  uint64_t at_ns[kMaxStretches] = {};         // the end of each stretch but the last (resume)
  const char* names[kMaxStretches + 1] = {};  // the last: "resume", up to resumed_ns
  uint32_t count = 0;                         // stretches stamped (resume not counted)
  // The thread's account over the window [window_begin_ns, window_end_ns] (the request to just
  // after the resume), read only when the threshold is set (usage_read).
  bool usage_read = false;
  uint64_t window_begin_ns = 0;
  uint64_t window_end_ns = 0;
  kernel::ThreadUsage usage_before;
  kernel::ThreadUsage usage;  // after - before
  // How the requester waited for the Ps (safepoint::stop_breakdown_last, read with the account):
  // whether it slept (a wake-up stood between the last acknowledgement and the pause's work) or
  // spun on its CPU (yielding it between looks after a pure spin), whether it kept its slot.
  safepoint::StopBreakdown breakdown{};
};

// A step of the stop's work ended (or the collector noticed the stop: "wake").
inline void stop_probe_stretch(StopProbe& probe, const char* name) {
  if (probe.count == StopProbe::kMaxStretches) return;
  probe.at_ns[probe.count] = kernel::monotonic_ns();
  probe.names[probe.count++] = name;
}

// Before the stop's request: the window opens (the kernel's account only when `read_usage`).
inline void stop_probe_open(StopProbe& probe, bool read_usage) {
  if (!read_usage) return;
  probe.window_begin_ns = kernel::monotonic_ns();
  kernel::Result<kernel::ThreadUsage> usage = kernel::read_thread_usage();
  probe.usage_read = usage.ok();
  if (probe.usage_read) probe.usage_before = usage.value();
}

// After the resume: the window closes.
inline void stop_probe_close(StopProbe& probe) {
  if (!probe.usage_read) return;
  kernel::Result<kernel::ThreadUsage> usage = kernel::read_thread_usage();
  probe.window_end_ns = kernel::monotonic_ns();
  if (!usage.ok()) {
    probe.usage_read = false;
    return;
  }
  probe.usage = kernel::thread_usage_delta(probe.usage_before, usage.value());
  // The last request's (ours unless another requester stopped the world since our resume: only
  // a trace's detail then).
  probe.breakdown = safepoint::stop_breakdown_last();
}

inline uint64_t stop_probe_pause_ns(const StopProbe& probe) {
  return probe.resumed_ns > probe.stopped_ns ? probe.resumed_ns - probe.stopped_ns : 0;
}

// Stretch i (0 .. count; count is the resume): its length.
inline uint64_t stop_probe_stretch_ns(const StopProbe& probe, uint32_t i) {
  uint64_t begin = i == 0 ? probe.stopped_ns : probe.at_ns[i - 1];
  uint64_t end = i == probe.count ? probe.resumed_ns : probe.at_ns[i];
  return end > begin ? end - begin : 0;
}

// The longest stretch's index (0 .. count).
inline uint32_t stop_probe_longest(const StopProbe& probe) {
  uint32_t longest = 0;
  for (uint32_t i = 1; i <= probe.count; ++i)
    if (stop_probe_stretch_ns(probe, i) > stop_probe_stretch_ns(probe, longest)) longest = i;
  return longest;
}

// The file comment's verdict on the longest stretch; "" without the kernel's account.
inline const char* stop_probe_verdict(const StopProbe& probe) {
  if (!probe.usage_read) return "";
  const uint64_t half = stop_probe_stretch_ns(probe, stop_probe_longest(probe)) / 2;
  const uint64_t window = probe.window_end_ns - probe.window_begin_ns;
  const uint64_t off_cpu = window > probe.usage.cpu_ns ? window - probe.usage.cpu_ns : 0;
  if (probe.usage.run_queue_wait_ns >= half || probe.usage.involuntary_switches != 0)
    return "run-queue";
  if (off_cpu < half) return "on-cpu";
  if (probe.usage.voluntary_switches != 0) return "slept";
  return "off-cpu";
}

}  // namespace usgc::gc
