// gc/private_old_cycle.hpp — the incremental old-generation cycle of a private heap: the full
// private collection cut into bounded steps that run between the goroutine's own work, so no
// pause grows with the goroutine's live private data.
//
// Phases (Mutator::old_cycle_phase; only the owning goroutine reads or writes any of this):
//   idle      no cycle. The cycle never sets an old object's header mark: its marks are the
//             blocks' cycle bitmaps (Block::cycle_mark_bits, tagged with the cycle's epoch, so
//             a new cycle finds every bitmap stale, i.e. clear, without touching a block).
//   marking   started by a private collection that found the old generation past the pacer's
//             trigger (gc/private_pacer.hpp): it first runs the minor collection, so the nursery
//             is empty and every private object is old (the *snapshot*), then scans the roots and
//             marks what they hold in the bitmaps (grey: old_grey). Each run refill then marks a
//             bounded slice
//             (the pacer's assist); stores meanwhile keep the snapshot (below). The refill whose
//             slice empties the grey stack runs a minor collection at once, which ends the mark.
//   sweeping  entered at the end of that minor collection (nursery empty and every run retired,
//             so no block holds a run being bumped or an unswept nursery run): the remembered
//             sets are rebuilt from what was traced, the pacer told what was marked, and every
//             block and large object handed to the lazy sweep as it is (unswept[c],
//             unswept_large), none of them read: the termination's work is the logs and the
//             size classes, never the heap's blocks (it walked them all once, to sort out the
//             dead ones: 0.45 ms of one minor pause at binary-trees depth 20). Nothing is
//             allocated in an unswept block until it is swept (sweep_one), which decides it
//             then: a block in which the cycle marked nothing (Block::cycle_marked_slots of
//             this cycle's epoch: the bits set by every mark, shade and black promotion) and
//             that holds no object published in place (Block::holds_published) has no live
//             object — it becomes one dirty free run, its slots unread, kept by a refill of its
//             class or given back to the pool; one without a published object is swept from
//             the bitmap alone (sweep_block_by_bitmap: free runs are the clear bits, found a
//             word at a time; a dead object's bytes stay until its run is handed out, zeroed
//             in bulk then: dirty runs, gc/block.hpp); one with a published object slot by
//             slot (its headers say which objects are shared: the shared-liveness rule). A
//             refill of class c that finds no partial block sweeps unswept blocks of c until
//             one has free slots (lazily, as Go's mcentral; at most kLazySweepBlocks per
//             refill); every refill also sweeps its paced share of any class (proportional
//             sweep, large objects first), and each minor collection kSweepBlocksPerMinor
//             more. When no unswept block or large object is left the cycle ends.
//             A cycle due before then waits for it (the sweep steps go at their maximum
//             meanwhile: gc/private_pacer.hpp); no collection sweeps more than its share.
//
// Why the same-goroutine barrier fast path needs no change (snapshot at the beginning, Yuasa):
// an object reachable at the snapshot is reachable from a root or through fields of old objects,
// since the nursery is empty then. Roots are scanned in the step that starts the cycle (the
// goroutine does nothing else meanwhile). Every store into an old object already fails the
// inline barrier's one compare (its owner is the old id) and reaches usgc_write_slow, which
// shades the overwritten reference first (old_cycle_shade). Young objects — the only ones the
// fast path writes — did not exist at the snapshot, so overwriting their fields never cuts a
// snapshot path. So every object reachable at the snapshot is marked when old_grey is empty,
// without a re-scan. Objects made after the snapshot are not freed by the cycle: young ones are
// not its business (minor collections free them), and a minor collection promotes them with
// their bit set in the cycle's bitmap (black) while the cycle marks. The old marker never follows a
// reference into a young object: what a young object refers to was reachable at the snapshot
// (marked) or is new.
//
// Invariants the rest of the collector keeps: objects published meanwhile keep their bit (the
// block is then swept by its headers, and they are judged shared) and are skipped when popped;
// an unswept block gets no run, so it holds only old objects and free slots when swept;
// remembered_shared stays complete at
// every moment — the trace clears kRememberedShared of an object it finds holding no shared
// reference (a later store re-records it) and records one it finds holding one, and the
// termination keeps exactly what was traced or recorded since the start, while published_old
// keeps, past the termination, only what was published after the start (an old referrer traced
// before such a publication saw a private reference).
//
// Pacing (trigger, assists, sweep pace) is gc/private_pacer.hpp. Each slice and each sweep step
// is recorded as a private pause (usgc_gc_stats, the stats block's histogram). A goroutine about
// to wait on a wait group completes its cycle first (old_cycle_finish_before_waiting); one about
// to park on a channel or a select, or to sleep, does a bounded step of it
// (old_cycle_step_before_parking).
// Explicit full collections and the heap limit complete a running cycle at once, then collect in
// one pause as before. USGC_GC_INCREMENTAL=0 turns the cycle off (every full private collection
// is one pause, at the goal; for comparison).
#pragma once

