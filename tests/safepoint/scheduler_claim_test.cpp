// tests/safepoint/scheduler_claim_test.cpp — claiming the slot of a P whose holder is in its
// scheduler loop (USGC_SAFEPOINT_CLAIM, safepoint/stop_the_world.hpp, kScheduling): the requester
// acknowledges it by a compare-and-swap, without a fault, a signal or the holder's thread running;
// a holder that looks afterwards finds its slot claimed and runs no goroutine until the resume;
// with the claim off (the protocol before) the stop waits for the holder. End to end, on the real
// scheduler, stops from a plain thread claim Ps between goroutines and no goroutine runs while the
// world is stopped, and a P whose goroutine ended is claimed while its machine gives the stack
// back.
//
// The first tests drive one P's slot by hand from a test thread (the runtime is started with no
// goroutine, so its own machines leave that idle P alone): the thread acquires the slot, enters
// the scheduler state and then blocks, as a worker's thread descheduled in its loop would.
// Counts and states, never times: waits are on conditions with generous deadlines.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "runtime/goroutine_stack.hpp"
#include "safepoint/stop_the_world.hpp"
#include "safepoint/stop_trace.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/stop_rounds.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {
namespace {

using safepoint::AckKind;
using safepoint::SlotStatus;

class SchedulerClaim : public ClaimTraceRuntimeTest {
 protected:
  safepoint::SafepointSlot* idle_slot() { return idle_last_slot(); }
  // A thread that acquires slot, enters the scheduler state, sets step to 1 and then blocks (as a
  // worker's thread descheduled in its loop) until go_on; then runs `then` (holding the slot).
  // Returns at once if the slot cannot be acquired.
  template <class Then>
  std::thread hold_in_scheduler_loop(safepoint::SafepointSlot* slot, std::atomic<int>& step,
                                     std::atomic<bool>& go_on, Then then) {
    return std::thread([slot, &step, &go_on, then] {
      if (!safepoint::slot_try_acquire(slot)) return;
      safepoint::slot_enter_scheduler(slot);
      step = 1;
      while (!go_on.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
      then();
    });
  }
};

// A P held in the scheduler loop by a thread that does not look (blocked): the stop completes all
// the same, acknowledged by the requester's claim; the holder then finds the slot claimed, waits
// for the resume, and leaves the loop (Running) only after it.
TEST_F(SchedulerClaim, ProcessorInTheSchedulerLoopIsClaimedWithoutItsThread) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::SafepointSlot* slot = idle_slot();
  std::atomic<int> holder_step{0};  // 1: in the loop; 2: may leave; 3: left
  std::atomic<bool> go_on{false};
  std::thread holder = hold_in_scheduler_loop(slot, holder_step, go_on, [&] {
    holder_step = 2;
    safepoint::slot_leave_scheduler(slot);  // about to run a goroutine
    holder_step = 3;
    safepoint::slot_release(slot);
  });
  ASSERT_TRUE(eventually([&] { return holder_step.load() == 1; }));
  EXPECT_EQ(slot->status.load(), SlotStatus::kScheduling);
  const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();

