// safepoint/wasm32/stop_the_world_wasm32.cpp — the stop-the-world protocol of
// safepoint/stop_the_world.hpp on the WebAssembly target (wasm32-wasi, built only by
// tools/build-wasm-runtime.sh).
//
// The WebAssembly runtime has one P and one thread; goroutines are coroutines that switch only
// where one blocks on a channel or ends (docs/wasm.md), so every goroutine but the running one is
// parked with its roots in its shadow-stack frames, and the running one is in a runtime call —
// a safepoint. The world is therefore always stopped for whoever asks:
//   stop_the_world   succeeds at once (procs 1, time to safepoint 0); a nested stop is EDEADLK,
//                    as natively;
//   start_the_world  ends it (EPERM when none is held);
//   current_slot     the one P's slot (index 0: the shared heap's per-P cache), Running, never
//                    asked to stop (its epochs stay equal), so safepoint_requested is false;
//                    lowered code polls the flag word usgc_poll_slot.poll_flag instead of a
//                    page, and the WebAssembly runtime arms it itself;
//   reach_safepoint  returns false (nothing is ever pending for the slot);
//   requester_may_keep_slot  false: with one P nobody is waited for, and the collector keeps
//                    the sequence it had (keep_slot is ignored);
//   stop_work_needs_cpus  nothing: nobody spins for a resume;
//   stop_breakdown_last  nothing waited for: all zero (the collector's pause probe reads it,
//                    gc/shared_pause_probe.hpp).
// State: g_the_p and g_stopped, written and read by the only thread. Hot path: none.
#include <cerrno>

#include "kernel_iface/clock.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::safepoint {
namespace {
SafepointSlot g_the_p;  // index 0
bool g_stopped = false;
uint64_t g_stops = 0;
}  // namespace

SafepointSlot* current_slot() {
  return &g_the_p;
}

bool reach_safepoint(SafepointSlot* slot, bool allow_preemption) {
  (void)slot;
  (void)allow_preemption;
  return false;
}

bool requester_may_keep_slot() {
  return false;
}

int stop_the_world(usgc_stop_info* info, uint64_t* world_stopped_at_ns, bool keep_slot) {
  (void)keep_slot;
  if (g_stopped) return EDEADLK;
  g_stopped = true;
  ++g_stops;
  if (info != nullptr) *info = usgc_stop_info{0, 0, 1, 0};
  if (world_stopped_at_ns != nullptr) *world_stopped_at_ns = kernel::monotonic_ns();
  return 0;
}

int start_the_world(uint64_t* world_resumed_at_ns) {
  if (!g_stopped) return EPERM;
  g_stopped = false;
  if (world_resumed_at_ns != nullptr) *world_resumed_at_ns = kernel::monotonic_ns();
  return 0;
}

void stop_work_needs_cpus(uint32_t) {}

StopBreakdown stop_breakdown_last() {
  return StopBreakdown{};
}

// As safepoint/stop_the_world.cpp: 0 below 1 us, i for [2^(i-1), 2^i) us, 19 above.
uint32_t histogram_bucket_of(uint64_t duration_ns) {
  uint64_t us = duration_ns / 1000;
  if (us == 0) return 0;
  uint32_t bucket = 64 - static_cast<uint32_t>(__builtin_clzll(us));
  return bucket > 19 ? 19 : bucket;
}

}  // namespace usgc::safepoint
