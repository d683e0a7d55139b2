// tests/gc/private_pause_bounds_test.cpp — what bounds a private pause, proven with counts (never
// with durations): each test counts the work one pause did and fails with the collector that let
// it grow with the heap.
//   - the nursery a minor collection sweeps is bounded by its budget (plus one run) even when the
//     goroutine's blocks have free space to spare: the budget is checked at every refill, not only
//     before a new block is taken;
//   - a minor collection sweeps its runs from the cycle bitmap: it reads no nursery slot (no
//     published object in them), the survivors stay intact, the dead objects' slots come back
//     zeroed when allocated again (their runs are zeroed when handed out, outside the pause);
//   - no mark slice does more than the pacer's maximum, whatever the heap's size against its goal;
//   - a cycle due while the last one still sweeps does not finish that sweep inside a collection:
//     it waits, and the collection sweeps its bounded share;
//   - the collection that ends a cycle's mark reads no block and no large object: every one of
//     them reaches the lazy sweep unread, which frees the dead blocks (no slot read) and the dead
//     large objects a bounded number per step.
// The mutators use the public API; the tests reach gc/ for the counters, the goroutine's pause
// records and the pacer's state (to make a cycle due).
#include <gtest/gtest.h>

#include <cstdint>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/private_pacer.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/private_heap_fixture.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
using usgc::testing::allocate_garbage;
using usgc::testing::build_old_list_half_garbage;
using usgc::testing::counter;
using usgc::testing::list_length_checking_even_values;
using usgc::testing::make_old_cycle_due;
using usgc::testing::new_node;
using usgc::testing::Node;
using usgc::testing::run_main;

using PrivatePauseBoundsTest = usgc::testing::PrivateHeapTest;

gc::Mutator& self() {
  return usgc::testing::current_private_heap();
}

TEST_F(PrivatePauseBoundsTest, TheNurseryStaysBoundedWhenBlocksHaveFreeSpace) {
  constexpr int kNodes = 200000;  // 32-byte slots: about 6 MiB, 100 blocks
  run_main([&] {
    USGC_ROOTS(roots, 2);
    ASSERT_NO_FATAL_FAILURE(build_old_list_half_garbage(&roots[0], kNodes));
    // One pause: every block is swept now, half free, on the partial lists.
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    gc::Mutator& m = self();
    m.largest_nursery_bytes = 0;
    const uint64_t minors = counter(gc::g_counters.private_minor_collections);
    allocate_garbage(&roots[1], kNodes / 2, 64);  // about 3 MiB: the partial blocks' free space
    EXPECT_GT(counter(gc::g_counters.private_minor_collections), minors)
        << "3 MiB allocated with a 1 MiB nursery and no minor collection";
    EXPECT_LE(m.largest_nursery_bytes, m.collection_budget_bytes + gc::kBlockBytes)
        << "a minor collection swept a nursery past its budget (the runs came from partial "
           "blocks)";
    EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(roots[0])), kNodes / 2);
  });
}

TEST_F(PrivatePauseBoundsTest, MinorCollectionsSweepTheNurseryFromTheBitmap) {
  run_main([&] {
    USGC_ROOTS(roots, 1);
    const uint64_t read = counter(gc::g_counters.private_nursery_slots_read);
    const uint64_t swept = counter(gc::g_counters.private_nursery_slots_bitmap_swept);
    const uint64_t minors = counter(gc::g_counters.private_minor_collections);
    // 8 MiB of nodes, one in 16 kept: many minor collections, each freeing most of its nursery;
    // later nodes reuse the freed slots (checked zero by allocate_garbage).
    allocate_garbage(&roots[0], 256 * 1024, 16);
    EXPECT_GE(counter(gc::g_counters.private_minor_collections) - minors, 4u);
    EXPECT_EQ(counter(gc::g_counters.private_nursery_slots_read), read)
        << "a minor collection read nursery slots (none holds a published object)";
    EXPECT_GE(counter(gc::g_counters.private_nursery_slots_bitmap_swept) - swept, 4u * 30000u)
        << "minor collections did not sweep their runs from the bitmap";
    // The survivors: every 16th node, newest first.
    int64_t expected = 256 * 1024 - 16;
    int64_t kept = 0;
    for (const Node* node = static_cast<Node*>(roots[0]); node != nullptr; node = node->left) {
      ASSERT_EQ(node->value, expected) << "survivor " << kept;
      expected -= 16;
      ++kept;
    }
    EXPECT_EQ(kept, 256 * 1024 / 16);
  });
}

