// tests/gc/private_bitmap_sweep_test.cpp — the sweep and the pace of a private heap's incremental
// old-generation cycles (gc/private_old_cycle.hpp), proven with the collector's counters:
//   - a block in which the cycle marked some objects is swept from the cycle's mark bitmap
//     without reading a slot header (private_sweep_slots_read stays put), the survivors stay
//     intact, and the slots it freed come back zeroed when they are allocated again (they are
//     zeroed in bulk when their run is handed out, not at the sweep);
//   - a block holding an object published in place is still swept slot by slot (its headers say
//     which objects are shared), and the published object survives;
//   - a minor collection frees the young garbage made in slots that a one-pause full collection
//     freed after a cycle (the free-slot invariant of the cycle bitmaps: the cycle's marks must
//     not outlive the objects they marked);
//   - on a goroutine that promotes nearly everything it allocates (trees bigger than the nursery,
//     built and dropped, as in binary-trees), incremental cycles trace about as many old objects
//     as one-pause full collections do for the same work (private_old_objects_marked): a cycle's
//     black promotions must not leave the old generation at the next trigger (without the heap
//     verifier: it proves a count, see its fixture).
// The mutators use the public API; the test reaches gc/ for the counters, the pacer's state (to
// make a cycle due) and the switch between incremental and one-pause collections.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/private_old_cycle.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/private_heap_fixture.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
using usgc::testing::build_old_list;
using usgc::testing::build_old_list_half_garbage;
using usgc::testing::build_tree;
using usgc::testing::counter;
using usgc::testing::current_private_heap;
using usgc::testing::drop_odd_nodes;
using usgc::testing::list_length_checking_even_values;
using usgc::testing::Node;
using usgc::testing::node_type;
using usgc::testing::run_main;
using usgc::testing::run_whole_old_cycle;

using PrivateBitmapSweepTest = usgc::testing::PrivateHeapTest;

TEST_F(PrivateBitmapSweepTest, BlocksWithSurvivorsAreSweptFromTheBitmapAndHandOutZeroedSlots) {
  constexpr int kNodes = 20000;  // 32-byte slots: about ten blocks
  run_main([&] {
    USGC_ROOTS(roots, 1);
    ASSERT_NO_FATAL_FAILURE(build_old_list_half_garbage(&roots[0], kNodes));

    const uint64_t slots_read = counter(gc::g_counters.private_sweep_slots_read);
    const uint64_t bitmap_swept = counter(gc::g_counters.private_bitmap_swept_blocks);
    ASSERT_NO_FATAL_FAILURE(run_whole_old_cycle());
    EXPECT_EQ(counter(gc::g_counters.private_sweep_slots_read), slots_read)
        << "the cycle read slot headers to sweep blocks with survivors";
    EXPECT_GE(counter(gc::g_counters.private_bitmap_swept_blocks) - bitmap_swept, 8u)
        << "blocks with survivors swept from the bitmap";
    EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(roots[0])), kNodes / 2);

    // The freed slots held nodes with nonzero fields: each comes back all zero.
    const gc::Block* survivors_block = gc::block_of(roots[0]);
    int reused = 0;
    for (int i = 0; i < kNodes / 2; ++i) {
      auto* node = static_cast<Node*>(usgc_alloc(node_type(), USGC_GOROUTINE_PRIVATE));
      ASSERT_NE(node, nullptr);
      ASSERT_TRUE(node->left == nullptr && node->right == nullptr && node->value == 0)
          << "allocation " << i << " returned a slot with a dead object's bytes";
      reused += gc::block_of(node) == survivors_block;
    }
    EXPECT_GT(reused, 0) << "no freed slot of a block with survivors was allocated again";
    EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(roots[0])), kNodes / 2);
  });
}

TEST_F(PrivateBitmapSweepTest, ABlockHoldingAPublishedObjectIsSweptSlotBySlot) {
  constexpr int kNodes = 4000;
  run_main([&] {
    USGC_ROOTS(roots, 2);
    ASSERT_NO_FATAL_FAILURE(build_old_list_half_garbage(&roots[0], kNodes));
    // The list's last node (no successor: its closure is itself), published in place in the
    // list's first block: it stays there, shared, and the list refers to it.
    Node* last = static_cast<Node*>(roots[0]);
    while (last->left != nullptr) last = last->left;
    roots[1] = last;
    usgc_publish(roots[1]);

    const uint64_t slots_read = counter(gc::g_counters.private_sweep_slots_read);
    ASSERT_NO_FATAL_FAILURE(run_whole_old_cycle());
    EXPECT_GT(counter(gc::g_counters.private_sweep_slots_read), slots_read)
        << "a block with a published object must be swept by its headers";
    EXPECT_EQ(static_cast<Node*>(roots[1])->value, kNodes - 2);
    EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(roots[0])), kNodes / 2);
  });
}

