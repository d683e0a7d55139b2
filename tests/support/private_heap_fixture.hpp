// tests/support/private_heap_fixture.hpp — what the tests of a goroutine's private heap share
// (its collections, its incremental old-generation cycle, its pauses and idle steps): the
// fixture that starts the runtime in the configuration they measure against, and the steps they
// take the heap through, each written once.
//
// The configuration: one P (the goroutine under test is never stolen from or preempted by
// another worker, so its counts are its own), incremental old-generation cycles on
// (USGC_GC_INCREMENTAL=1) and USGC_GC_PERCENT at its default (100) whatever the environment
// says, unless the test names another value (gc_percent()). Both variables are put back after
// usgc_shutdown. The mutators use the public API (usgc/usgc.h) and the node of
// tests/support/gc_node.hpp; the helpers reach gc/ for what no public call does: the collector's
// counters, the goroutine's Mutator (its pacer's state, to make a cycle due) and a minor
// collection on demand. Every helper runs on the goroutine under test (inside run_main).
#pragma once

#include <stdlib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/private_old_cycle.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "usgc/usgc.h"

namespace usgc::testing {

class PrivateHeapTest : public RuntimeTest {
 protected:
  uint32_t procs() const override { return 1; }
  // USGC_GC_PERCENT for this test; nullptr: the default (100).
  virtual const char* gc_percent() const { return nullptr; }
  void SetUp() override {
    setenv("USGC_GC_INCREMENTAL", "1", 1);
    if (const char* percent = gc_percent())
      setenv("USGC_GC_PERCENT", percent, 1);
    else
      unsetenv("USGC_GC_PERCENT");
    RuntimeTest::SetUp();
  }

 private:
  // Declared before the runtime starts (members are built before SetUp), destroyed after TearDown.
  SavedEnvironmentVariable saved_incremental_{"USGC_GC_INCREMENTAL"};
  SavedEnvironmentVariable saved_percent_{"USGC_GC_PERCENT"};
};

// A collector counter (gc/gc_state.hpp, g_counters) now.
template <typename Word>  // std::atomic<uint64_t> or gc::StripedCounter
uint64_t counter(const Word& value) {
  return value.load(std::memory_order_relaxed);
}

// The calling goroutine's private heap.
inline gc::Mutator& current_private_heap() {
  return *gc::mutator_of(usgc_current_mutator);
}

// Puts the pacer's trigger at 0: an old-generation cycle is due at the next collection (or idle
// step). The next cycle's mark resets the pacer's state.
inline void make_old_cycle_due() {
  gc::Mutator& m = current_private_heap();
  m.old_bytes_after_full = 0;
  m.full_budget_bytes = 0;
}

// A list of `count` old nodes (build_old_list) with every odd node unlinked: every block holds
// survivors (the even values) and garbage.
inline void build_old_list_half_garbage(void** root, int count) {
  ASSERT_EQ(build_old_list(root, count), 0);
  drop_odd_nodes(static_cast<Node*>(*root));
}

// Makes a cycle due and runs it to its end (its mark, the minor collection that ends it, its
// whole sweep), as a goroutine about to wait does.
inline void run_whole_old_cycle() {
  gc::Mutator& m = current_private_heap();
  if (gc::old_cycle_active(m)) gc::old_cycle_finish_before_waiting();
  make_old_cycle_due();
  ASSERT_TRUE(gc::old_cycle_idle_work_pending());
  gc::old_cycle_finish_before_waiting();
  ASSERT_FALSE(gc::old_cycle_active(m));
}

// Allocates `count` nodes, keeping every `keep_every`-th one on a list rooted in *kept (through
// `left`, newest first, values the allocation's index), the rest garbage. Every new node must
// come back zeroed (a freed slot's bytes are cleared before it is handed out again).
inline void allocate_garbage(void** kept, int count, int keep_every) {
  USGC_ROOTS(roots, 1);
  for (int i = 0; i < count; ++i) {
    auto* node = static_cast<Node*>(usgc_alloc(node_type(), USGC_GOROUTINE_PRIVATE));
    ASSERT_NE(node, nullptr);
    ASSERT_TRUE(node->left == nullptr && node->right == nullptr && node->value == 0)
        << "allocation " << i << " returned a slot holding a dead object's bytes";
    node->value = i;
    if (i % keep_every == 0) {
      roots[0] = node;
      write(node, &node->left, static_cast<Node*>(*kept));
      *kept = roots[0];
    }
  }
}

}  // namespace usgc::testing