TEST_F(PrivatePauseBoundsTest, NurseryRunsInABlockWithAPublishedObjectAreReadSlotBySlot) {
  run_main([&] {
    USGC_ROOTS(roots, 2);
    // A young node published in place: its block's runs are swept by their headers (a shared
    // object is judged by its shared mark, not the private bitmap).
    roots[1] = new_node(USGC_GOROUTINE_PRIVATE, 42);
    usgc_publish(roots[1]);
    const uint64_t read = counter(gc::g_counters.private_nursery_slots_read);
    allocate_garbage(&roots[0], 64 * 1024, 8);
    EXPECT_GT(counter(gc::g_counters.private_nursery_slots_read), read);
    EXPECT_EQ(static_cast<Node*>(roots[1])->value, 42);
    int64_t kept = 0;
    for (const Node* node = static_cast<Node*>(roots[0]); node != nullptr; node = node->left)
      ++kept;
    EXPECT_EQ(kept, 64 * 1024 / 8);
  });
}

TEST_F(PrivatePauseBoundsTest, NoMarkSliceExceedsTheMaximumWhateverTheHeap) {
  run_main([&] {
    gc::Mutator& m = self();
    // The old generation far past its goal (and past goal + budget / 2, where a slice used to
    // mark everything grey), a large cycle under way.
    m.old_bytes_after_full = size_t{1} << 20;
    m.full_budget_bytes = size_t{1} << 20;
    m.live_bytes_after_collection = size_t{64} << 20;
    m.old_cycle_marked = 0;
    m.old_cycle_start_bytes = m.run_bytes_taken;
    EXPECT_LE(gc::pacer_mark_slice_objects(m, 3000000, 3000000), gc::kMaxSliceObjects);
    m.old_cycle_start_bytes = 0;
    m.run_bytes_taken = size_t{1} << 30;  // past the runway too
    EXPECT_LE(gc::pacer_mark_slice_objects(m, 3000000, 3000000), gc::kMaxSliceObjects);
  });
}

TEST_F(PrivatePauseBoundsTest, ADueCycleWaitsForTheLastSweepInsteadOfFinishingItInACollection) {
  constexpr int kNodes = 200000;  // about 100 blocks to sweep
  run_main([&] {
    USGC_ROOTS(roots, 1);
    ASSERT_NO_FATAL_FAILURE(build_old_list_half_garbage(&roots[0], kNodes));
    gc::Mutator& m = self();
    // A cycle due now: started by a collection, marked by refill steps until the minor
    // collection that ends its mark puts it in its sweep.
    make_old_cycle_due();
    gc::collect_private(m, "test");
    ASSERT_EQ(gc::old_cycle_phase(m), gc::OldCyclePhase::kMarking);
    for (int step = 0; step < 100000 && gc::old_cycle_phase(m) == gc::OldCyclePhase::kMarking;
         ++step)
      gc::old_cycle_refill_step(m);
    ASSERT_EQ(gc::old_cycle_phase(m), gc::OldCyclePhase::kSweeping);
    ASSERT_GT(m.unswept_blocks, 3u * gc::kSweepBlocksPerMinor);

    // The next cycle is due at once (trigger 0); the collections before the sweep ends each do
    // their share of it, no more, and the cycle starts after the sweep.
    make_old_cycle_due();
    m.most_cycle_blocks_in_collection = 0;
    size_t before = m.sweep_blocks_done;
    gc::collect_private(m, "test");
    EXPECT_LE(m.sweep_blocks_done - before, size_t{gc::kSweepBlocksPerMinor})
        << "a collection finished the last cycle's sweep for the next cycle";
    EXPECT_EQ(gc::old_cycle_phase(m), gc::OldCyclePhase::kSweeping);
    for (int i = 0; i < 1000 && gc::old_cycle_phase(m) == gc::OldCyclePhase::kSweeping; ++i) {
      make_old_cycle_due();
      gc::collect_private(m, "test");
    }
    EXPECT_EQ(gc::old_cycle_phase(m), gc::OldCyclePhase::kMarking)
        << "the due cycle did not start once the sweep was over";
    EXPECT_LE(m.most_cycle_blocks_in_collection, size_t{gc::kSweepBlocksPerMinor});
    gc::old_cycle_finish_before_waiting();
    EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(roots[0])), kNodes / 2);
  });
}

