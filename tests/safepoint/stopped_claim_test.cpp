// tests/safepoint/stopped_claim_test.cpp — claiming the slot of a P still stopped by an earlier
// request (safepoint/stop_the_world.hpp, kStoppedAtSafepoint): a holder that acknowledged one stop
// and has not come back from its resume yet (asleep on resumed_epoch, or woken and waiting for a
// CPU: under load the next stop found its P that way in most of its slow stops,
// docs/benchmarks.md 2026-12-06 afternoon) is still at its safepoint, so the next stop claims it by
// a compare-and-swap instead of waiting for its thread; the holder, coming back, finds the slot
// claimed and runs nothing until that stop resumes too. With the claims off (the protocol before)
// the second stop waits for the holder.
//
// One P's slot is driven by hand from a test thread (the runtime runs no goroutine, so its own
// machines leave that idle P alone): the thread acquires the slot and acknowledges stops at its
// scheduler point; safepoint::set_before_leaving_safepoint_for_test holds it after a resume, as a
// thread the kernel has not run yet. Counts and states, never times.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

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

// The hook's state: the slot it holds back, whether it holds now, and whether it may let go.
std::atomic<safepoint::SafepointSlot*> g_held_slot{nullptr};
std::atomic<bool> g_holding{false};
std::atomic<bool> g_let_go{false};

void hold_after_resume(safepoint::SafepointSlot* slot) {
  if (slot != g_held_slot.load()) return;
  g_holding = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!g_let_go.load() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  g_holding = false;
}

