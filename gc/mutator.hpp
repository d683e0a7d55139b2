// gc/mutator.hpp — a goroutine's GC state: its private heap, stack arena, shadow stack, handles.
//
// One Mutator per goroutine, embedded in the runtime's goroutine record. Its first member is the
// usgc_mutator ABI record (usgc/object.h) that the inline fast paths reach through the
// usgc_current_mutator TLS pointer; the runtime points it at the running goroutine's record on
// every switch (gc::set_current_mutator), so "the P's TLAB" is the running goroutine's runs and
// a goroutine's private objects stay in its own blocks whatever P runs it.
//
// Who touches what:
//   everything below    the owning goroutine only, while it runs (no locks), and the shared
//                       collector while the world is stopped (then the owner is stopped too);
//   registry links      under the registry lock (gc/mutator.cpp);
//   root_scan_state     atomic (gc/concurrent_mark.hpp). While a shared mark runs, a marker may
//                       scan the fields above of a goroutine that is not running; the goroutine
//                       does not run again before that scan is finished.
// The private-heap invariant (usgc/object.h, docs/gc.md) is what lets the owner collect all this
// alone: nothing outside it refers to an object it owns.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/block.hpp"
#include "gc/mark_stack.hpp"
#include "gc/pause_probe.hpp"
#include "gc/size_classes.hpp"
#include "usgc/object.h"

namespace usgc::gc {

// Local handles: slots of a growable array; a free slot holds the next free index (tagged odd).
struct HandleTable {
  void** slots = nullptr;
  uint32_t capacity = 0;
  uint32_t used = 0;       // slots handed out at least once (high-water mark)
  uint32_t free_head = 0;  // 1 + index of the first free slot, 0 = none
};

struct Mutator {
  usgc_mutator abi;  // must stay first: usgc_current_mutator points here

  uint64_t goroutine_id = 0;
  // Private blocks per class (next_in_heap), those with free runs (next_partial), and the block
  // whose run abi.runs[c] is (current, not on the partial list).
  Block* blocks[kSizeClassCount] = {};
  Block* partial[kSizeClassCount] = {};
  Block* current[kSizeClassCount] = {};
  size_t small_blocks = 0;  // blocks on blocks[c] and unswept[c], every class (pacing; owner only)
  char* run_begin[kSizeClassCount] = {};  // where abi.runs[c] started: its used part is begin..next
  Block* large_objects = nullptr;         // private large objects (next_in_heap)
  Block* arena = nullptr;                 // the stack arena block (STACK_LOCAL objects), lazily

  // Private collection pacing (USGC_GC_PERCENT; gc/private_generations.hpp).
  size_t bytes_since_collection = 0;  // bytes of runs and large objects taken since the last one:
                                      // the nursery in use
  size_t live_bytes_after_collection = 0;  // old bytes after the last collection
  size_t collection_budget_bytes = 0;      // the nursery: a minor collection when it is used
  size_t old_bytes_after_full = 0;         // old bytes after the last full private collection
  size_t full_budget_bytes = 0;            // a full one when the old bytes grew by this much
  bool collecting = false;

  // Generations (gc/private_generations.hpp). Read by shared markers in the stopped world.
  // Every run taken since the last private collection: begin, end of the objects made in it
  // (the run's end until it is retired: young_run_used_entry), end of the run.
  MarkStack young_runs;
  // Owner only: 1 + the index in young_runs of the objects' end of the run being bumped in class
  // c (set when the run is retired), 0 for none.
  size_t young_run_used_entry[kSizeClassCount] = {};
  Block* young_large = nullptr;  // large private objects allocated since then (next_in_heap)
  MarkStack remembered_young;    // old objects given a young private reference (barrier slow path)
  MarkStack remembered_shared;   // old objects that may hold a shared reference
  MarkStack published_old;       // objects published while old, until the next full collection

