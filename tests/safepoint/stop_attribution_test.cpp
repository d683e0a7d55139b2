// tests/safepoint/stop_attribution_test.cpp — the stop's attribution trace
// (safepoint/stop_trace.hpp) and what it led to (USGC_SAFEPOINT_ACK=handler, safepoint/
// stop_the_world.hpp): idle Ps are claimed by the requester without a fault or a signal; a P
// waiting in the scheduler acknowledges at a scheduler point, without a fault; a running P's poll
// fault is acknowledged in the signal handler, and the goroutine still does not run until the
// resume; the last acknowledger makes no wake call for a requester that spins; the monitor does
// not probe a P stopped at a safepoint. Each of the last three fails with the protocol before
// (kTrampoline), which the tests also run.
//
// Counts and states, never times: loops wait on conditions with generous deadlines.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "kernel_iface/cpu.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/stop_the_world.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/stop_rounds.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {
namespace {

using safepoint::AckKind;
using safepoint::SafepointAck;

class StopAttribution : public PollerRuntimeTest {
 protected:
  void SetUp() override {
    PollerRuntimeTest::SetUp();
    safepoint::set_stop_trace_enabled(true);
    safepoint::reset_stop_attribution_totals();
  }
  void TearDown() override {
    safepoint::set_stop_trace_enabled(false);
    safepoint::set_safepoint_ack(SafepointAck::kHandler);
    safepoint::set_monitor_quiet_during_stops(true);
    safepoint::set_monitor_backs_off_during_stops(true);
    PollerRuntimeTest::TearDown();
  }
  uint64_t acks(const safepoint::StopAttributionTotals& totals, AckKind kind) {
    return totals.acknowledgements[static_cast<int>(kind)];
  }
};

// No goroutine: every P is idle, and the requester claims them all by a compare-and-swap.
TEST_F(StopAttribution, IdleProcessorsAreClaimedWithoutAFaultOrASignal) {
  ASSERT_TRUE(eventually([] { return usgc_goroutine_count() == 0; }));
  constexpr int kStops = 20;
  int claimed_last = 0;
  for (int i = 0; i < kStops; ++i) {
    usgc_stop_info info{};
    ASSERT_EQ(usgc_stop_the_world(&info), 0);
    ASSERT_EQ(usgc_start_the_world(), 0);
    safepoint::StopAttribution last = safepoint::stop_attribution_last();
    ASSERT_TRUE(last.valid);
    EXPECT_EQ(last.slots, 2u);
    EXPECT_EQ(last.slots_faulted, 0u);
    EXPECT_EQ(safepoint::stop_breakdown_last().signal_rounds, 0u);
    // A worker still looking for work right after start acknowledges in the scheduler instead.
    EXPECT_TRUE(last.last_kind == AckKind::kClaimedIdle ||
                last.last_kind == AckKind::kSchedulerPoint || last.last_kind == AckKind::kReleased)
        << safepoint::ack_kind_name(last.last_kind);
    claimed_last += last.last_kind == AckKind::kClaimedIdle;
  }
  safepoint::StopAttributionTotals totals = safepoint::stop_attribution_totals();
  EXPECT_EQ(totals.stops, static_cast<uint64_t>(kStops));
  EXPECT_EQ(totals.poll_faults, 0u);
  EXPECT_EQ(acks(totals, AckKind::kPollFault) + acks(totals, AckKind::kAsyncSignal), 0u);
  EXPECT_GT(claimed_last, 0);
}

// A P whose machine waits in the scheduler for work is never armed into a fault: the scheduler
// checks the request with a plain load. The main goroutine parks on a channel-like wait (sleep)
// while the other P spins looking for work or is idle: no poll fault among the acknowledgements.
TEST_F(StopAttribution, SchedulerAcknowledgesWithoutAFault) {
  std::atomic<bool> done{false};
  go([&] {
    while (!done.load()) usgc_sleep_ns(200'000);  // parks: its P goes to the scheduler
  });
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
    ASSERT_EQ(usgc_start_the_world(), 0);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  done = true;
  // The sleeper reads `done`, a local of this frame: it must have finished before the frame goes.
  // (Left to the fixture's TearDown, it read the dead slot and, where another frame had reused it
  // with a zero, slept on forever: seen as a goroutine never woken under TSan.)
  ASSERT_TRUE(all_goroutines_finished()) << usgc_goroutine_count() << " goroutines still alive";
  safepoint::StopAttributionTotals totals = safepoint::stop_attribution_totals();
  EXPECT_EQ(totals.stops, 50u);
  // The sleeper may be caught running between two sleeps: then it polls nowhere (it runs usgc's
  // code) and is acknowledged at a scheduler point or by the release, never by a fault.
  EXPECT_EQ(totals.poll_faults, 0u);
  EXPECT_EQ(acks(totals, AckKind::kPollFault), 0u);
}

// A running P's poll fault is acknowledged inside the signal handler (kHandler): every poll-fault
// acknowledgement counted by the trace was made there; the goroutine does not run on while the
// world is stopped. With kTrampoline none is.
TEST_F(StopAttribution, PollFaultIsAcknowledgedInTheSignalHandler) {
  poller.start();
  ASSERT_TRUE(poller.runs());
  for (SafepointAck ack : {SafepointAck::kTrampoline, SafepointAck::kHandler}) {
    safepoint::set_safepoint_ack(ack);
    safepoint::reset_stop_attribution_totals();
    const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
    int moved = 0;
    // At least 5 stops through a poll fault (a loaded machine may signal a late P instead).
    for (int i = 0; i < 1000 && safepoint::stop_attribution_totals().poll_faults < 5; ++i) {
      StopRound round = stop_and_resume(poller, /*keep_slot=*/false);
      ASSERT_TRUE(round.ok()) << "stop " << i;
      moved += round.poller_moved;
    }
    const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
    const safepoint::StopAttributionTotals totals = safepoint::stop_attribution_totals();
    EXPECT_EQ(moved, 0) << "the poller ran while the world was stopped";
    ASSERT_GE(totals.poll_faults, 5u);
    const uint64_t in_handler = after.handler_acknowledgements - before.handler_acknowledgements;
    if (ack == SafepointAck::kHandler) {
      EXPECT_EQ(in_handler, acks(totals, AckKind::kPollFault));
    } else {
      EXPECT_EQ(in_handler, 0u);
    }
  }
}

// A requester that keeps its P spins for the last acknowledgement: the last acknowledger then
// makes no futex wake (kHandler); the protocol before woke at every stop.
TEST_F(StopAttribution, LastAcknowledgerWakesNobodyWhenTheRequesterSpins) {
  if (kernel::online_cpu_count() < 2) GTEST_SKIP() << "one CPU: the requester never spins";
  safepoint::set_spin_caps_for_test(kLongCapNs, -1, /*ignore_machine_load=*/true);
  poller.start();
  run_main([&] {
    ASSERT_TRUE(poller.runs());
    for (SafepointAck ack : {SafepointAck::kTrampoline, SafepointAck::kHandler}) {
      safepoint::set_safepoint_ack(ack);
      const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
      constexpr int kStops = 20;
      for (int i = 0; i < kStops; ++i)
        ASSERT_TRUE(stop_and_resume(poller, /*keep_slot=*/true, [] {}).ok()) << "stop " << i;
      const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
      EXPECT_EQ(after.requester_futex_waits - before.requester_futex_waits, 0u);
      const uint64_t wakes = after.acknowledger_futex_wakes - before.acknowledger_futex_wakes;
      if (ack == SafepointAck::kHandler) {
        EXPECT_EQ(wakes, 0u);
      } else {
        EXPECT_EQ(wakes, static_cast<uint64_t>(kStops));
      }
    }
  });
  poller.stop = true;
}

// While the world stays stopped the monitor keeps looking at the Ps; the poller's P is at a
// safepoint (waiting in usgc's own code) and is not probed through /proc (kHandler); the protocol
// before probed it like a P that does not switch goroutines.
TEST_F(StopAttribution, MonitorDoesNotProbeAProcessorStoppedAtASafepoint) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "no retake without async safepoints";
  poller.start();
  ASSERT_TRUE(poller.runs());
  // The monitor must work during the stop for this test (by default it skips its work then:
  // MonitorSkipsItsWorkWhileAStopIsInFlight).
  safepoint::set_monitor_quiet_during_stops(false);
  for (SafepointAck ack : {SafepointAck::kTrampoline, SafepointAck::kHandler}) {
    safepoint::set_safepoint_ack(ack);
    ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
    const uint64_t probes_before = runtime::monitor_retake_probes();
    const uint64_t looks_before = runtime::monitor_looks();
    // 40 looks are 10 ms at the monitor's tick: past the first probe's 250 us and three backoffs.
    bool looked = eventually([&] { return runtime::monitor_looks() >= looks_before + 40; });
    const uint64_t probes = runtime::monitor_retake_probes() - probes_before;
    ASSERT_EQ(usgc_start_the_world(), 0);
    ASSERT_TRUE(looked) << "the monitor did not look at the Ps";
    if (ack == SafepointAck::kHandler) {
      EXPECT_EQ(probes, 0u);
    } else {
      EXPECT_GT(probes, 0u);
    }
  }
}

// While a stop is in flight the monitor does no work (no timers fired, no look at the Ps, no
// probe): it only notes the skipped round and looks again later. With the behaviour before
// (set_monitor_quiet_during_stops(false)) it keeps looking: the previous test. (It looks again
// every 100 us here, the policy before the backoff: the next test has the default.)
TEST_F(StopAttribution, MonitorSkipsItsWorkWhileAStopIsInFlight) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "the monitor looks only to retake";
  safepoint::set_monitor_backs_off_during_stops(false);
  poller.start();
  ASSERT_TRUE(poller.runs());
  ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
  const uint64_t skipped_before = runtime::monitor_rounds_skipped_during_stops();
  // The monitor may be in the middle of one round when the stop begins: it ends that one.
  const bool skipped = eventually(
      [&] { return runtime::monitor_rounds_skipped_during_stops() >= skipped_before + 2; });
  const uint64_t looks_before = runtime::monitor_looks();
  const bool skipped_more = eventually(
      [&] { return runtime::monitor_rounds_skipped_during_stops() >= skipped_before + 12; });
  const uint64_t looks = runtime::monitor_looks() - looks_before;
  ASSERT_EQ(usgc_start_the_world(), 0);
  EXPECT_TRUE(skipped && skipped_more) << "the monitor did not wake during the stop";
  EXPECT_EQ(looks, 0u) << "the monitor looked at the Ps while the world was stopped";
  // And it works again once the world runs.
  const uint64_t looks_after = runtime::monitor_looks();
  EXPECT_TRUE(eventually([&] { return runtime::monitor_looks() > looks_after; }));
}

