// gc/private_pacer.hpp — the pacer of a goroutine's old generation: when an incremental
// old-generation cycle starts, how much a mark slice does, and how fast the sweep after it runs
// (Go's gcController for one goroutine's heap; the design, not its code).
//
// Terms, in bytes of the goroutine's old generation (m.live_bytes_after_collection):
//   marked    old_bytes_after_full: what the last cycle's trace marked, or the survivors of the
//             last one-pause full collection. Objects promoted black while a cycle marked are not
//             in it: they may be garbage made during the cycle, and the next cycle finds out
//             (their bytes do not raise the next goal, so they cannot hold themselves up).
//   budget    full_budget_bytes = USGC_GC_PERCENT of marked, at least min_private_budget_bytes.
//   goal      marked + budget: the old generation should not pass it before the mark ends.
//   runway    the allocation over which a cycle's mark is spread: budget / 8, at least 1 MiB.
//             Short on purpose: what the nursery promotes while the cycle marks is black (kept
//             by this cycle whatever becomes of it), so the old generation leaves a cycle at
//             marked + (promotion over the runway), and the room left before the next trigger
//             shrinks by as much. With budget / 2 a goroutine that promotes everything (a tree
//             being built) came out of each cycle nearly at the next trigger: cycles ran back to
//             back (binary-trees depth 20 traced 1.85x the objects of one-pause collections;
//             with budget / 8, 1.14x). The price is 4x larger mark
//             slices per refill, still bounded by kMaxSliceObjects.
//   trigger   goal - (expected old growth over the runway): the cycle starts there. The expected
//             growth is the runway times the promotion rate the last cycle saw while it marked
//             (old growth per allocated byte, averaged over two cycles, 1 at first), plus an
//             eighth; the lead is kept between 5 % and 70 % of the budget (Go keeps its trigger
//             between 0.7 and 0.95 of the way to the goal for the same reason: a cycle must neither
//             start at the goal nor right after the last one).
// With one-pause full collections (USGC_GC_INCREMENTAL=0) the trigger is the goal, as before.
//
// Mark assists: a cycle's expected work is the objects the last one marked (or marked / 32 B at
// first), raised to what is marked plus grey now when that is more. A refill that takes a run
// marks (expected work) x (allocated since the start) / runway less what is marked already, so the
// mark is done when the runway is allocated: since the old generation grows at most by what is
// allocated, it is then at most goal (with the measured promotion rate, about goal). A slice is
// kept between kMinSliceObjects and kMaxSliceObjects (the pause bound, always); past the runway
// every slice is the maximum. A run is at most a block (64 KiB, about 2 000 of the smallest
// objects), so past the runway the mark traces at least 8 objects per object allocated and the
// heap cannot outrun it far (a mark that completed in one slice instead, at goal + budget / 2,
// was one pause proportional to the live old generation).
//
// Sweep pacing (Go's proportional sweep): when the mark ends the blocks left to sweep (all of
// the goroutine's blocks, unswept) are to be done after another runway / 2 of allocation; each
// refill sweeps its share, at most kMaxSweepBlocksPerStep blocks. A cycle due before the sweep is
// over waits for it (as Go's next cycle waits for the sweep): every refill then sweeps
// kMaxSweepBlocksPerStep, each minor collection kSweepBlocksPerMinor (gc/private_old_cycle.cpp),
// and the minor collection after the sweep's end starts the cycle. No pause sweeps more than that.
//
// The nursery (the minor collection's pause): a minor collection's work is its survivors' marking,
// so a nursery of collection_budget_bytes whose objects all survive (a structure larger than the
// nursery being built) marked 32 768 nodes of 32 bytes (45 509 of 24) in one pause at 1 MiB:
// 0.5 ms at the median on this VM, up to 1.25 ms of the thread's CPU under load (binary-trees
// depth 20, two goroutines). After each minor collection the next nursery is sized so that, at
// the survival just seen, it keeps about kMinorSurvivorTarget objects: shrunk at once when more
// survived, at most doubled when fewer did, never below a quarter of the configured nursery nor
// above it. (A smaller target, or a slower regrowth, kept short-lived objects in smaller
// nurseries and promoted them: more old-generation cycles, +5-7 % instructions in binary-trees
// depth 16 at 16 384 objects; +0.5 % at 24 576 with doubling.) Garbage-heavy phases keep
// the full nursery (few survivors, cheap pauses); a building phase pays more, smaller pauses for
// the same total marking (each survivor is marked once either way). The first minor collection
// of a building phase still has the nursery the last phase left: the bound is on the steady
// state, not on a phase change.
//
// All of this runs on the owning goroutine, on the allocation slow path or in its collections.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/mutator.hpp"