  usgc_stop_info info{};
  std::atomic<bool> stopped{false}, resume{false};
  std::thread requester([&] {  // the stop's holder resumes it: from its own thread
    EXPECT_EQ(usgc_stop_the_world(&info), 0);
    stopped = true;
    while (!resume.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    EXPECT_EQ(usgc_start_the_world(), 0);
  });
  const bool completed = eventually([&] { return stopped.load(); });
  EXPECT_TRUE(completed) << "the stop waited for a holder that was not looking";
  if (completed) {
    EXPECT_EQ(slot->status.load(), SlotStatus::kStoppedScheduling);
    EXPECT_EQ(info.procs_running, 0u);
    safepoint::StopAttribution last = safepoint::stop_attribution_last();
    EXPECT_EQ(last.slots_faulted, 0u);
    safepoint::StopAttributionTotals totals = safepoint::stop_attribution_totals();
    EXPECT_EQ(totals.acknowledgements[static_cast<int>(AckKind::kClaimedScheduler)], 1u);
    EXPECT_EQ(safepoint::safepoint_statistics().scheduler_claims - before.scheduler_claims, 1u);
    // The holder looks now: it must wait, claimed, until the resume.
    go_on = true;
    EXPECT_TRUE(eventually([&] {
      return safepoint::safepoint_statistics().claimed_holder_waits > before.claimed_holder_waits;
    }));
    EXPECT_EQ(holder_step.load(), 2) << "the holder left the scheduler loop while stopped";
  }
  go_on = true;
  resume = true;
  requester.join();
  EXPECT_EQ(safepoint::stop_breakdown_last().signal_rounds, 0u);  // takes the operation lock
  EXPECT_TRUE(eventually([&] { return holder_step.load() == 3; }));
  holder.join();
  EXPECT_EQ(slot->status.load(), SlotStatus::kIdle);
}

// The protocol before (claim off): the holder stays Running in its loop and the stop cannot
// complete until the holder looks (at its scheduler point, which then acknowledges it).
TEST_F(SchedulerClaim, WithoutTheClaimTheStopWaitsForTheHolder) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::set_scheduler_claim(false);
  safepoint::SafepointSlot* slot = idle_slot();
  std::atomic<int> holder_step{0};
  std::atomic<bool> go_on{false};
  std::thread holder = hold_in_scheduler_loop(slot, holder_step, go_on, [&] {
    safepoint::stop_trace::set_next_ack_kind(AckKind::kSchedulerPoint);
    safepoint::scheduler_safepoint(slot);  // acknowledges, waits for the resume
    holder_step = 2;
    safepoint::slot_leave_scheduler(slot);
    safepoint::slot_release(slot);
  });
  ASSERT_TRUE(eventually([&] { return holder_step.load() == 1; }));
  EXPECT_EQ(slot->status.load(), SlotStatus::kRunning);
  std::atomic<bool> stopped{false};
  std::thread requester([&] {
    EXPECT_EQ(usgc_stop_the_world(nullptr), 0);
    stopped = true;
    EXPECT_EQ(usgc_start_the_world(), 0);
  });
  // Short of the stop's one-second warning; it cannot complete without the holder anyway.
  EXPECT_FALSE(eventually([&] { return stopped.load(); }, std::chrono::milliseconds(200)));
  go_on = true;
  requester.join();
  EXPECT_TRUE(stopped.load());
  holder.join();
  EXPECT_EQ(holder_step.load(), 2);
  safepoint::StopAttributionTotals totals = safepoint::stop_attribution_totals();
  EXPECT_EQ(totals.acknowledgements[static_cast<int>(AckKind::kClaimedScheduler)], 0u);
  EXPECT_EQ(totals.acknowledgements[static_cast<int>(AckKind::kSchedulerPoint)], 1u);
}

// A holder that looks before the requester's scan acknowledges by the same CAS itself: one
// acknowledgement, made at its scheduler point, and the requester claims nothing.
TEST_F(SchedulerClaim, HolderThatLooksFirstAcknowledgesOnce) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::SafepointSlot* slot = idle_slot();
  ASSERT_TRUE(safepoint::slot_try_acquire(slot));
  safepoint::slot_enter_scheduler(slot);
  // No request: the scheduler point is a look and nothing more.
  EXPECT_FALSE(safepoint::scheduler_safepoint(slot));
  EXPECT_EQ(slot->status.load(), SlotStatus::kScheduling);
  safepoint::slot_leave_scheduler(slot);
  EXPECT_EQ(slot->status.load(), SlotStatus::kRunning);
  // Released from the loop, the slot is Idle again (a claimed one would be StoppedIdle).
  safepoint::slot_enter_scheduler(slot);
  safepoint::slot_release(slot);
  EXPECT_EQ(slot->status.load(), SlotStatus::kIdle);
}

