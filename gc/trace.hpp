// gc/trace.hpp — USGC_TRACE=gc: one line per collection on stderr, in the spirit of Go's
// GODEBUG=gctrace=1. Formats (sizes in MiB with 3 decimals, times in ms):
//   usgc: gc P<n> @<s>s private[-minor] g<id> (<reason>): <before>-><after> MiB, <objects>
//         marked, pause <ms> ms (mark <ms>, sweep <ms>: <n> slots read, <n> by bitmap, large
//         <ms>, cycle <ms>: mark <ms>, terminate <ms>, sweep <ms> of <n> blocks, start <ms>)
//         [thread: cpu <ms>, run-queue wait <ms>, faults <minor>/<major>, switches
//         <voluntary>/<involuntary>, longest stretch <ms> of <n>]
//   (the bracket: the kernel's account of the collecting thread over the pause
//   (kernel_iface/thread_usage.hpp): a pause much longer than its cpu time waited for a CPU
//   (run-queue wait, involuntary switches) or blocked in the kernel (voluntary switches); the
//   longest stretch of the pause between two of its n checkpoints (gc/pause_probe.hpp): a slow
//   pause whose longest stretch is its excess lost that time in one piece, the thread not running;
//   the sweep's slots: the nursery's, read one by one or swept from the block's bitmap without
//   being read; a full collection reads every slot of every block; the cycle: the work of the
//   incremental old-generation cycle done inside this pause; the rest of the pause is the
//   retirement of the runs and the bookkeeping)
//   usgc: gc @<s>s private-incremental g<id>: <objects> marked, <MiB> freed, <MiB> old, work <ms>
//         in slices over <ms> (longest slice <ms>, <n> objects; longest sweep step <ms>, <n>
//         blocks)
//   usgc: gc @<s>s private-step g<id> (<where>): mark slice of <n> objects | sweep of <n>
//         blocks, pause <ms> ms [thread: ... as above]
//   (one step of an incremental old-generation cycle outside a collection: at a refill, a
//   refill's sweep for its class ("lazy"), or before parking ("idle"); each is a private pause)
//   usgc: gc S<n> @<s>s shared[-minor] g<id> (<reason>): <before>-><after> MiB, <goroutines>
//         goroutines, <objects> marked by <markers> markers, pause <ms> ms (start <ms>, end <ms>,
//         of which wake <ms>, resume <ms>), concurrent mark <ms>, ttsp <ms>, handoff <ms>,
//         rejoin <ms>, sweep <ms> ms
//   usgc: gc S<n> <start|end> stop (P kept|P given up) <ms> ms: <stretch> <ms>, ... resume <ms>;
//   longest <stretch>
//         (<verdict>); thread over <ms> ms from the request: cpu <ms>, run-queue wait <ms>, faults
//         <minor>/<major>, switches <voluntary>/<involuntary>; requester slept|spun, slot
//         kept|given up, <n> signal rounds; drained <n> objects (solo|<n> markers)
//   (a stop of a shared collection whose pause reached USGC_TRACE_PAUSE_US, 1 ms with only
//   USGC_TRACE=gc: its pause stretch by stretch, the stretches and the verdict of
//   gc/shared_pause_probe.hpp; "drained" only in the termination stop)
//   usgc: gc @<s>s pool: returned <n> free blocks' pages (<MiB> MiB) in <n> calls, <ms> ms;
//         <MiB> MiB committed, <n> of <n> free blocks resident
//   (a pass of the block pool's page return, on the runtime's scavenger thread, outside every
//   pause: gc/block.hpp; printed only when it returned something)
// The shared pause is the stopped world only (last acknowledgement -> resume) of the start and
// the termination stop, summed, as the stats block reports it. Of it, both stops summed: "wake",
// the OS running the collector again after the last acknowledgement, and "resume", the safepoint
// layer restarting the world (disarming the poll page, publishing the resume, waking the stopped
// threads: the resume instant is taken at the resume store, before any wake-up); the rest is
// the collector's own work in the stops. On a loaded machine wake and resume are where the world
// waits for a CPU. The mark runs between the stops with the world running; ttsp (request -> all
// stopped, the larger of the two) precedes a stop; handoff (the collector giving its P up before
// the request) and rejoin (taking a P back after the mark: before the termination stop when the
// collector keeps its P through the stops, USGC_SAFEPOINT_WAIT=spin; after it otherwise) are
// nobody's pause. "before" of a private collection is what its last collection left plus the runs
// taken since; of a shared one, the shared heap's live bytes after the last plus the bytes
// allocated since.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/shared_pause_probe.hpp"
#include "kernel_iface/thread_usage.hpp"

