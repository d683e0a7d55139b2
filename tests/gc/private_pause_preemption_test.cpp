// tests/gc/private_pause_preemption_test.cpp — the preemption-deferral rule (gc/mutator.hpp,
// Mutator::pause_defers_preemption; gc/private_collector.cpp, poll_for_safepoint), proven by
// what another goroutine on the same P sees when it runs, never with durations:
//   - a preemption requested before a minor collection is not served at the polls of its
//     marking: the other goroutine runs after the collection, not inside it, and the request
//     is served as the pause ends (the goroutine yields exactly once);
//   - the same holds for a step of an old-generation cycle (a mark slice at a refill);
//   - a one-pause full collection still yields at its polls (it is not bounded): the other
//     goroutine runs inside it.
// One P; the monitor's own preemption is off (USGC_PREEMPT_US=0): each test makes the one
// request it counts.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/private_pacer.hpp"
#include "safepoint/stop_the_world.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/private_heap_fixture.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
namespace safepoint = usgc::safepoint;
using usgc::testing::build_old_list;
using usgc::testing::counter;
using usgc::testing::new_node;
using usgc::testing::Node;
using usgc::testing::run_main;
using usgc::testing::write;

constexpr int kYoungNodes = 8192;  // a minor collection marks them all: 8 polls at least

// The monitor's preemption off for the test's runtime (the member is built before SetUp).
class PrivatePausePreemptionTest : public usgc::testing::PrivateHeapTest {
  usgc::testing::SavedEnvironmentVariable preempt_{"USGC_PREEMPT_US", "0"};
};

uint64_t preemptions() {
  return safepoint::safepoint_statistics().preemptions;
}

bool preemption_pending(safepoint::SafepointSlot* slot) {
  return slot->preempt_requested.load(std::memory_order_relaxed) != 0;
}

// A list of `count` young private nodes rooted in *root (newest first, through `left`).
void build_young_list(void** root, int count) {
  for (int i = 0; i < count; ++i) {
    Node* node = new_node(USGC_GOROUTINE_PRIVATE, i);
    ASSERT_NE(node, nullptr);
    write(node, &node->left, static_cast<Node*>(*root));
    *root = node;
  }
}

// Another goroutine on the P, which waits (yielding) until armed, then records what `probe`
// says about the collecting goroutine at the moment it runs: inside or outside its pause.
class Observer {
 public:
  explicit Observer(std::function<bool()> probe) : probe_(std::move(probe)) {
    usgc::testing::go([this] {
      while (!armed_.load(std::memory_order_acquire)) usgc_yield();
      seen_.store(probe_() ? 1 : 0, std::memory_order_release);
    });
  }
  // Call just before the pause: the observer runs at the collecting goroutine's next yield.
  void arm() { armed_.store(true, std::memory_order_release); }
  // Waits until the observer ran; 1 if it ran inside the pause, 0 after it.
  int seen() {
    EXPECT_TRUE(usgc::testing::eventually([&] {
      return seen_.load(std::memory_order_acquire) >= 0;
    })) << "the observer never ran";
    return seen_.load(std::memory_order_acquire);
  }
  // A test that stopped early: the observer still ends before it is destroyed.
  ~Observer() {
    arm();
    (void)seen();
  }
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

 private:
  std::function<bool()> probe_;
  std::atomic<bool> armed_{false};
  std::atomic<int> seen_{-1};
};

TEST_F(PrivatePausePreemptionTest, AMinorCollectionYieldsAfterItsPauseNotInsideIt) {
  run_main([&] {
    safepoint::SafepointSlot* slot = safepoint::current_slot();
    ASSERT_NE(slot, nullptr);
    gc::Mutator& m = usgc::testing::current_private_heap();
    Observer observer([&m] { return m.collecting; });
    USGC_ROOTS(roots, 1);
    ASSERT_NO_FATAL_FAILURE(build_young_list(&roots[0], kYoungNodes));
    const uint64_t minors = counter(gc::g_counters.private_minor_collections);
    const uint64_t before = preemptions();
    observer.arm();
    safepoint::request_preemption(slot, /*signal_thread=*/false);
    gc::collect_private(m, "test");
    ASSERT_EQ(counter(gc::g_counters.private_minor_collections), minors + 1);
    EXPECT_GE(counter(gc::g_counters.last_private_objects_marked),
              static_cast<uint64_t>(kYoungNodes));
    EXPECT_EQ(preemptions(), before + 1) << "the request was not served once, after the pause";
    EXPECT_FALSE(preemption_pending(slot));
    EXPECT_FALSE(m.pause_defers_preemption) << "preemption still deferred after the pause";
    EXPECT_EQ(observer.seen(), 0) << "another goroutine ran inside the minor collection";
  });
}

TEST_F(PrivatePausePreemptionTest, AMarkSliceYieldsAfterItsPauseNotInsideIt) {
  run_main([&] {
    safepoint::SafepointSlot* slot = safepoint::current_slot();
    gc::Mutator& m = usgc::testing::current_private_heap();
    Observer observer([&m] { return m.pause_defers_preemption; });
    USGC_ROOTS(roots, 1);
    ASSERT_EQ(build_old_list(&roots[0], 200000), 0);  // old: the cycle's mark traces them
    usgc::testing::make_old_cycle_due();
    gc::collect_private(m, "test");  // starts the cycle after its minor collection
    ASSERT_EQ(gc::old_cycle_phase(m), gc::OldCyclePhase::kMarking);
    ASSERT_GT(m.old_grey.size(), 0u);
    // Allocation past the pacer's runway: the slice is the largest (kMaxSliceObjects).
    m.run_bytes_taken += gc::pacer_runway_bytes(m);
    const uint64_t marked = m.old_cycle_marked;
    const uint64_t before = preemptions();
    observer.arm();
    safepoint::request_preemption(slot, /*signal_thread=*/false);
    gc::old_cycle_refill_step(m);  // one mark slice: thousands of objects, polls between them
    ASSERT_GT(m.old_cycle_marked, marked + 2048) << "the slice marked too little to poll";
    EXPECT_EQ(preemptions(), before + 1);
    EXPECT_FALSE(preemption_pending(slot));
    EXPECT_EQ(observer.seen(), 0) << "another goroutine ran inside the mark slice";
  });
}

TEST_F(PrivatePausePreemptionTest, AFullCollectionStillYieldsAtItsPolls) {
  run_main([&] {
    safepoint::SafepointSlot* slot = safepoint::current_slot();
    gc::Mutator& m = usgc::testing::current_private_heap();
    Observer observer([&m] { return m.collecting; });
    USGC_ROOTS(roots, 1);
    ASSERT_EQ(build_old_list(&roots[0], 100000), 0);
    const uint64_t before = preemptions();
    observer.arm();
    safepoint::request_preemption(slot, /*signal_thread=*/false);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);  // one full pause marking 100 000 objects
    EXPECT_EQ(preemptions(), before + 1);
    EXPECT_FALSE(preemption_pending(slot));
    EXPECT_EQ(observer.seen(), 1) << "a full collection no longer yields at its polls";
  });
}

}  // namespace