// By default the monitor backs off while a stop is in flight (runtime/monitor.cpp: 100 us, then
// twice as long at each look, up to 2 ms) instead of looking again every 100 us: over a stop held
// for 50 ms it wakes at most 7 + 25 times, where the policy before woke about 500 times. A count
// with a bound that load only makes easier to meet (a slow machine wakes it less). After the
// resume it works again.
TEST_F(StopAttribution, MonitorBacksOffDuringALongStop) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "the monitor looks only to retake";
  poller.start();
  ASSERT_TRUE(poller.runs());
  ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
  const uint64_t skipped_before = runtime::monitor_rounds_skipped_during_stops();
  const bool noticed =
      eventually([&] { return runtime::monitor_rounds_skipped_during_stops() > skipped_before; });
  const uint64_t asleep_from = runtime::monitor_rounds_skipped_during_stops();
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint64_t wakes = runtime::monitor_rounds_skipped_during_stops() - asleep_from;
  const auto held_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  const uint64_t looks_after = runtime::monitor_looks();
  ASSERT_EQ(usgc_start_the_world(), 0);
  ASSERT_TRUE(noticed) << "the monitor never woke during the stop";
  EXPECT_LE(wakes, static_cast<uint64_t>(7 + held_ms / 2))
      << "the monitor woke " << wakes << " times in a stop held " << held_ms << " ms";
  EXPECT_TRUE(eventually([&] { return runtime::monitor_looks() > looks_after; }));
}

}  // namespace
}  // namespace usgc::testing