// The free-slot invariant of the cycle bitmaps (gc/private_sweep.hpp): a one-pause full
// collection after a cycle frees objects that cycle marked (they died since); the young objects
// made in their slots afterwards must read as unmarked at the next minor collection, which frees
// them. Before the fix the cycle's bits stayed on the freed slots, and the minor collection's
// bitmap sweep took them for its own marks: it promoted every such object (floating garbage
// until the next old-generation collection; debug builds stopped on the sweep's assertion).
TEST_F(PrivateBitmapSweepTest, AMinorCollectionFreesYoungGarbageInSlotsAFullCollectionFreed) {
  constexpr int kNodes = 20000;  // 32-byte slots: about ten blocks
  constexpr int kGarbage = kNodes / 2;
  run_main([&] {
    USGC_ROOTS(roots, 1);
    ASSERT_EQ(build_old_list(&roots[0], kNodes), 0);
    // Every node marked by a cycle (its marks stay on the survivors once it ends), then half of
    // them freed by a one-pause full collection: their blocks stay, with free runs.
    ASSERT_NO_FATAL_FAILURE(run_whole_old_cycle());
    drop_odd_nodes(static_cast<Node*>(roots[0]));
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    gc::Mutator& m = current_private_heap();
    ASSERT_FALSE(gc::old_cycle_active(m));
    std::set<const gc::Block*> list_blocks;
    for (const Node* node = static_cast<Node*>(roots[0]); node != nullptr; node = node->left)
      list_blocks.insert(gc::block_of(node));

    // Garbage, less than the nursery (no collection runs meanwhile), in the freed slots.
    const uint64_t minors = counter(gc::g_counters.private_minor_collections);
    const size_t old_bytes = m.live_bytes_after_collection;
    const uint64_t freed_before = counter(gc::g_counters.bytes_freed_private);
    int in_freed_slots = 0;
    for (int i = 0; i < kGarbage; ++i) {
      auto* node = static_cast<Node*>(usgc_alloc(node_type(), USGC_GOROUTINE_PRIVATE));
      ASSERT_NE(node, nullptr);
      node->value = i;
      in_freed_slots += list_blocks.count(gc::block_of(node)) != 0;
    }
    ASSERT_EQ(counter(gc::g_counters.private_minor_collections), minors)
        << "the garbage outgrew the nursery: collected before the test's minor collection";
    ASSERT_GE(in_freed_slots, kGarbage / 2) << "the garbage did not reuse the freed slots";

    gc::collect_private(m, "test");
    ASSERT_EQ(counter(gc::g_counters.private_minor_collections), minors + 1);
    EXPECT_EQ(m.live_bytes_after_collection, old_bytes)
        << "the minor collection promoted unreachable young objects (floating garbage): "
        << (m.live_bytes_after_collection - old_bytes) / 32 << " of " << kGarbage;
    EXPECT_GE(counter(gc::g_counters.bytes_freed_private) - freed_before, uint64_t{kGarbage} * 32)
        << "the minor collection did not free the garbage";
    EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(roots[0])), kNodes / 2);
  });
}

// Old objects marked while the goroutine keeps a 2 MiB tree and builds and drops 8 MiB trees
// (promoted while built, dead old), with incremental cycles or one-pause collections.
uint64_t old_objects_marked_by_churn(bool incremental) {
  constexpr int kKeptDepth = 15;
  constexpr int kChurnDepth = 17;
  constexpr int kRounds = 12;
  gc::g_config.incremental_private = incremental;
  const uint64_t before = counter(gc::g_counters.private_old_objects_marked);
  USGC_ROOTS(roots, 2);
  roots[0] = build_tree(kKeptDepth);
  for (int round = 0; round < kRounds; ++round) {
    roots[1] = build_tree(kChurnDepth);
    roots[1] = nullptr;
  }
  roots[0] = nullptr;
  return counter(gc::g_counters.private_old_objects_marked) - before;
}

// The churn test proves a count (old objects marked), not the heap's integrity. With the heap
// verifier on (the default of USGC_DEBUG builds) it walked the whole private heap after each of
// its collections: 45 s of the 60 s watchdog in the debug build on a loaded 2-vCPU VM (the
// verifier's VisitedSet::insert a third of the samples), 2.7 s without. So it runs unverified in
// every build. The same heap shape (a kept tree, bigger trees promoted while built and dropped,
// incremental cycles) is verified after every collection by
// PrivatePacerTest.AChurningOldGenerationStaysBoundedUnderIncrementalCycles, and the cycles'
// marking and sweeping under moves by PrivateOldCycleTest (USGC_VERIFY=1 in every build).
class PrivateBitmapSweepChurnTest : public usgc::testing::PrivateHeapTest {
 protected:
  void SetUp() override {
    setenv("USGC_VERIFY", "0", 1);  // read by usgc_init (PrivateHeapTest::SetUp)
    PrivateHeapTest::SetUp();
  }

 private:
  // Declared before the runtime starts (members are built before SetUp), destroyed after TearDown.
  usgc::testing::SavedEnvironmentVariable saved_verify_{"USGC_VERIFY"};
};

TEST_F(PrivateBitmapSweepChurnTest, IncrementalCyclesTraceAboutAsMuchAsOnePauseCollections) {
  ASSERT_FALSE(gc::g_config.verify) << "the churn runs unverified (see the fixture)";
  uint64_t incremental = 0;
  uint64_t one_pause = 0;
  run_main([&] {
    one_pause = old_objects_marked_by_churn(false);
    // One collection in between empties the heap of the first round's trees (one pause).
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    gc::Mutator& m = current_private_heap();
    m.old_cycle_expected_objects = 0;
    incremental = old_objects_marked_by_churn(true);
    gc::g_config.incremental_private = true;
  });
  std::printf("[ info     ] old objects marked: incremental %llu, one pause %llu (%.2fx)\n",
              static_cast<unsigned long long>(incremental),
              static_cast<unsigned long long>(one_pause),
              static_cast<double>(incremental) / static_cast<double>(one_pause));
  ASSERT_GT(one_pause, 0u);
  EXPECT_LT(static_cast<double>(incremental), 1.35 * static_cast<double>(one_pause))
      << "incremental cycles re-mark far more than one-pause collections";
}

}  // namespace