class StoppedClaim : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    g_held_slot = nullptr;
    g_holding = false;
    g_let_go = false;
    safepoint::set_before_leaving_safepoint_for_test(hold_after_resume);
    safepoint::set_stop_trace_enabled(true);
    safepoint::reset_stop_attribution_totals();
  }
  void TearDown() override {
    g_let_go = true;
    done = true;
    if (holding.joinable()) holding.join();  // a test that stopped early
    safepoint::set_before_leaving_safepoint_for_test(nullptr);
    safepoint::set_scheduler_claim(true);
    safepoint::set_stop_trace_enabled(false);
    RuntimeTest::TearDown();
  }
  // Takes the last slot (idle) and starts `holding`: a thread that holds it and acknowledges
  // stops at its scheduler point (reach_safepoint) until `done`, counting in `served` its returns
  // from reach_safepoint that stopped, and releases the slot last. The hook holds it after a
  // resume (g_held_slot). Returns the slot, Running.
  safepoint::SafepointSlot* start_holder() {
    safepoint::SafepointSlot* slot = idle_last_slot();
    g_held_slot = slot;
    holding = std::thread([this, slot] {
      if (!safepoint::slot_try_acquire(slot)) return;
      while (!done.load()) {
        if (safepoint::safepoint_requested(slot)) {
          safepoint::stop_trace::set_next_ack_kind(AckKind::kSchedulerPoint);
          if (safepoint::reach_safepoint(slot, false)) ++served;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      safepoint::slot_release(slot);
    });
    EXPECT_TRUE(eventually([&] { return slot->status.load() == SlotStatus::kRunning; }));
    return slot;
  }
  std::atomic<bool> done{false};
  std::atomic<int> served{0};
  std::thread holding;
  // A stop requested and resumed from a thread of its own (a stop is resumed by its requester):
  // `stopped` once stopped; resumes when `resume`.
  std::thread requester(std::atomic<bool>& stopped, std::atomic<bool>& resume) {
    return std::thread([&stopped, &resume] {
      EXPECT_EQ(usgc_stop_the_world(nullptr), 0);
      stopped = true;
      while (!resume.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
      EXPECT_EQ(usgc_start_the_world(), 0);
    });
  }
  uint64_t acks(AckKind kind) {
    return safepoint::stop_attribution_totals().acknowledgements[static_cast<int>(kind)];
  }
};

// The holder acknowledges the first stop at its scheduler point and is held after its resume:
// the second stop completes all the same, by the requester's claim (no fault, no signal, no work
// of the holder's thread); the holder, let go, finds its slot claimed and stays stopped until the
// second stop resumes; then it runs on, with nothing more to acknowledge.
TEST_F(StoppedClaim, SlotNotBackFromAResumeIsClaimedByTheNextStop) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::SafepointSlot* slot = start_holder();
  const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();

  std::atomic<bool> first_stopped{false}, first_resume{true};
  std::thread first = requester(first_stopped, first_resume);
  first.join();  // stopped (acknowledged at the holder's scheduler point) and resumed
  EXPECT_EQ(acks(AckKind::kSchedulerPoint), 1u);
  ASSERT_TRUE(eventually([&] { return g_holding.load(); }))
      << "the holder did not come back from the first stop's resume";
  EXPECT_EQ(slot->status.load(), SlotStatus::kAtSafepoint);  // still stopped where it was

  std::atomic<bool> second_stopped{false}, second_resume{false};
  std::thread second = requester(second_stopped, second_resume);
  const bool completed = eventually([&] { return second_stopped.load(); });
  EXPECT_TRUE(completed) << "the second stop waited for a holder still stopped by the first";
  if (completed) {
    EXPECT_EQ(slot->status.load(), SlotStatus::kStoppedAtSafepoint);
    EXPECT_EQ(safepoint::safepoint_statistics().stopped_claims - before.stopped_claims, 1u);
    EXPECT_EQ(acks(AckKind::kClaimedStopped), 1u);
    EXPECT_EQ(safepoint::stop_attribution_last().last_kind, AckKind::kClaimedStopped);
    // Let the holder go: it must find its slot claimed and wait for the second resume.
    g_let_go = true;
    EXPECT_TRUE(eventually([&] {
      return safepoint::safepoint_statistics().stopped_holder_waits > before.stopped_holder_waits;
    }));
    EXPECT_EQ(served.load(), 0) << "the holder ran on while its slot was claimed";
    EXPECT_EQ(slot->status.load(), SlotStatus::kStoppedAtSafepoint);
  }
  g_let_go = true;
  second_resume = true;
  second.join();
  EXPECT_TRUE(eventually([&] { return served.load() == 1; }));  // one return, after both stops
  EXPECT_TRUE(eventually([&] { return slot->status.load() == SlotStatus::kRunning; }));
  EXPECT_EQ(slot->acked_epoch.load(), slot->requested_epoch.load());
  EXPECT_EQ(acks(AckKind::kSchedulerPoint), 1u);  // the second stop was never acknowledged twice
  done = true;
  holding.join();
  EXPECT_EQ(slot->status.load(), SlotStatus::kIdle);
  EXPECT_EQ(safepoint::safepoint_statistics().stale_claims, before.stale_claims);
}

// The protocol before (claims off): the second stop cannot complete while the holder has not come
// back; let go, the holder acknowledges it at its scheduler point.
TEST_F(StoppedClaim, WithoutTheClaimTheNextStopWaitsForTheHolder) {
  ASSERT_TRUE(all_goroutines_finished());
  safepoint::set_scheduler_claim(false);
  safepoint::SafepointSlot* slot = start_holder();
  std::atomic<bool> first_stopped{false}, first_resume{true};
  std::thread first = requester(first_stopped, first_resume);
  first.join();
  ASSERT_TRUE(eventually([&] { return g_holding.load(); }));
  std::atomic<bool> second_stopped{false}, second_resume{true};
  std::thread second = requester(second_stopped, second_resume);
  // Short of the stop's one-second warning; it cannot complete without the holder anyway.
  EXPECT_FALSE(eventually([&] { return second_stopped.load(); }, std::chrono::milliseconds(200)));
  g_let_go = true;
  second.join();
  EXPECT_TRUE(second_stopped.load());
  EXPECT_EQ(acks(AckKind::kClaimedStopped), 0u);
  EXPECT_EQ(acks(AckKind::kSchedulerPoint), 2u);
  done = true;
  holding.join();
  EXPECT_EQ(slot->status.load(), SlotStatus::kIdle);
}

}  // namespace
}  // namespace usgc::testing
