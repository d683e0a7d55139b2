// tests/gc/private_old_cycle_test.cpp — the incremental old-generation cycle of private heaps
// (gc/private_old_cycle.hpp), with the heap verifier on and USGC_GC_PERCENT=10 so the pacer
// starts cycles often:
//   - chains of old nodes hang off old holders; while a cycle marks, the mutator moves and swaps
//     them between holders (a chain is cut from a holder the marker has not traced and hung on
//     one it has: without the deletion barrier the chain is never marked and its nodes are
//     freed), builds new ones and drops old ones; every chain is checked against a model;
//   - the same, three goroutines at once while a fourth runs shared collections back to back
//     (stops land inside mark slices and lazy sweeps; the remembered sets are read meanwhile);
//   - an explicit full collection in the middle of a cycle completes it and keeps everything.
// The mutators use the public API only; the test reads the cycle's phase from gc/mutator.hpp to
// prove that the moves happened while a cycle was marking.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gc/mutator.hpp"
#include "gc/private_old_cycle.hpp"
#include "tests/gc/gc_test_support.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/private_heap_fixture.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/seeded_random.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
using usgc::testing::run_main;

using usgc::testing::build_tree;
using usgc::testing::new_node;
using usgc::testing::Node;
using usgc::testing::write;

struct ChainModel {
  int64_t id = 0;  // 0: no chain
  int length = 0;
  bool shared_head = false;
};

struct CycleCounts {
  uint64_t ops_while_marking = 0;
  uint64_t cycles_seen = 0;  // marking phases observed to end
};

// The cycle marks and has grey objects left (not only waiting for its termination).
bool marking_now() {
  gc::Mutator& m = *gc::mutator_of(usgc_current_mutator);
  return gc::old_cycle_phase(m) == gc::OldCyclePhase::kMarking && !m.old_grey.empty();
}

// A chain of `length` private nodes, values id * 1000 + index, built into *slot.
void build_chain(void** slot, int64_t id, int length, bool shared_head) {
  *slot = nullptr;
  for (int i = length - 1; i >= 0; --i) {
    Node* node = new_node(USGC_GOROUTINE_PRIVATE, id * 1000 + i);
    write(node, &node->right, static_cast<Node*>(*slot));
    *slot = node;
  }
  if (shared_head) {
    auto* head = static_cast<Node*>(*slot);
    write(head, &head->left, new_node(USGC_GOROUTINE_SHARED, -5));
  }
}

::testing::AssertionResult chain_matches(const Node* holder, const ChainModel& model) {
  const Node* node = static_cast<const Node*>(usgc_read(holder, (void* const*)&holder->left));
  if (model.id == 0) {
    if (node != nullptr) return ::testing::AssertionFailure() << "an emptied holder holds a chain";
    return ::testing::AssertionSuccess();
  }
  if (node == nullptr) return ::testing::AssertionFailure() << "chain " << model.id << " lost";
  const Node* shared = node->left;
  if (model.shared_head != (shared != nullptr) || (shared != nullptr && shared->value != -5))
    return ::testing::AssertionFailure() << "chain " << model.id << ": its shared node changed";
  for (int i = 0; i < model.length; ++i, node = node->right) {
    if (node == nullptr || node->value != model.id * 1000 + i)
      return ::testing::AssertionFailure()
             << "chain " << model.id << " node " << i << " of " << model.length
             << " is wrong (freed and reused?): "
             << (node == nullptr ? std::string("null") : std::to_string(node->value));
  }
  if (node != nullptr) return ::testing::AssertionFailure() << "chain " << model.id << " too long";
  return ::testing::AssertionSuccess();
}