// Marks the running cycle by refill steps until the step whose minor collection ends the mark;
// *before_end gets the counters just before that step.
struct CycleCounters {
  uint64_t freed_private = 0;
  uint64_t dead_blocks = 0;
  uint64_t slots_read = 0;
  size_t small_blocks = 0;
};
CycleCounters cycle_counters(const gc::Mutator& m) {
  return {counter(gc::g_counters.bytes_freed_private),
          counter(gc::g_counters.private_dead_blocks_freed),
          counter(gc::g_counters.private_sweep_slots_read), m.small_blocks};
}
void mark_until_the_mark_ends(gc::Mutator& m, CycleCounters* before_end) {
  for (int step = 0; step < 100000 && gc::old_cycle_phase(m) == gc::OldCyclePhase::kMarking;
       ++step) {
    *before_end = cycle_counters(m);
    gc::old_cycle_refill_step(m);
  }
  ASSERT_EQ(gc::old_cycle_phase(m), gc::OldCyclePhase::kSweeping);
}

// The values of a list through `left` are 0, 1, 2, ...: its length, else -1.
int64_t list_length_checking_values(const Node* list) {
  int64_t length = 0;
  for (const Node* node = list; node != nullptr; node = node->left, ++length)
    if (node->value != length) return -1;
  return length;
}

