// tests/gc/private_nursery_sizing_test.cpp — the nursery is sized by the survival of the last minor
// collection (gc/private_pacer.hpp, "The nursery"), proven with counts, never with durations:
//   - a goroutine that builds a structure larger than the nursery (every young object survives)
//     has minor collections that mark about kMinorSurvivorTarget objects, not the whole 1 MiB
//     nursery's (32 768 nodes of 32 bytes: the pause the fixed nursery made);
//   - a goroutine that makes only garbage keeps the configured nursery (its minor collections are
//     cheap, and a smaller nursery would only promote more);
//   - once a building phase ends the nursery grows back to the configured size;
//   - the sizing rule itself: shrink to fit the target at the survival just seen, grow by
//     doubling, between a quarter of the configured nursery and all of it.
#include <gtest/gtest.h>

#include <cstdint>

#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/private_pacer.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/private_heap_fixture.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
using usgc::testing::counter;
using usgc::testing::new_node;
using usgc::testing::Node;
using usgc::testing::run_main;
using usgc::testing::write;

// Old-generation cycles far away (USGC_GC_PERCENT=1000): the minor collections are what is counted.
class PrivateNurserySizingTest : public usgc::testing::PrivateHeapTest {
 protected:
  const char* gc_percent() const override { return "1000"; }
};

constexpr size_t kMiB = size_t{1} << 20;
// A minor collection may take up to one more run than its budget (the budget is checked at a
// refill): a block's worth of 32-byte nodes.
constexpr size_t kRunSlackObjects = gc::kBlockBytes / 32;

gc::Mutator& self() {
  return usgc::testing::current_private_heap();
}

// Allocates `count` nodes; with `keep`, links each onto the list in *root (all survive). After
// every node, when a minor collection ran since the last one, records what it marked.
struct MinorLog {
  uint64_t minors = 0;
  uint64_t most_marked_after_first = 0;  // the largest minor collection but the first
  size_t smallest_nursery_bytes = SIZE_MAX;
};
void allocate_nodes(void** root, int count, bool keep, MinorLog* log) {
  USGC_ROOTS(roots, 1);
  uint64_t seen = counter(gc::g_counters.private_minor_collections);
  for (int i = 0; i < count; ++i) {
    roots[0] = new_node(USGC_GOROUTINE_PRIVATE, i);
    if (keep) {
      write(static_cast<Node*>(roots[0]), &static_cast<Node*>(roots[0])->left,
            static_cast<Node*>(*root));
      *root = roots[0];
    }
    const uint64_t now = counter(gc::g_counters.private_minor_collections);
    if (now == seen) continue;
    // A node is 32 bytes and the nursery at least 256 KiB: one node never spans two minors.
    ASSERT_EQ(now, seen + 1);
    seen = now;
    if (log->minors++ > 0) {
      const uint64_t marked = counter(gc::g_counters.last_private_objects_marked);
      if (marked > log->most_marked_after_first) log->most_marked_after_first = marked;
    }
    if (self().collection_budget_bytes < log->smallest_nursery_bytes)
      log->smallest_nursery_bytes = self().collection_budget_bytes;
  }
}

TEST_F(PrivateNurserySizingTest, BuildingAStructureShrinksTheNurseryToTheSurvivorTarget) {
  run_main([&] {
    USGC_ROOTS(roots, 1);
    MinorLog log;
    // 10 MiB of nodes, all kept: about 10 minor collections at 1 MiB, each marking 32 768 nodes.
    ASSERT_NO_FATAL_FAILURE(allocate_nodes(&roots[0], 320000, /*keep=*/true, &log));
    EXPECT_GE(log.minors, 8u);
    EXPECT_LE(log.most_marked_after_first, gc::kMinorSurvivorTarget + kRunSlackObjects)
        << "a minor collection of a nursery whose objects all survive marked the whole nursery";
    EXPECT_LT(log.smallest_nursery_bytes, kMiB);
    EXPECT_GE(log.smallest_nursery_bytes, kMiB / gc::kNurseryMinimumDivisor);
    int length = 0;
    for (const Node* n = static_cast<const Node*>(roots[0]); n != nullptr; n = n->left) ++length;
    EXPECT_EQ(length, 320000);
  });
}

TEST_F(PrivateNurserySizingTest, GarbageKeepsTheConfiguredNurseryAndItGrowsBackAfterABuild) {
  run_main([&] {
    USGC_ROOTS(roots, 2);
    MinorLog garbage;
    ASSERT_NO_FATAL_FAILURE(allocate_nodes(&roots[1], 200000, /*keep=*/false, &garbage));
    EXPECT_GE(garbage.minors, 4u);
    EXPECT_EQ(garbage.smallest_nursery_bytes, kMiB) << "garbage alone shrank the nursery";
    MinorLog build;
    ASSERT_NO_FATAL_FAILURE(allocate_nodes(&roots[0], 160000, /*keep=*/true, &build));
    EXPECT_LT(self().collection_budget_bytes, kMiB) << "the build left the nursery at full size";
    MinorLog after;
    ASSERT_NO_FATAL_FAILURE(allocate_nodes(&roots[1], 200000, /*keep=*/false, &after));
    EXPECT_EQ(self().collection_budget_bytes, kMiB) << "the nursery did not grow back";
  });
}

TEST(PrivateNurserySizing, ShrinksToFitTheTargetGrowsByDoublingWithinItsBounds) {
  const size_t configured = kMiB;
  const size_t target = gc::kMinorSurvivorTarget;
  // Everything survived (32-byte objects): a nursery that holds the target's objects.
  EXPECT_EQ(gc::nursery_bytes_after_minor(kMiB, kMiB / 32, kMiB, configured), target * 32);
  // Half the target survived: may double, not more.
  EXPECT_EQ(gc::nursery_bytes_after_minor(kMiB / 2, target / 2, kMiB / 2, configured), kMiB);
  EXPECT_EQ(gc::nursery_bytes_after_minor(kMiB / 4, 0, kMiB / 4, configured), kMiB / 2);
  // Never above the configured nursery, never below a quarter of it.
  EXPECT_EQ(gc::nursery_bytes_after_minor(kMiB, 0, kMiB, configured), configured);
  EXPECT_EQ(gc::nursery_bytes_after_minor(kMiB, kMiB / 8, kMiB, configured), configured / 4);
}

}  // namespace