#include <cstdint>

#include "gc/mutator.hpp"
#include "gc/object_header.hpp"
#include "gc/private_sweep.hpp"
#include "gc/roots.hpp"

namespace usgc::gc {

enum class OldCyclePhase : uint8_t { kIdle = 0, kMarking = 1, kSweeping = 2 };

// The blocks of the cycle's sweep a private collection releases or sweeps (its pause's share).
inline constexpr uint32_t kSweepBlocksPerMinor = 8;

inline OldCyclePhase old_cycle_phase(const Mutator& m) {
  return static_cast<OldCyclePhase>(m.old_cycle_phase);
}
inline bool old_cycle_active(const Mutator& m) {
  return m.old_cycle_phase != static_cast<uint8_t>(OldCyclePhase::kIdle);
}

// Marks an old private object of m that the cycle has not marked, and queues it (grey). The
// objects and bytes marked are the pacer's next base (gc/private_pacer.hpp).
inline void old_cycle_grey(Mutator& m, uint64_t old_id, void* object) {
  const uint64_t header = header_of(object);
  if (class_of(header) != Ownership::kPrivate || owner_of(header) != old_id) return;
  Block* b = block_of(object);
  if (!set_cycle_mark(m, b, cycle_mark_index(b, object))) return;
  ++m.old_cycle_marked;
  m.old_cycle_marked_bytes += b->kind == BlockKind::kLarge ? b->mapping_bytes : b->slot_bytes;
  m.old_grey.push(object);
}

// The deletion barrier: called by the barrier's slow path with the reference a store into an old
// private object of m is about to overwrite. Marks it grey if it is an unmarked old object of m.
inline void old_cycle_shade(Mutator& m, void* overwritten) {
  if (m.old_cycle_phase != static_cast<uint8_t>(OldCyclePhase::kMarking)) return;
  if (!is_object_pointer(overwritten)) return;
  old_cycle_grey(m, old_id_of(m.abi.heap_id), overwritten);
}

// Whether full private collections the pacer starts are incremental (USGC_GC_INCREMENTAL, on by
// default; never without generations).
bool incremental_old_cycles_enabled();

// In a private collection, after its minor collection (nursery empty, runs retired):
// starts a cycle (phase idle): scans the roots. old_bytes: the old generation now.
void old_cycle_start(Mutator& m, size_t old_bytes);
// moves a running cycle on: terminates its mark when the grey stack is empty, or sweeps a step;
// complete = true finishes it entirely (explicit full collections, the heap limit). Adjusts
// totals (freed bytes, live_bytes, dead large objects to unmap after the pause).
void old_cycle_after_minor(Mutator& m, SweepTotals& totals, bool complete);
// Ends a cycle whose sweep is done (m.live_bytes_after_collection final): pacing, trace.
void old_cycle_end_if_swept(Mutator& m);

// At a run refill (allocation slow path): a mark slice while marking (and the minor collection
// that ends the mark once nothing is grey), a paced sweep step while sweeping.
void old_cycle_refill_step(Mutator& m);
// At a refill of class c that found no partial block, while sweeping: sweeps unswept blocks of c
// until one has free slots (then on partial[c]: true) or kLazySweepBlocks were swept.
bool old_cycle_sweep_for_refill(Mutator& m, uint32_t size_class);

// A goroutine about to wait (runtime: a wait group's wait) does its old generation's pending work
// first, in time it would spend idle: a running cycle is completed (its mark, the minor
// collection that ends it, its sweep), and a due one is started and completed. Without this a
// goroutine that stops allocating keeps the garbage of a cycle that never finishes (Go runs idle
// mark workers for the same reason). Only the mark's minor collections count as pauses.
// old_cycle_idle_work_pending() is the cheap test (false outside goroutines).
bool old_cycle_idle_work_pending();
void old_cycle_finish_before_waiting();
// A goroutine about to park on a channel (send, receive, select) or to sleep does one bounded
// step of that work instead (a wait there may be short, and a channel operation must not take
// a whole cycle's time): a due cycle is started (the minor collection that starts it), or a
// marking cycle marks one slice of at most kMaxSliceObjects (then, if nothing is grey, the minor
// collection that ends its mark), or a sweeping cycle sweeps at most kMaxSweepBlocksPerStep
// blocks: the same bounds as an allocation's step. Never called with a runtime lock held (the
// caller unlocks, steps, then re-checks whether it must still park). True if it did a step.
bool old_cycle_step_before_parking();

// The goroutine exits: its unswept blocks go back on blocks[c] and its unswept large objects on
// large_objects (the exit frees every private object whatever its mark), the cycle's stacks are
// released.
void old_cycle_abandon(Mutator& m);

}  // namespace usgc::gc
