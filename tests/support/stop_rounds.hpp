// tests/support/stop_rounds.hpp — the stop protocol tests' shared workload and loop: one
// goroutine polling in a loop (PollingGoroutine), and rounds of "stop the world, look at the
// poller while stopped, resume, wait until the poller runs again" (stop_and_resume), which
// tests/safepoint/stop_wait_test.cpp and stop_attribution_test.cpp repeat with their own counts,
// on their common fixture (PollerRuntimeTest: two Ps, no preemption, the spinning wait).
//
// Counts and states, never times: the waits are on conditions with generous deadlines.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "safepoint/stop_the_world.hpp"
#include "safepoint/stop_trace.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/safepoint.h"

namespace usgc::testing {

// A goroutine that polls (page poll) in a loop until `stop`, counting its rounds in `spins`. The
// object must outlive the goroutine: set stop and let the fixture wait for it to end.
struct PollingGoroutine {
  std::atomic<bool> stop{false};
  std::atomic<bool> started{false};
  std::atomic<uint64_t> spins{0};

  void start() {
    go([this] {
      started = true;
      while (!stop.load(std::memory_order_relaxed)) {
        spins.fetch_add(1, std::memory_order_relaxed);
        usgc_safepoint_poll();
      }
    });
  }
  // It started and made some progress (its P reached it).
  bool runs(uint64_t rounds = 1000) {
    return eventually([&] { return started.load() && spins.load() > rounds; });
  }
};

// The highest-numbered slot, idle in a runtime without goroutines (its machines leave it alone):
// the tests that drive one P's slot by hand from a thread of their own take it.
inline safepoint::SafepointSlot* idle_last_slot() {
  safepoint::SafepointSlot* slot = safepoint::slot_at(safepoint::slot_count() - 1);
  EXPECT_TRUE(eventually([&] { return slot->status.load() == safepoint::SlotStatus::kIdle; }));
  return slot;
}

// The claim tests' fixture: the stop attribution trace on with its totals reset for the test, the
// scheduler claim (which a test may turn off) back on after it.
class ClaimTraceRuntimeTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    safepoint::set_stop_trace_enabled(true);
    safepoint::reset_stop_attribution_totals();
  }
  void TearDown() override {
    safepoint::set_scheduler_claim(true);
    safepoint::set_stop_trace_enabled(false);
    RuntimeTest::TearDown();
  }
};

// A bound for the spin caps (set_spin_caps_for_test), never reached by a polling goroutine.
constexpr int64_t kLongCapNs = 30'000'000'000;

// The stop protocol tests' fixture: a runtime with two Ps, goroutines never preempted (each stays
// on its P), the spinning wait; `poller` is stopped and the spin caps reset at the end.
class PollerRuntimeTest : public RuntimeTest {
 protected:
  void SetUp() override {
    usgc_config config = runtime_config(2);
    config.preempt_after_us = 0;  // each goroutine stays on its P
    ASSERT_EQ(usgc_init(&config), 0);
    safepoint::set_safepoint_wait(safepoint::SafepointWait::kSpin);
  }
  void TearDown() override {
    poller.stop = true;
    safepoint::set_spin_caps_for_test(-1, -1);
    RuntimeTest::TearDown();
  }

  // One goroutine polling in a loop, on the P the main goroutine does not hold.
  PollingGoroutine poller;
};

// What one round saw.
struct StopRound {
  bool stopped = false;           // stop_the_world returned 0
  bool kept_p = false;            // the requester held a slot while the world was stopped
  bool poller_moved = false;      // the poller made progress while the world was stopped
  bool resumed = false;           // start_the_world returned 0
  bool poller_ran_again = false;  // ... and the poller made progress after it
  safepoint::StopBreakdown breakdown{};
  bool ok() const { return stopped && resumed && poller_ran_again; }
};

// One round: stop the world (safepoint::stop_the_world, keeping the caller's P when keep_slot and
// the policy allows), run while_stopped (default: 10 000 pauses, a window in which a poller that
// was not stopped would move), note whether the poller moved, resume, and wait until it runs.
inline StopRound stop_and_resume(PollingGoroutine& poller, bool keep_slot,
                                 const std::function<void()>& while_stopped = nullptr) {
  StopRound round;
  if (safepoint::stop_the_world(nullptr, nullptr, keep_slot) != 0) return round;
  round.stopped = true;
  round.kept_p = safepoint::current_slot() != nullptr;
  const uint64_t at_stop = poller.spins.load();
  if (while_stopped) {
    while_stopped();
  } else {
    for (int spin = 0; spin < 10000; ++spin) __builtin_ia32_pause();
  }
  round.poller_moved = poller.spins.load() != at_stop;
  if (safepoint::start_the_world() != 0) return round;
  round.resumed = true;
  round.breakdown = safepoint::stop_breakdown_last();  // takes the operation lock: after the resume
  const uint64_t resumed_at = poller.spins.load();
  round.poller_ran_again = eventually([&] { return poller.spins.load() > resumed_at; });
  return round;
}

}  // namespace usgc::testing