// Old holders with chains; moves, swaps, new chains and garbage, checked every 250 steps.
void move_chains(uint64_t seed, int steps, CycleCounts* counts) {
  usgc::testing::Random random(seed);
  constexpr int kHolders = 256;  // with 100-node chains: a mark of many slices
  USGC_ROOTS(roots, 4);          // holders array, two chains in flight, scratch
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kHolders, USGC_GOROUTINE_PRIVATE);
  std::vector<ChainModel> model(kHolders);
  int64_t next_id = 1;
  for (int i = 0; i < kHolders; ++i) {
    roots[1] = new_node(USGC_GOROUTINE_PRIVATE, -1);
    usgc_array_write(roots[0], i, roots[1]);
    model[i] = ChainModel{next_id, 100, false};
    build_chain(&roots[2], next_id++, 100, false);
    auto* holder = static_cast<Node*>(usgc_array_read(roots[0], i));
    write(holder, &holder->left, static_cast<Node*>(roots[2]));
  }
  auto holder_at = [&](int i) { return static_cast<Node*>(usgc_array_read(roots[0], i)); };
  bool was_marking = false;
  for (int step = 0; step < steps; ++step) {
    bool marking = marking_now();
    // The barrier's second path is closed exactly while the cycle marks (its deletion barrier).
    const gc::Mutator& self = *gc::mutator_of(usgc_current_mutator);
    ASSERT_EQ(usgc_current_mutator->old_private_key,
              gc::old_private_key_of(usgc_current_mutator->heap_id,
                                     gc::old_cycle_phase(self) == gc::OldCyclePhase::kMarking));
    if (was_marking && !marking) ++counts->cycles_seen;
    was_marking = marking;
    if (marking) ++counts->ops_while_marking;
    int i = static_cast<int>(random.next() % kHolders);
    int j = static_cast<int>(random.next() % kHolders);
    switch (random.next() % 10) {
      case 0:
      case 1:
      case 2:
      case 3: {  // move i's chain to j (j's chain becomes garbage), i emptied
        if (i == j) break;
        Node* chain = holder_at(i)->left;
        write(holder_at(j), &holder_at(j)->left, chain);
        write(holder_at(i), &holder_at(i)->left, nullptr);
        model[j] = model[i];
        model[i] = ChainModel{};
        break;
      }
      case 4:
      case 5:
      case 6: {  // swap: for a moment each chain is held only by a root or the other holder
        roots[1] = holder_at(i)->left;
        roots[2] = holder_at(j)->left;
        write(holder_at(i), &holder_at(i)->left, static_cast<Node*>(roots[2]));
        write(holder_at(j), &holder_at(j)->left, static_cast<Node*>(roots[1]));
        roots[1] = roots[2] = nullptr;
        std::swap(model[i], model[j]);
        break;
      }
      default: {  // a new chain replaces i's
        int length = 20 + static_cast<int>(random.next() % 100);
        bool shared_head = random.next() % 4 == 0;
        build_chain(&roots[2], next_id, length, shared_head);
        write(holder_at(i), &holder_at(i)->left, static_cast<Node*>(roots[2]));
        roots[2] = nullptr;
        model[i] = ChainModel{next_id++, length, shared_head};
        break;
      }
    }
    for (int k = 0; k < 40; ++k) roots[3] = new_node(USGC_GOROUTINE_PRIVATE, -2);  // garbage
    usgc_safepoint_poll();
    if (step % 250 == 249 || step == steps - 1) {
      for (int h = 0; h < kHolders; ++h)
        ASSERT_TRUE(chain_matches(holder_at(h), model[h]))
            << "holder " << h << " step " << step << " " << usgc::testing::seed_note(seed);
    }
    if (step == steps / 2) usgc_gc_collect(USGC_GC_PRIVATE);  // completes a running cycle
  }
}

class PrivateOldCycleTest : public usgc::testing::gc_stress::GcStressFixture {
 protected:
  const char* gc_percent() const override { return "10"; }
  void SetUp() override {
    setenv("USGC_GC_INCREMENTAL", "1", 1);  // the default, whatever the environment says
    GcStressFixture::SetUp();
  }

 private:
  usgc::testing::SavedEnvironmentVariable saved_incremental_{"USGC_GC_INCREMENTAL"};
};