namespace usgc::gc {

inline constexpr size_t kMinSliceObjects = 128;
inline constexpr size_t kMaxSliceObjects = 16384;
inline constexpr uint32_t kMaxSweepBlocksPerStep = 16;
inline constexpr size_t kMinimumRunwayBytes = size_t{1} << 20;
// The runway is this fraction of the budget (see "runway" above for why not more).
inline constexpr size_t kRunwayBudgetDivisor = 8;

inline constexpr size_t kMinorSurvivorTarget = 24576;
inline constexpr size_t kNurseryGrowthFactor = 2;    // growth per collection at most: doubling
inline constexpr size_t kNurseryMinimumDivisor = 4;  // never below configured / 4

// The nursery after a minor collection that kept `survivors` objects of the `nursery_bytes` taken
// since the one before; `current` is the nursery that collection had, `configured` the setting
// (min_private_budget_bytes).
inline size_t nursery_bytes_after_minor(size_t nursery_bytes, size_t survivors, size_t current,
                                        size_t configured) {
  size_t next = current * kNurseryGrowthFactor;
  if (survivors > 0) {
    // At this survival, kMinorSurvivorTarget survivors take this many bytes of nursery.
    double fit = static_cast<double>(nursery_bytes) * static_cast<double>(kMinorSurvivorTarget) /
                 static_cast<double>(survivors);
    if (fit < static_cast<double>(next)) next = static_cast<size_t>(fit);
  }
  const size_t minimum = configured / kNurseryMinimumDivisor;
  if (next < minimum) next = minimum;
  if (next > configured) next = configured;
  return next;
}

// The allocation over which a cycle's mark is spread.
inline size_t pacer_runway_bytes(const Mutator& m) {
  size_t runway = m.full_budget_bytes / kRunwayBudgetDivisor;
  return runway < kMinimumRunwayBytes ? kMinimumRunwayBytes : runway;
}

inline size_t pacer_goal_bytes(const Mutator& m) {
  return m.old_bytes_after_full + m.full_budget_bytes;
}

// The old-generation size at which the next incremental cycle starts.
inline size_t pacer_trigger_bytes(const Mutator& m) {
  const size_t budget = m.full_budget_bytes;
  size_t growth = pacer_runway_bytes(m) / 1000 * m.pacer_promotion_permille;
  size_t lead = growth + growth / 8;
  if (lead < budget / 20) lead = budget / 20;
  if (lead > budget / 10 * 7) lead = budget / 10 * 7;
  return pacer_goal_bytes(m) - lead;
}

// A cycle's promotion rate is folded into the estimate when its mark ends: grown old bytes over
// allocated bytes while it marked.
inline void pacer_note_promotion(Mutator& m, size_t grown_bytes, uint64_t allocated_bytes) {
  uint64_t permille = allocated_bytes == 0 ? 0 : uint64_t{grown_bytes} * 1000 / allocated_bytes;
  if (permille > 1000) permille = 1000;
  m.pacer_promotion_permille = static_cast<uint32_t>((m.pacer_promotion_permille + permille) / 2);
}

// The objects a refill's mark slice should mark now (kMinSliceObjects..kMaxSliceObjects).
inline size_t pacer_mark_slice_objects(const Mutator& m, size_t expected_objects, size_t grey) {
  size_t expected = expected_objects;
  if (m.old_cycle_marked + grey > expected) expected = m.old_cycle_marked + grey;
  const uint64_t allocated = m.run_bytes_taken - m.old_cycle_start_bytes;
  const size_t runway = pacer_runway_bytes(m);
  if (allocated >= runway) return kMaxSliceObjects;
  size_t owed = static_cast<size_t>(static_cast<double>(expected) * static_cast<double>(allocated) /
                                    static_cast<double>(runway));
  size_t budget = owed > m.old_cycle_marked ? owed - m.old_cycle_marked : 0;
  if (budget < kMinSliceObjects) budget = kMinSliceObjects;
  if (budget > kMaxSliceObjects) budget = kMaxSliceObjects;
  return budget;
}

// The blocks a refill's sweep step should release or sweep now.
inline uint32_t pacer_sweep_step_blocks(const Mutator& m) {
  // The next cycle is due and waits for this sweep.
  if (m.live_bytes_after_collection >= pacer_trigger_bytes(m)) return kMaxSweepBlocksPerStep;
  if (m.sweep_blocks_done >= m.sweep_blocks_total) return 1;
  const uint64_t allocated = m.run_bytes_taken - m.sweep_start_bytes;
  const size_t runway = pacer_runway_bytes(m) / 2;
  double owed_total = static_cast<double>(m.sweep_blocks_total) * static_cast<double>(allocated) /
                      static_cast<double>(runway);
  double owed = owed_total - static_cast<double>(m.sweep_blocks_done);
  if (owed < 1) return 1;
  if (owed > kMaxSweepBlocksPerStep) return kMaxSweepBlocksPerStep;
  return static_cast<uint32_t>(owed);
}

}  // namespace usgc::gc
