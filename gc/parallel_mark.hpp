// gc/parallel_mark.hpp — the shared collection's marking: one marker per P, work stealing.
//
// Marker 0 is the collecting thread; markers 1..N-1 are threads of their own (started by
// gc_initialize, parked on a futex between jobs). A job names a root source: every marker that
// takes part calls it until it returns false, each call claiming and marking one batch of roots
// through a RootVisitor (the concurrent source, gc/concurrent_mark.hpp, claims goroutines a batch
// at a time and scans their roots, then takes what mutators shaded). Roots are claimed, never
// assigned by marker index: a marker that starts late or not at all owns nothing that the others
// would have to wait for. Marking is the shared mark bit of the object's slot (atomic OR: each
// object is pushed by exactly one marker). A marker keeps a private stack and spills half of it
// to its public stack when it grows or when someone is idle; an idle marker takes from its own
// public stack, then steals half of another's — a marker on its own NUMA node first, other
// nodes' markers last. Helpers JOIN a job when the kernel runs them, and termination counts the
// joined markers only (gc/mark_job.hpp: the job word, its state table and the argument): a
// helper the kernel has not run by the time the others are idle finds the job over and does
// nothing. Idle markers spin briefly, then sleep. Jobs run with the world running (the
// concurrent phase: fields are read with relaxed atomic loads, the deletion barrier keeps what
// they miss) or stopped (the termination's drain, the whole mark with USGC_GC_CONCURRENT=0).
// Traced: shared and global objects only. A goroutine contributes its roots, the fields of its
// young private objects and of its remembered old ones, and the objects it published while old
// (gc/private_generations.hpp); private objects are never marked nor followed. STACK_LOCAL
// objects are never marked (their arena is scanned as a root of its goroutine). A shared object
// is marked with its slot's bit.
//
// Full marks start from clear bitmaps. Minor marks (generational, sticky mark bits) keep them: a
// set bit is an old object (alive at the last collection, or published since), which is neither
// marked again nor traced; the old-to-young references are found through the dirty cards, whose
// old objects are traced (cards are cleared as they are scanned). Every marker scans cards: the
// table is cut into units of consecutive blocks claimed one at a time (parallel_mark.cpp). Young =
// shared objects allocated since the last collection (allocation leaves the bit clear outside a
// mark).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/block.hpp"
#include "gc/mutator.hpp"
#include "gc/object_header.hpp"

namespace usgc::gc {

int parallel_mark_initialize(uint32_t marker_count);
void parallel_mark_shutdown();

struct MarkResult {
  size_t objects_marked = 0;
  uint32_t markers = 0;  // markers that joined the job (marker 0 included)
};
enum class MarkKind : uint8_t { kFull, kMinor };

// Marks a shared or global object: true when this call set its bit (the caller then queues it).
// Stack-local objects (arena blocks) and private objects (in a goroutine's block, by header)
// are never marked.
inline bool try_mark_shared(void* object) {
  Block* block = block_of(object);
  if (block->kind == BlockKind::kArena) return false;
  // Relaxed: a goroutine's exit may hand this block to the shared heap (owner -> 0) while we
  // read; either id gives the same answer (its private objects were freed before the hand-over).
  if (__atomic_load_n(&block->owner_heap_id, __ATOMIC_RELAXED) != 0) {
    uint64_t header = __atomic_load_n(header_address(object), __ATOMIC_RELAXED);
    if (!is_shared_class(header)) return false;
  }
  return block->set_shared_mark(block->slot_index_of(static_cast<char*>(object) - kHeaderBytes));
}

// What a root source marks through.
class RootVisitor {
 public:
  virtual void visit(void* object) = 0;        // an object pointer: mark it, queue it if new
  virtual void push_marked(void* object) = 0;  // already marked by someone else: trace it
 protected:
  ~RootVisitor() = default;
};
// Called by every joined marker until it returns false; claims and marks one batch of roots
// (any marker may take any batch).
using RootSource = bool (*)(RootVisitor& visitor);

// Marks everything reachable from what `source` hands out (minor: what is young and reachable,
// and with `scan_cards` the old objects on dirty cards). A full mark expects cleared bitmaps.
// At most `max_markers` markers take part (kAllMarkers: every marker; 1: marker 0 alone, a small
// job in a stopped world, where waking the helper threads would cost more than the work). Returns
// once every joined marker is idle; helpers that did not join are not waited for.
inline constexpr uint32_t kAllMarkers = 0;
MarkResult mark_shared_heap(RootSource source, MarkKind kind, bool scan_cards,
                            uint32_t max_markers = kAllMarkers);
// Tests only (set while no collection runs): called by a helper woken for job `job`, before it
// tries to join it; a test may park the helper here to show the job does not wait for it.
using MarkerTestHook = void (*)(uint32_t marker_index, uint32_t job);
extern std::atomic<MarkerTestHook> g_marker_test_hook;
// Helper joins since the start (relaxed counter; tests).
uint64_t helper_joins();

// Minor marks cut the card table into units of this many consecutive blocks of a chunk (the
// large objects are one more unit); each unit is scanned by one marker.
inline constexpr uint32_t kCardUnitBlocks = 16;

// What the last job that scanned cards did (tests; the collection lock's holder reads it after
// mark_shared_heap returned): dirty cards found and cleared, units claimed, units the table had.
struct CardScanCounts {
  uint64_t cards = 0;
  uint64_t units = 0;
  uint64_t units_expected = 0;
  uint32_t markers = 0;
};
CardScanCounts last_card_scan();

}  // namespace usgc::gc