TEST_F(PrivateOldCycleTest, ChainsMovedWhileTheOldGenerationMarksStayIntact) {
  CycleCounts counts;
  run_main([&] { move_chains(usgc::testing::test_seed(), 24000, &counts); });
  EXPECT_GT(counts.cycles_seen, 0u) << "no incremental cycle ran";
  EXPECT_GT(counts.ops_while_marking, 50u) << "too few stores while a cycle marked";
}

TEST_F(PrivateOldCycleTest, ConcurrentMutatorsUnderSharedCollections) {
  const uint64_t seed = usgc::testing::test_seed();
  std::atomic<int> running{3};
  CycleCounts counts[3];
  run_main([&] {
    for (uint64_t g = 0; g < 3; ++g) {
      usgc::testing::go([&, g] {
        move_chains(seed + g, 5000, &counts[g]);
        running.fetch_sub(1);
      });
    }
    usgc::testing::go([&] {
      for (int i = 0; running.load() > 0; ++i) {
        usgc_gc_collect(i % 3 == 0 ? USGC_GC_SHARED : USGC_GC_SHARED_MINOR);
        usgc_yield();
      }
    });
  });
  EXPECT_TRUE(usgc::testing::all_goroutines_finished());
  uint64_t marking_ops =
      counts[0].ops_while_marking + counts[1].ops_while_marking + counts[2].ops_while_marking;
  EXPECT_GT(marking_ops, 50u) << "too few stores while a cycle marked";
}

// ---- the pacer: an old generation that churns stays bounded ----

int64_t count_tree(const Node* node) {
  return node == nullptr ? 0 : 1 + count_tree(node->left) + count_tree(node->right);
}

uint64_t private_bytes_in_use() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  if (usgc_gc_get_stats(&stats) != 0) std::abort();
  return stats.bytes_in_use[USGC_GOROUTINE_PRIVATE];
}

// A goroutine keeps a 1 MiB tree and builds, checks and drops 4 MiB trees (larger than the
// nursery: they are promoted while built and die old, as in binary-trees). Returns the peak
// private bytes in use sampled after each build (the moments the heap is largest), in units of
// the live data (the kept tree plus one big tree).
double churn_peak_over_live() {
  constexpr int kKeptDepth = 14;   // 32767 nodes of 32-byte slots: 1 MiB
  constexpr int kChurnDepth = 16;  // 4 MiB
  constexpr int kRounds = 24;
  double ratio = 0;
  run_main([&] {
    USGC_ROOTS(roots, 2);
    roots[0] = build_tree(kKeptDepth);
    uint64_t live_bytes = 0;
    uint64_t peak_bytes = 0;
    for (int round = 0; round < kRounds; ++round) {
      roots[1] = build_tree(kChurnDepth);
      if (count_tree(static_cast<Node*>(roots[1])) != (int64_t{2} << kChurnDepth) - 1) std::abort();
      uint64_t in_use = private_bytes_in_use();
      if (in_use > peak_bytes) peak_bytes = in_use;
      if (round == 0) live_bytes = in_use;  // nothing dead yet: the kept and one churn tree
      roots[1] = nullptr;
    }
    if (count_tree(static_cast<Node*>(roots[0])) != (int64_t{2} << kKeptDepth) - 1) std::abort();
    ratio = static_cast<double>(peak_bytes) / static_cast<double>(live_bytes);
  });
  return ratio;
}

using PrivatePacerTest = usgc::testing::PrivateHeapTest;

// With USGC_GC_PERCENT=100 a one-pause collector keeps the old generation under about twice the
// live data (plus the nursery); incremental cycles must stay near that although everything
// promoted while a cycle marks survives it. Before the pacer (a cycle's goal based on the old
// generation after its sweep, floating garbage included, and no cycle before the last one's
// sweep ended) the peak grew to several times the live data.
TEST_F(PrivatePacerTest, AChurningOldGenerationStaysBoundedUnderIncrementalCycles) {
  double ratio = churn_peak_over_live();
  std::printf("[ info     ] peak private bytes in use / live bytes: %.2f\n", ratio);
  EXPECT_LT(ratio, 3.0) << "peak private bytes in use / live bytes";
}

}  // namespace