TEST_F(PrivatePauseBoundsTest, TheMarkEndsWithoutReadingABlockAndTheSweepFreesDeadBlocksInSteps) {
  constexpr int kNodes = 200000;  // 32-byte slots: about 100 blocks, half of them all garbage
  run_main([&] {
    USGC_ROOTS(roots, 1);
    ASSERT_EQ(usgc::testing::build_old_list(&roots[0], kNodes), 0);
    // Keep the newest half (values 0 .. kNodes/2 - 1): the older half fills whole blocks that
    // the cycle will mark nothing in.
    Node* cut = static_cast<Node*>(roots[0]);
    for (int i = 1; i < kNodes / 2; ++i) cut = cut->left;
    usgc::testing::write(cut, &cut->left, static_cast<Node*>(nullptr));
    gc::Mutator& m = self();
    make_old_cycle_due();
    gc::collect_private(m, "test");
    ASSERT_EQ(gc::old_cycle_phase(m), gc::OldCyclePhase::kMarking);
    CycleCounters before{};
    ASSERT_NO_FATAL_FAILURE(mark_until_the_mark_ends(m, &before));
    const CycleCounters after = cycle_counters(m);
    ASSERT_GE(before.small_blocks, 90u);
    // The ending collection's minor part had an empty nursery to free; the termination itself
    // read no block: none freed, every one still waiting for the sweep.
    EXPECT_EQ(after.dead_blocks, before.dead_blocks);
    EXPECT_LE(after.freed_private - before.freed_private, uint64_t{gc::kBlockBytes})
        << "the collection that ended the mark freed the dead blocks itself (it walked them)";
    EXPECT_EQ(m.unswept_blocks, before.small_blocks)
        << "the termination sorted blocks out of the lazy sweep";
    EXPECT_EQ(m.sweep_blocks_done, 0u);

    // The sweep, by refill steps: each does a bounded number of blocks; the dead ones are freed
    // without reading a slot.
    size_t most_in_a_step = 0;
    for (int step = 0; step < 100000 && gc::old_cycle_phase(m) == gc::OldCyclePhase::kSweeping;
         ++step) {
      size_t done = m.sweep_blocks_done;
      gc::old_cycle_refill_step(m);
      if (m.sweep_blocks_done - done > most_in_a_step) most_in_a_step = m.sweep_blocks_done - done;
    }
    EXPECT_FALSE(gc::old_cycle_active(m));
    EXPECT_LE(most_in_a_step, size_t{gc::kMaxSweepBlocksPerStep});
    const CycleCounters swept = cycle_counters(m);
    EXPECT_GE(swept.dead_blocks - after.dead_blocks, 40u) << "the dead blocks were not found dead";
    EXPECT_EQ(swept.slots_read, after.slots_read) << "the sweep read slots (no object published)";
    EXPECT_GE(swept.freed_private - after.freed_private, uint64_t{kNodes / 2} * 32 * 9 / 10);
    EXPECT_LE(m.small_blocks, before.small_blocks - 40u) << "the dead blocks were not released";
    EXPECT_EQ(list_length_checking_values(static_cast<Node*>(roots[0])), kNodes / 2);
  });
}

TEST_F(PrivatePauseBoundsTest, LargeObjectsReachTheSweepUnreadAndTheDeadOnesAreFreedThere) {
  constexpr int kLarge = 24;
  constexpr size_t kBytes = 96 * 1024;  // larger than any size class: a mapping each
  run_main([&] {
    USGC_ROOTS(roots, kLarge);
    for (int i = 0; i < kLarge; ++i) {
      roots[i] = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, kBytes, USGC_GOROUTINE_PRIVATE);
      ASSERT_NE(roots[i], nullptr);
      static_cast<unsigned char*>(roots[i])[sizeof(uint64_t) + 5] = static_cast<unsigned char>(i);
    }
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);  // all old now
    for (int i = 1; i < kLarge; i += 2) roots[i] = nullptr;
    gc::Mutator& m = self();
    const uint64_t in_use = counter(gc::g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE]);
    make_old_cycle_due();
    gc::collect_private(m, "test");
    CycleCounters before{};
    ASSERT_NO_FATAL_FAILURE(mark_until_the_mark_ends(m, &before));
    EXPECT_EQ(m.large_objects, nullptr);
    int unswept = 0;
    for (gc::Block* b = m.unswept_large; b != nullptr; b = b->next_in_heap) ++unswept;
    EXPECT_EQ(unswept, kLarge) << "the termination swept large objects";
    EXPECT_GE(counter(gc::g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE]) + gc::kBlockBytes,
              in_use)
        << "the termination freed large objects";
    for (int step = 0; step < 100000 && gc::old_cycle_phase(m) == gc::OldCyclePhase::kSweeping;
         ++step)
      gc::old_cycle_refill_step(m);
    EXPECT_FALSE(gc::old_cycle_active(m));
    EXPECT_LE(counter(gc::g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE]) + kLarge / 2 * kBytes,
              in_use)
        << "the sweep did not free the dead large objects";
    int kept = 0;
    for (gc::Block* b = m.large_objects; b != nullptr; b = b->next_in_heap) ++kept;
    EXPECT_EQ(kept, kLarge / 2);
    for (int i = 0; i < kLarge; i += 2)
      EXPECT_EQ(static_cast<unsigned char*>(roots[i])[sizeof(uint64_t) + 5], i);
  });
}

}  // namespace