// A holder that read requested_epoch, was descheduled while the requester claimed its slot,
// finished and resumed that stop, and then won its own CAS: its claim is for a request already
// served. It must be undone, not acknowledged (the acknowledgement would count for no request,
// and the slot would stay claimed with no stop to resume it: the next stop then waited forever
// for this slot while its holder waited for that stop's resume — a hang seen in a full test run).
TEST_F(SchedulerClaim, StaleHolderClaimIsUndoneAndTheNextStopCompletes) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::SafepointSlot* slot = idle_slot();
  ASSERT_TRUE(safepoint::slot_try_acquire(slot));
  safepoint::slot_enter_scheduler(slot);
  const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
  // The stop the holder saw requested: claimed by the requester, then resumed.
  std::thread first([] {
    EXPECT_EQ(usgc_stop_the_world(nullptr), 0);
    EXPECT_EQ(usgc_start_the_world(), 0);
  });
  first.join();
  EXPECT_EQ(safepoint::safepoint_statistics().scheduler_claims - before.scheduler_claims, 1u);
  ASSERT_EQ(slot->status.load(), SlotStatus::kScheduling);
  const uint32_t served = slot->requested_epoch.load();
  ASSERT_EQ(slot->acked_epoch.load(), served);
  // The holder's late claim for it.
  EXPECT_FALSE(safepoint::holder_claim_scheduling_slot(slot, served, AckKind::kSchedulerPoint));
  EXPECT_EQ(slot->status.load(), SlotStatus::kScheduling) << "the stale claim was not undone";
  EXPECT_EQ(safepoint::safepoint_statistics().stale_claims - before.stale_claims, 1u);
  ASSERT_EQ(slot->status.load(), SlotStatus::kScheduling);  // a next stop would hang otherwise
  // The next stop claims the slot, though its holder never looks.
  std::atomic<bool> stopped{false};
  std::thread second([&] {
    EXPECT_EQ(usgc_stop_the_world(nullptr), 0);
    stopped = true;
    EXPECT_EQ(usgc_start_the_world(), 0);
  });
  EXPECT_TRUE(eventually([&] { return stopped.load(); }));
  second.join();
  EXPECT_EQ(safepoint::safepoint_statistics().scheduler_claims - before.scheduler_claims, 2u);
  safepoint::slot_leave_scheduler(slot);
  EXPECT_EQ(slot->status.load(), SlotStatus::kRunning);
  safepoint::slot_release(slot);
  EXPECT_EQ(slot->status.load(), SlotStatus::kIdle);
}