  // The incremental old-generation cycle (gc/private_old_cycle.hpp): owner only; shared markers
  // never read these (a private mark bit means nothing to them).
  uint8_t old_cycle_phase = 0;            // OldCyclePhase
  MarkStack old_grey;                     // marked old objects whose fields are not traced yet
  MarkStack old_traced_shared;            // traced old objects that refer to a shared object
  size_t remembered_shared_at_start = 0;  // remembered_shared entries before the mark began
  size_t published_old_at_start = 0;      // published_old entries before the mark began
  Block* unswept[kSizeClassCount] = {};   // blocks the cycle's sweep has not reached (next_in_heap)
  size_t unswept_blocks = 0;              // their number (pacing: the sweep ends on empty lists)
  Block* unswept_large = nullptr;         // large objects the cycle's sweep has not reached
  size_t old_cycle_marked = 0;            // objects marked by the cycle so far
  size_t old_cycle_expected_objects = 0;  // its estimate at the start (pacing)
  size_t old_cycle_freed_bytes = 0;       // private bytes its sweep freed so far
  uint64_t old_cycle_start_ns = 0;
  uint64_t old_cycle_work_ns = 0;  // time in its slices and sweeps so far
  // The most work one pause did (owner only; high-water marks that tests reset before measuring):
  // the nursery a minor collection swept, the cycle's blocks swept inside a collection.
  size_t largest_nursery_bytes = 0;
  size_t most_cycle_blocks_in_collection = 0;
  uint64_t old_cycle_longest_slice_ns = 0;  // its longest mark slice (USGC_TRACE=gc)
  size_t old_cycle_longest_slice_objects = 0;
  uint64_t old_cycle_longest_sweep_ns = 0;  // its longest sweep step at a refill
  uint32_t old_cycle_longest_sweep_blocks = 0;
  // With USGC_TRACE=gc, the stretches of the pause in progress or the last one (owner only).
  PauseProbe pause_probe;
  // Owner only: set for the length of a bounded private pause (a minor collection, a cycle step)
  // whose polls serve stop-the-world requests but not a preemption request: that one is served
  // right after the pause (the preemption-deferral rule, poll_for_safepoint in
  // gc/private_collector.cpp); preemption_deferred says a poll of the pause left one pending.
  bool pause_defers_preemption = false;
  bool preemption_deferred = false;
  uint64_t run_bytes_taken = 0;        // bytes of runs ever taken (monotonic; pacing)
  uint64_t old_cycle_start_bytes = 0;  // run_bytes_taken when the cycle's mark began
  // The pacer (gc/private_pacer.hpp) and the bitmap sweep; owner only, like the fields above.
  uint32_t old_cycle_epoch = 0;              // tags Block::cycle_marked_slots of the running cycle
  size_t old_cycle_marked_bytes = 0;         // bytes the cycle's trace marked (the next `marked`)
  size_t old_cycle_start_old_bytes = 0;      // the old generation when the cycle began
  size_t sweep_blocks_total = 0;             // unswept blocks when the mark ended
  size_t sweep_blocks_done = 0;              // of those, released or swept so far
  uint64_t sweep_start_bytes = 0;            // run_bytes_taken when the mark ended
  uint32_t pacer_promotion_permille = 1000;  // old growth per allocated byte while marking

  HandleTable handles;
  void* start_object = nullptr;  // usgc_go_object's argument: a root for the goroutine's life
  MarkStack mark_stack;          // private marking and publication worklist

  // Asynchronous safepoints (safepoint/async_safepoint.hpp): while the goroutine's code is
  // stopped, preempted or blocked without its P at one, [conservative_low, stack_top) holds its
  // interrupted registers and unrooted stack slots, which shared collections scan conservatively
  // (gc/conservative_roots.hpp); 0 otherwise. Written by the goroutine itself (release, before it
  // acknowledges a stop or gives its P up), read by shared markers in the stopped world (acquire).
  std::atomic<uintptr_t> conservative_low{0};
  // The highest address of the goroutine's stack (its thread's, for an attached thread), set by
  // the runtime before the goroutine runs; 0 = unknown (nothing is scanned conservatively).
  uintptr_t stack_top = 0;

  // Concurrent shared marking (gc/concurrent_mark.hpp): 2 * epoch once this goroutine's roots
  // were scanned in the mark of that epoch, 2 * epoch + 1 while someone scans them. Written by
  // the scanner that claimed it (CAS), read by the switch to this goroutine and the markers.
  std::atomic<uint32_t> root_scan_state{0};

  Mutator* registry_previous = nullptr;
  Mutator* registry_next = nullptr;
  bool registered = false;
};
static_assert(offsetof(Mutator, abi) == 0, "usgc_current_mutator points at the ABI record");

inline Mutator* mutator_of(usgc_mutator* abi) {
  return reinterpret_cast<Mutator*>(abi);
}

// The record of threads that run no goroutine (gc/mutator.cpp): heap id UINT64_MAX.
extern usgc_mutator g_no_goroutine_mutator;
// The running goroutine's Mutator, or nullptr on a thread that runs none.
inline Mutator* current_mutator() {
  usgc_mutator* abi = usgc_current_mutator;
  return abi == &g_no_goroutine_mutator ? nullptr : mutator_of(abi);
}
// The runtime, on every switch to a goroutine (nullptr: the thread runs none).
void set_current_mutator(Mutator* mutator);

// Spawn: gives the goroutine a heap id and makes it known to shared collections (its start
// object is a root from now on). Exit: frees its private objects, passes its blocks to the
// shared heap, and forgets it. Both take the registry lock.
void mutator_register(Mutator* mutator, uint64_t goroutine_id, void* start_object);
void mutator_unregister(Mutator* mutator);

// The registry, for the shared collector (which holds the lock across the stopped world).
void lock_mutator_registry();
void unlock_mutator_registry();
Mutator* first_registered_mutator();
uint64_t registered_mutator_count();

}  // namespace usgc::gc
