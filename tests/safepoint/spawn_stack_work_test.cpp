// tests/safepoint/spawn_stack_work_test.cpp — a spawn's stack work does not hold up a stop
// (runtime/scheduler.hpp, SpawnStackWork): a spawn that finds no cached goroutine takes its stack
// from the pool (its lock, a refill's system calls, first touches of new pages) with its P's slot
// in the scheduler state, so a stop claims that P by a CAS instead of waiting for the spawner's
// thread; the spawner then runs on only after the resume. A stop already requested when the work
// begins is acknowledged there by the spawner itself. With the claim off (the protocol before) the
// stop waits for the spawn. The spawn's steps are in the stop's attribution trace.
//
// The pool's stack-work hook holds the first spawning goroutine that reaches a point of its stack
// work (a goroutine spawns parked children until one of its spawns misses the goroutine caches).
// Counts and states, never times: waits are on conditions with generous deadlines.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gc/mutator.hpp"
#include "kernel_iface/library_call_scope.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/stop_the_world.hpp"
#include "safepoint/stop_trace.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/stop_rounds.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {
namespace {

using runtime::SpawnStackWorkPoint;
using safepoint::AckKind;
using safepoint::SlotStatus;

// The hook's state: which point it holds at, whether it holds a thread now, what it saw.
struct Held {
  std::atomic<int> state{0};  // 0: off; 1: armed; 2: a spawning goroutine's thread is held
  std::atomic<SpawnStackWorkPoint> point{SpawnStackWorkPoint::kStackTaken};
  std::atomic<SlotStatus> status{SlotStatus::kIdle};
  std::atomic<safepoint::SafepointSlot*> slot{nullptr};
  std::atomic<bool> release{false};
  std::atomic<bool> spawn_returned{false};  // the held spawn's usgc_go returned
  // usgc_go_object spawns: the object of the spawn under way, and whether the held spawner's top
  // frame roots it.
  std::atomic<void*> object{nullptr};
  std::atomic<bool> object_rooted{false};
};
Held g_held;

void hold_first_spawn(SpawnStackWorkPoint point) {
  safepoint::SafepointSlot* slot = safepoint::current_slot();
  if (slot == nullptr || point != g_held.point.load()) return;  // the test thread's own spawns
  int armed = 1;
  if (!g_held.state.compare_exchange_strong(armed, 2)) return;
  g_held.slot = slot;
  g_held.status = slot->status.load();
  gc::Mutator* spawner = gc::current_mutator();
  g_held.object_rooted = spawner != nullptr && spawner->abi.frames != nullptr &&
                         spawner->abi.frames->count == 1 &&
                         spawner->abi.frames->slots[0] == g_held.object.load();
  // The hold stands for a long step of usgc's own stack work: the asynchronous-safepoint handler
  // leaves it alone as it leaves usgc's code (otherwise it would stop the spawner in this test
  // code's sleep, and give its P up around the call, and the stop would not need the claim).
  kernel::LibraryCallScope as_usgc_code;
  while (!g_held.release.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
}

class SpawnStackWork : public ClaimTraceRuntimeTest {
 protected:
  void TearDown() override {
    // However the test left (an ASSERT returns early): release a held spawner, disarm the hook,
    // let the spawner's children end.
    g_held.release = true;
    runtime::set_spawn_stack_work_hook_for_testing(nullptr);
    g_held.state = 0;
    open_gate();
    ClaimTraceRuntimeTest::TearDown();
  }

  // A goroutine that spawns parked children (they wait on children_gate_) until the hook holds
  // one of its spawns at `point`. Returns once a spawn is held. with_objects: usgc_go_object
  // spawns, each child given a fresh shared node (value 7) held by nothing else, which it checks
  // once the gate opens (objects_intact_ counts the intact ones).
  void hold_a_spawn_at(SpawnStackWorkPoint point, bool with_objects = false) {
    g_held.point = point;
    g_held.release = false;
    g_held.spawn_returned = false;
    g_held.slot = nullptr;
    g_held.object = nullptr;
    g_held.object_rooted = false;
    g_held.state = 1;
    runtime::set_spawn_stack_work_hook_for_testing(hold_first_spawn);
    ASSERT_EQ(usgc_waitgroup_add(&children_gate_, 1), 0);
    gate_added_ = true;
    go([this, with_objects] {
      // More than the goroutine caches keep (64 per P, 1 024 global): a spawn takes a pool stack.
      for (int i = 0; i < 4000 && g_held.state.load() == 1; ++i) {
        const bool held_before = g_held.state.load() == 2;
        if (with_objects) {
          Node* node = try_new_node(USGC_GOROUTINE_SHARED, 7);
          if (node == nullptr) break;
          g_held.object = node;
          ++objects_spawned_;
          EXPECT_EQ(usgc_go_object(
                        [](void* object) {
                          usgc_waitgroup_wait(&g_children_gate_of_objects->children_gate_);
                          if (static_cast<Node*>(object)->value == 7)
                            ++g_children_gate_of_objects->objects_intact_;
                        },
                        node),
                    0);
        } else {
          go([this] { usgc_waitgroup_wait(&children_gate_); });
        }
        if (!held_before && g_held.state.load() == 2) g_held.spawn_returned = true;
      }
    });
    ASSERT_TRUE(eventually([] { return g_held.state.load() == 2; }))
        << "no spawn took its stack from the pool";
  }

  // A plain thread that stops the world (`stopped` once it is), keeps it stopped until `resume`,
  // then resumes it.
  static std::thread stop_from_a_thread(std::atomic<bool>& stopped, std::atomic<bool>& resume) {
    return std::thread([&stopped, &resume] {
      EXPECT_EQ(usgc_stop_the_world(nullptr), 0);
      stopped = true;
      while (!resume.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
      EXPECT_EQ(usgc_start_the_world(), 0);
    });
  }

  // The spawner's children wait on the gate until the test (or TearDown) opens it, once.
  void open_gate() {
    if (gate_added_ && !gate_open_) {
      EXPECT_EQ(usgc_waitgroup_done(&children_gate_), 0);
    }
    gate_open_ = true;
  }
  usgc_waitgroup children_gate_ = USGC_WAITGROUP_INIT;
  bool gate_added_ = false, gate_open_ = false;
  std::atomic<int> objects_spawned_{0}, objects_intact_{0};
  static SpawnStackWork* g_children_gate_of_objects;  // the test whose children read its fields
};
SpawnStackWork* SpawnStackWork::g_children_gate_of_objects = nullptr;

// The spawner is held inside its stack work: a stop completes all the same, by the requester's
// claim of the spawner's P (no fault, no signal); the spawner, let go while the world is stopped,
// does not return from usgc_go before the resume.
TEST_F(SpawnStackWork, AStopClaimsTheProcessorOfASpawnInItsStackWork) {
  ASSERT_TRUE(all_goroutines_finished());
  const uint64_t works_before =
      runtime::g_scheduler.spawn_claimable_stack_works.load(std::memory_order_relaxed);
  hold_a_spawn_at(SpawnStackWorkPoint::kStackTaken);
  EXPECT_EQ(g_held.status.load(), SlotStatus::kScheduling);
  EXPECT_GT(runtime::g_scheduler.spawn_claimable_stack_works.load(std::memory_order_relaxed),
            works_before);
  const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
  std::atomic<bool> stopped{false}, resume{false};
  std::thread requester = stop_from_a_thread(stopped, resume);
  const bool completed = eventually([&] { return stopped.load(); });
  EXPECT_TRUE(completed) << "the stop waited for a spawn in its stack work";
  if (completed) {
    EXPECT_EQ(g_held.slot.load()->status.load(), SlotStatus::kStoppedScheduling);
    const safepoint::StopAttributionTotals totals = safepoint::stop_attribution_totals();
    EXPECT_GE(totals.acknowledgements[static_cast<int>(AckKind::kClaimedScheduler)], 1u);
    EXPECT_GE(safepoint::safepoint_statistics().scheduler_claims - before.scheduler_claims, 1u);
    // Let the spawner go on: it finishes its work, then waits for the resume.
    g_held.release = true;
    EXPECT_TRUE(eventually([&] {
      return safepoint::safepoint_statistics().claimed_holder_waits > before.claimed_holder_waits;
    }));
    EXPECT_FALSE(g_held.spawn_returned.load()) << "the spawn went on while the world was stopped";
  }
  g_held.release = true;
  resume = true;
  requester.join();
  EXPECT_TRUE(eventually([] { return g_held.spawn_returned.load(); }));
}

// The protocol before (USGC_SAFEPOINT_CLAIM=0): the spawner's slot stays Running through its
// stack work, and the stop cannot complete until the spawn is done and the spawner polls.
TEST_F(SpawnStackWork, WithoutTheClaimTheStopWaitsForTheSpawn) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::set_scheduler_claim(false);
  hold_a_spawn_at(SpawnStackWorkPoint::kStackTaken);
  EXPECT_EQ(g_held.status.load(), SlotStatus::kRunning);
  std::atomic<bool> stopped{false}, resume{true};  // resumed as soon as stopped
  std::thread requester = stop_from_a_thread(stopped, resume);
  // Short of the stop's one-second warning; it cannot complete without the spawner anyway.
  EXPECT_FALSE(eventually([&] { return stopped.load(); }, std::chrono::milliseconds(200)));
  g_held.release = true;
  requester.join();
  EXPECT_TRUE(stopped.load());
}

// A stop requested while the spawner's slot is still Running (its requester found it so and waits
// for it) is acknowledged by the spawner as its stack work begins, not after the work.
TEST_F(SpawnStackWork, AStopRequestedBeforeTheWorkIsAcknowledgedAsItBegins) {
  ASSERT_TRUE(all_goroutines_finished());
  const uint64_t acks_before =
      runtime::g_scheduler.spawn_stack_work_acknowledgements.load(std::memory_order_relaxed);
  hold_a_spawn_at(SpawnStackWorkPoint::kBegin);
  EXPECT_EQ(g_held.status.load(), SlotStatus::kRunning);
  safepoint::SafepointSlot* slot = g_held.slot.load();
  std::atomic<bool> stopped{false}, resume{false};
  std::thread requester = stop_from_a_thread(stopped, resume);
  // The request reached the held spawner's slot, which stays unacknowledged while it is held.
  ASSERT_TRUE(eventually([&] { return safepoint::safepoint_requested(slot); }));
  EXPECT_FALSE(eventually([&] { return stopped.load(); }, std::chrono::milliseconds(50)));
  g_held.release = true;
  EXPECT_TRUE(eventually([&] { return stopped.load(); }));
  EXPECT_EQ(runtime::g_scheduler.spawn_stack_work_acknowledgements.load(std::memory_order_relaxed) -
                acks_before,
            1u);
  EXPECT_FALSE(g_held.spawn_returned.load()) << "the spawn went on while the world was stopped";
  resume = true;
  requester.join();
  EXPECT_TRUE(eventually([] { return g_held.spawn_returned.load(); }));
}

// usgc_go_object: the object is rooted in a frame of the spawner while its stack work may stop,
// and a shared collection that stops the world meanwhile (claiming the spawner's P) keeps it.
TEST_F(SpawnStackWork, AnObjectSpawnsStackWorkIsClaimableWithItsObjectRooted) {
  ASSERT_TRUE(all_goroutines_finished());
  g_children_gate_of_objects = this;
  hold_a_spawn_at(SpawnStackWorkPoint::kStackTaken, /*with_objects=*/true);
  EXPECT_EQ(g_held.status.load(), SlotStatus::kScheduling);
  EXPECT_TRUE(g_held.object_rooted.load()) << "the spawn's object is not in the spawner's frames";
  usgc_gc_stats before{};
  before.version = USGC_GC_STATS_VERSION;
  ASSERT_EQ(usgc_gc_get_stats(&before), 0);
  std::atomic<int> collected{-1};
  go([&collected] { collected = usgc_gc_collect(USGC_GC_SHARED); });
  EXPECT_TRUE(eventually([&] { return collected.load() != -1; }))
      << "the shared collection waited for a spawn in its stack work";
  EXPECT_EQ(collected.load(), 0);
  usgc_gc_stats after{};
  after.version = USGC_GC_STATS_VERSION;
  ASSERT_EQ(usgc_gc_get_stats(&after), 0);
  EXPECT_GT(after.shared_collections, before.shared_collections);
  g_held.release = true;
  EXPECT_TRUE(eventually([] { return g_held.spawn_returned.load(); }));
  open_gate();
  EXPECT_TRUE(eventually([&] { return objects_intact_.load() == objects_spawned_.load(); }))
      << objects_intact_.load() << " of " << objects_spawned_.load() << " objects intact";
}

// The attribution trace's spawn steps: a stop whose last P was held in a spawn's stack work (the
// claim off, so the stop waits for it) splits that P's time from its arming by spawn step, and
// the step when armed is the one the spawner was held in.
TEST_F(SpawnStackWork, TheTraceSplitsTheLastProcessorsTimeBySpawnStep) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::set_scheduler_claim(false);
  hold_a_spawn_at(SpawnStackWorkPoint::kStackTaken);
  std::atomic<bool> stopped{false}, resume{true};  // resumed as soon as stopped
  std::thread requester = stop_from_a_thread(stopped, resume);
  ASSERT_TRUE(eventually([&] { return safepoint::safepoint_requested(g_held.slot.load()); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // time in the step, to be split
  g_held.release = true;
  requester.join();
  ASSERT_TRUE(stopped.load());
  const safepoint::StopAttribution last = safepoint::stop_attribution_last();
  ASSERT_TRUE(last.valid);
  EXPECT_EQ(last.last_slot, g_held.slot.load()->index);
  EXPECT_EQ(last.last_activity, safepoint::ProcessorActivity::kSpawning);
  EXPECT_TRUE(last.spawn_steps_known);
  // Held after its stack was taken, before the record: the pool's step (its lock, released).
  EXPECT_EQ(last.spawn_step_at_arm, safepoint::SpawnStep::kPoolLock);
  uint64_t split_ns = 0;
  for (uint64_t ns : last.spawn_step_ns) split_ns += ns;
  EXPECT_GT(last.spawn_step_ns[static_cast<int>(safepoint::SpawnStep::kPoolLock)], 0u);
  EXPECT_LE(split_ns, last.time_to_safepoint_ns);
  EXPECT_GT(split_ns, 0u);
}

}  // namespace
}  // namespace usgc::testing