// End to end: a plain thread stops the world while goroutines park and wake all the time (their
// Ps go through the scheduler loop between them) and others poll; some stops claim a P in its
// loop, and no goroutine makes progress while the world is stopped.
TEST_F(SchedulerClaim, StopsClaimProcessorsBetweenGoroutinesAndNothingRunsWhileStopped) {
  std::atomic<bool> done{false};
  std::atomic<uint64_t> progress{0};
  constexpr int kSleepers = 8;
  for (int i = 0; i < kSleepers; ++i) {
    go([&] {
      while (!done.load()) {
        usgc_sleep_ns(50'000);
        progress.fetch_add(1);
      }
    });
  }
  go([&] {
    while (!done.load()) {
      progress.fetch_add(1);
      usgc_yield();
    }
  });
  ASSERT_TRUE(eventually([&] { return progress.load() > 100; }));
  int stops = 0, moved = 0;
  // Until a few stops claimed a P in its loop (bounded: every stop claims with some chance).
  for (; stops < 20000 && safepoint::safepoint_statistics().scheduler_claims < 5; ++stops) {
    ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
    const uint64_t at_stop = progress.load();
    for (int spin = 0; spin < 2000; ++spin) __builtin_ia32_pause();
    if (progress.load() != at_stop) ++moved;
    ASSERT_EQ(usgc_start_the_world(), 0);
  }
  done = true;
  // The goroutines read `done` and `progress`, locals of this frame: they finish before it goes.
  ASSERT_TRUE(all_goroutines_finished()) << usgc_goroutine_count() << " goroutines still alive";
  EXPECT_EQ(moved, 0) << "a goroutine ran while the world was stopped";
  EXPECT_GE(safepoint::safepoint_statistics().scheduler_claims, 5u)
      << "no stop of " << stops << " claimed a P in its scheduler loop";
}

// A goroutine that ends gives its record and stack back with its P in the scheduler state: past
// the goroutine caches the stack goes to the pool, whose decommit may make the queue's batch call
// (up to ~1 ms), and a stop claims that P instead of waiting for it. The pool's decommit hook
// holds the first exiting machine in its decommit until a stop requested meanwhile completed.
namespace exit_decommit {
std::atomic<int> g_state{0};  // 0: hook off; 1: armed; 2: a machine is held in its decommit
std::atomic<SlotStatus> g_status{SlotStatus::kIdle};
std::atomic<bool> g_release{false};
void hold_first_exit() {
  safepoint::SafepointSlot* slot = safepoint::current_slot();
  if (slot == nullptr) return;  // the scavenger's trim, not an exit
  int armed = 1;
  if (!g_state.compare_exchange_strong(armed, 2)) return;
  g_status = slot->status.load();
  while (!g_release.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
}
}  // namespace exit_decommit

// Disarms the hook, releases a held machine and waits for the goroutines however the test
// leaves (an ASSERT returns early): a hook left armed would hold the next test's first exiting
// goroutine forever, and the goroutines read the test's gates.
struct ExitDecommitHookDisarm {
  ~ExitDecommitHookDisarm() {
    exit_decommit::g_release = true;
    runtime::stack_pool_set_decommit_hook_for_testing(nullptr);
    exit_decommit::g_state = 0;
    EXPECT_TRUE(all_goroutines_finished()) << usgc_goroutine_count() << " goroutines still alive";
  }
};

TEST_F(SchedulerClaim, AGoroutineEndingInAStackDecommitDoesNotHoldUpAStop) {
  ASSERT_TRUE(all_goroutines_finished());
  constexpr int kGoroutines = 2000;  // more than the goroutine caches keep (64 per P, 1 024)
  constexpr int kWaves = 8;  // the scavenger may decommit a wave's stacks before an exit does
  // Outlive `disarm`, which waits for the goroutines that read them.
  usgc_waitgroup gates[kWaves] = {};
  std::atomic<int> started_counts[kWaves] = {};
  exit_decommit::g_release = false;
  exit_decommit::g_state = 1;
  runtime::stack_pool_set_decommit_hook_for_testing(exit_decommit::hold_first_exit);
  ExitDecommitHookDisarm disarm;
  int waves = 0;
  for (; waves < kWaves && exit_decommit::g_state.load() != 2; ++waves) {
    std::atomic<int>& started = started_counts[waves];
    usgc_waitgroup& gate = gates[waves];
    ASSERT_EQ(usgc_waitgroup_add(&gate, 1), 0);
    for (int i = 0; i < kGoroutines; ++i) {
      go([&gate, &started] {
        started.fetch_add(1);
        usgc_waitgroup_wait(&gate);
      });
    }
    ASSERT_TRUE(eventually([&] { return started.load() == kGoroutines; }));
    ASSERT_EQ(usgc_waitgroup_done(&gate), 0);  // they all end
    // Until a machine is held in its decommit or the wave has ended.
    ASSERT_TRUE(eventually(
        [&] { return exit_decommit::g_state.load() == 2 || usgc_goroutine_count() == 0; }));
    if (exit_decommit::g_state.load() == 2) break;
  }
  ASSERT_EQ(exit_decommit::g_state.load(), 2)
      << "no exiting goroutine's stack decommit in " << waves << " waves of " << kGoroutines;
  const SlotStatus status = exit_decommit::g_status.load();
  EXPECT_TRUE(status == SlotStatus::kScheduling || status == SlotStatus::kStoppedScheduling)
      << "the exiting machine's slot was in status " << static_cast<int>(status);
  std::atomic<bool> stopped{false};
  std::thread requester([&] {
    EXPECT_EQ(usgc_stop_the_world(nullptr), 0);
    stopped = true;
    EXPECT_EQ(usgc_start_the_world(), 0);
  });
  EXPECT_TRUE(eventually([&] { return stopped.load(); }))
      << "the stop waited for a machine held in its stack's decommit";
  exit_decommit::g_release = true;
  requester.join();
}

}  // namespace
}  // namespace usgc::testing