namespace usgc::gc {

struct PrivateTrace {
  uint64_t number = 0;
  uint64_t goroutine_id = 0;
  const char* reason = "";
  bool minor = false;
  size_t before_bytes = 0;
  size_t after_bytes = 0;
  size_t objects_marked = 0;
  uint64_t pause_ns = 0;
  uint64_t mark_ns = 0;             // roots, remembered_young and the drain
  uint64_t sweep_ns = 0;            // the nursery's runs (minor) or every block (full)
  uint64_t large_ns = 0;            // large objects
  uint64_t cycle_ns = 0;            // the old-generation cycle's work in this pause, of which:
  uint64_t cycle_mark_ns = 0;       //   the rest of its mark
  uint64_t cycle_terminate_ns = 0;  //   its termination (the logs; no block is read)
  uint64_t cycle_sweep_ns = 0;      //   sweep steps
  uint64_t cycle_start_ns = 0;      //   a new cycle's root scan
  size_t slots_swept = 0;           // nursery slots read
  size_t bitmap_swept_slots = 0;    // nursery slots swept from the bitmap (none read)
  size_t cycle_blocks_swept = 0;    // blocks the cycle released or swept
  kernel::ThreadUsage usage;        // what the kernel charged the thread with during the pause
  uint64_t longest_stretch_ns = 0;  // the longest stretch between checkpoints (gc/pause_probe.hpp)
  uint32_t checkpoints = 0;         // the stretches measured
};
void trace_private_collection(const PrivateTrace& trace);

// The end of an incremental old-generation cycle (gc/private_old_cycle.hpp): its mark slices and
// lazy sweeps were the goroutine's pauses (counted one by one); this line sums them.
// Also its longest mark slice (objects traced) and longest sweep step at a refill (blocks).
struct PrivateCycleTrace {
  uint64_t goroutine_id;
  size_t after_bytes;
  size_t objects_marked;
  size_t freed_bytes;
  uint64_t work_ns;
  uint64_t elapsed_ns;
  uint64_t longest_slice_ns;
  size_t longest_slice_objects;
  uint64_t longest_sweep_ns;
  uint32_t longest_sweep_blocks;
};
void trace_private_old_cycle(const PrivateCycleTrace& trace);

// A step of an old-generation cycle outside a collection (a mark slice or a sweep step at a
// refill, or before parking): a private pause of its own.
struct PrivateStepTrace {
  uint64_t goroutine_id = 0;
  const char* where = "";  // "refill", "lazy" (a refill's sweep for its class), "idle"
  bool slice = false;      // a mark slice (work: objects traced), else a sweep step (blocks)
  size_t work = 0;
  uint64_t pause_ns = 0;
  kernel::ThreadUsage usage;
  uint64_t longest_stretch_ns = 0;  // as in PrivateTrace
  uint32_t checkpoints = 0;
};
void trace_private_step(const PrivateStepTrace& trace);

struct SharedTrace {
  uint64_t number;
  uint64_t goroutine_id;
  const char* reason;
  bool minor;
  size_t before_bytes;
  size_t after_bytes;
  uint64_t pause_ns;
  uint64_t time_to_safepoint_ns;
  uint64_t handoff_ns;      // collect call -> stop request (giving the P up, the operation lock)
  uint64_t start_pause_ns;  // the start stop (shades the global roots)
  uint64_t wake_ns;         // of the pause: the requester's wake-up after each stop, summed
  uint64_t resume_ns;       // of the pause: inside start_the_world, both stops summed
  uint64_t end_pause_ns;    // the termination stop (drains what mutators shaded last)
  uint64_t mark_ns;         // the concurrent mark, between the two stops
  uint64_t rejoin_ns;       // the collector taking a P back after the mark (outside the pause)
  uint64_t sweep_ns;
  size_t objects_marked;
  uint32_t markers;
  size_t goroutines;
};
void trace_shared_collection(const SharedTrace& trace);

// One stop of a shared collection, stretch by stretch (gc/shared_pause_probe.hpp).
struct SharedStopTrace {
  uint64_t number = 0;     // the collection's cycle (as SharedTrace)
  const char* which = "";  // "start" or "end" (USGC_GC_CONCURRENT=0: "start", the only one)
  const StopProbe* probe = nullptr;
  bool kept_p = false;         // the collector kept its P through the stop (it spun, no wake-up)
  bool drained = false;        // the termination stop drained the grey objects:
  size_t drained_objects = 0;  //   how many
  uint32_t drain_markers = 0;  //   by how many markers (1: the collector alone)
};
void trace_shared_stop(const SharedStopTrace& trace);

struct PoolReturnTrace {
  uint32_t blocks;
  size_t bytes;
  uint32_t system_calls;
  uint64_t elapsed_ns;
  size_t committed_bytes;  // every node's, after the pass
  size_t free_blocks;
  size_t resident_free_blocks;
};
void trace_pool_return(const PoolReturnTrace& trace);

}  // namespace usgc::gc
