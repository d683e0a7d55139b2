// gc/pause_probe.hpp — where a slow private pause lost its time (USGC_TRACE=gc only).
//
// A private pause is bounded work cut into small units: marking polls every 1024 objects, the
// sweeps poll between blocks and runs, the bitmap sweep passes a checkpoint per run — a few
// microseconds of work each. With USGC_TRACE=gc the pause reads the clock at each of these
// checkpoints and keeps the longest stretch between two of them (its start and end included)
// and their number. A pause that is long because its work is slow (more objects, cache or TLB
// misses everywhere) has short stretches; one whose longest stretch is about its excess over the
// usual time lost that time in one piece, inside one unit of work that takes microseconds
// otherwise: the thread did not run. With no switch, no run-queue wait and no fault in the
// kernel's account of the pause (kernel_iface/thread_usage.hpp), that was below the kernel (the
// hypervisor descheduled the virtual CPU); with them, the kernel's own doing.
//
// Not on a hot path: a checkpoint is one predictable branch without tracing, and there is one
// per ~1024 objects of marking. Owner only: Mutator::pause_probe is written and read by the
// goroutine that collects, inside its own pause; nobody else reads it.
#pragma once

#include <cstdint>

#include "kernel_iface/clock.hpp"

namespace usgc::gc {

struct PauseProbe {
  bool active = false;       // between pause_probe_begin and pause_probe_end
  uint64_t last_ns = 0;      // the last checkpoint (or the start)
  uint64_t longest_ns = 0;   // the longest stretch between two checkpoints so far
  uint32_t checkpoints = 0;  // stretches measured (checkpoints passed, the end included)
};

// Starts measuring a pause that began at start_ns. False (and nothing changes) when a pause is
// being measured already: the outer one keeps measuring, and only it may end.
inline bool pause_probe_begin(PauseProbe& probe, uint64_t start_ns) {
  if (probe.active) return false;
  probe.active = true;
  probe.last_ns = start_ns;
  probe.longest_ns = 0;
  probe.checkpoints = 0;
  return true;
}

inline void pause_probe_stretch(PauseProbe& probe, uint64_t now_ns) {
  uint64_t stretch = now_ns > probe.last_ns ? now_ns - probe.last_ns : 0;
  if (stretch > probe.longest_ns) probe.longest_ns = stretch;
  probe.last_ns = now_ns;
  ++probe.checkpoints;
}

// A unit of the pause's work is done.
inline void pause_probe_checkpoint(PauseProbe& probe) {
  if (!probe.active) [[likely]]
    return;
  pause_probe_stretch(probe, kernel::monotonic_ns());
}

// Time the pause did not spend on its own work (a stop of the world it acknowledged at a poll):
// no stretch spans it.
inline void pause_probe_skip(PauseProbe& probe) {
  if (probe.active) probe.last_ns = kernel::monotonic_ns();
}

// The pause ended at end_ns: its last stretch is measured, the probe stops; its figures stay
// readable until the next pause_probe_begin.
inline void pause_probe_end(PauseProbe& probe, uint64_t end_ns) {
  if (!probe.active) return;
  pause_probe_stretch(probe, end_ns);
  probe.active = false;
}

}  // namespace usgc::gc
