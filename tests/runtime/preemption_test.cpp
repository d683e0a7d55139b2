// tests/runtime/preemption_test.cpp — the monitor's preemption (runtime/monitor.cpp) as the
// goroutine's thread sees it, proven by counts, never by durations:
//   - a lone goroutine (nothing else runnable) that spins for several preemption periods runs on
//     through every preemption: its thread makes no voluntary context switch (it never sleeps:
//     no futex wait, no parking, no hand-off), the goroutine never switches to the scheduler, and
//     the preemption count rises; with one P and with two (the second P idle: nobody wakes it);
//   - the same for a goroutine that polls the way the collector's pauses do (the request flag
//     read directly, then reach_safepoint): the flag and the poll's arming change together under
//     the slot's arm_lock, so such a poll neither waits for the monitor nor is left armed;
//   - fairness is unchanged: a goroutine that waits for the P — queued on the P by a spawn, or on
//     the global queue by a timer — runs while the spinner never yields on its own;
//   - a preemption that falls due while a stop is held is requested inside the stop (the
//     monitor's rounds during stops keep the time slices), and the spinner yields as the stop
//     resumes it (before, the monitor did nothing while a stop was in flight: with stops back to
//     back a queued goroutine waited as long as they went on).
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "kernel_iface/thread_usage.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/stop_the_world.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {
namespace {

constexpr uint32_t kPreemptAfterUs = 1000;
constexpr uint64_t kPreemptionsToSee = 8;

usgc_runtime_stats runtime_stats() {
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  EXPECT_EQ(usgc_runtime_get_stats(&stats), 0);
  return stats;
}

// The runtime restarted with `procs` Ps and a short preemption period.
class Preemption : public RuntimeTest {
 protected:
  void restart(uint32_t procs, uint32_t preempt_after_us = kPreemptAfterUs) {
    ASSERT_EQ(usgc_shutdown(), 0);
    usgc_config config = runtime_config(procs);
    config.preempt_after_us = preempt_after_us;
    ASSERT_EQ(usgc_init(&config), 0);
  }
};

enum class PollKind { kPollPage, kCollectorStyle };

// The collector's poll (gc/private_collector.cpp, poll_for_safepoint): the request flags read
// directly, then the slow path.
void collector_style_poll() {
  safepoint::SafepointSlot* slot = safepoint::current_slot();
  if (slot == nullptr) return;
  if (safepoint::safepoint_requested(slot) ||
      slot->preempt_requested.load(std::memory_order_relaxed) != 0)
    safepoint::reach_safepoint(slot);
}

struct LoneSpin {
  uint64_t preemptions = 0;
  uint64_t kept_running = 0;
  uint64_t goroutine_switches = 0;
  uint64_t voluntary_switches = 0;
  bool thread_changed = false;
  bool timed_out = false;
  // SIGURGs sent meanwhile: the monitor signals a request still pending one look (250 us) later,
  // which a polling goroutine meets only when the kernel kept its thread off the CPU that long.
  uint64_t signals_sent = 0;
};

// Spins in the main goroutine, polling, until kPreemptionsToSee preemptions were served (or a
// deadline that only catches a broken monitor).
LoneSpin spin_alone(PollKind poll) {
  LoneSpin seen;
  run_main([&] {
    const pthread_t thread = pthread_self();
    const usgc_runtime_stats before = runtime_stats();
    const uint64_t kept_before =
        runtime::g_scheduler.preemptions_kept_running.load(std::memory_order_relaxed);
    const uint64_t signals_before = safepoint::async_safepoint_statistics().signals_sent;
    kernel::Result<kernel::ThreadUsage> usage_before = kernel::read_thread_usage();
    ASSERT_TRUE(usage_before.ok());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      for (int i = 0; i < 1000; ++i) {
        if (poll == PollKind::kPollPage) {
          usgc_safepoint_poll();
        } else {
          collector_style_poll();
        }
      }
      if (runtime_stats().preemptions - before.preemptions >= kPreemptionsToSee) break;
      if (std::chrono::steady_clock::now() > deadline) {
        seen.timed_out = true;
        break;
      }
    }
    kernel::Result<kernel::ThreadUsage> usage_after = kernel::read_thread_usage();
    ASSERT_TRUE(usage_after.ok());
    const usgc_runtime_stats after = runtime_stats();
    seen.preemptions = after.preemptions - before.preemptions;
    seen.goroutine_switches = after.context_switches - before.context_switches;
    seen.kept_running =
        runtime::g_scheduler.preemptions_kept_running.load(std::memory_order_relaxed) - kept_before;
    seen.voluntary_switches =
        kernel::thread_usage_delta(usage_before.value(), usage_after.value()).voluntary_switches;
    seen.thread_changed = !pthread_equal(thread, pthread_self());
    seen.signals_sent = safepoint::async_safepoint_statistics().signals_sent - signals_before;
  });
  return seen;
}

void expect_ran_on_without_sleeping(const LoneSpin& seen) {
  EXPECT_FALSE(seen.timed_out) << "only " << seen.preemptions << " preemptions in 30 s";
  EXPECT_GE(seen.preemptions, kPreemptionsToSee);
  EXPECT_EQ(seen.kept_running, seen.preemptions)
      << "a preemption with nothing else runnable switched to the scheduler";
  EXPECT_EQ(seen.goroutine_switches, 0u);
  EXPECT_FALSE(seen.thread_changed);
  // The monitor sends that signal under the slot's arm_lock, which the goroutine then takes to
  // serve the request: a thread that comes back on its CPU during the signal may sleep on it. Only
  // a run without such a signal must show no voluntary switch.
  if (seen.signals_sent == 0) {
    EXPECT_EQ(seen.voluntary_switches, 0u)
        << "the lone goroutine's thread slept during " << seen.preemptions << " preemptions";
  }
}

TEST_F(Preemption, LoneGoroutineOnOneProcessorRunsOnWithoutSleeping) {
  restart(1);
  expect_ran_on_without_sleeping(spin_alone(PollKind::kPollPage));
}

TEST_F(Preemption, LoneGoroutineWithAnIdleProcessorRunsOnWithoutSleeping) {
  restart(2);
  expect_ran_on_without_sleeping(spin_alone(PollKind::kPollPage));
}

TEST_F(Preemption, CollectorStylePollsServeEveryPreemptionWithoutWaitingForTheMonitor) {
  restart(1);
  expect_ran_on_without_sleeping(spin_alone(PollKind::kCollectorStyle));
  // The request and its arming go together: a poll is never left armed for a preemption with
  // nothing to serve (nor a request left unarmed).
  run_main([] {
    safepoint::SafepointSlot* slot = safepoint::current_slot();
    ASSERT_NE(slot, nullptr);
    kernel::FutexMutexGuard guard(slot->arm_lock);
    EXPECT_EQ(slot->preempt_requested.load(std::memory_order_relaxed) != 0,
              slot->armed_for_preempt);
  });
}

// A spinner that never yields on its own; `other` must run while it spins (its flag ends it).
void spin_until(const std::atomic<bool>& other_ran) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!other_ran.load() && std::chrono::steady_clock::now() < deadline) usgc_safepoint_poll();
}

// The monitor's looks while the main goroutine spins (polling) for `spin`, and how long it spun.
struct LooksWhileSpinning {
  uint64_t looks = 0;
  int64_t spun_ms = 0;
};
LooksWhileSpinning monitor_looks_while_spinning(std::chrono::milliseconds spin) {
  LooksWhileSpinning result;
  run_main([&] {
    for (int i = 0; i < 1000; ++i) usgc_safepoint_poll();  // the monitor has seen the P busy
    const uint64_t looks_before = runtime::monitor_looks();
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < spin) {
      for (int i = 0; i < 1000; ++i) usgc_safepoint_poll();
    }
    result.looks = runtime::monitor_looks() - looks_before;
    result.spun_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
  });
  return result;
}

// A goroutine that keeps its P (it spins, nothing else to run) needs the monitor only when
// something about it falls due — its next retake probe, whose wait doubles, or its time slice's
// end — not at every 250 us tick: over the spin the monitor looks about once a millisecond at
// most (before: four times). A bound that load only makes easier to meet (a loaded machine wakes
// the monitor later, never earlier).
TEST_F(Preemption, MonitorLooksOnlyWhenSomethingFallsDueForAGoroutineThatKeepsItsP) {
  restart(2, 10'000);
  const auto [looks, spun_ms] = monitor_looks_while_spinning(std::chrono::milliseconds(100));
  EXPECT_GT(looks, 0u) << "the monitor never looked at the busy P";
  EXPECT_LE(looks, static_cast<uint64_t>(10 + spun_ms))
      << "the monitor looked " << looks << " times in " << spun_ms << " ms";
}

// A goroutine kept running after each preemption keeps its probe backoff (before, every 10 ms
// slice restarted the probes at 250 us: six looks a slice), and with every P running a goroutine
// the monitor sleeps until what falls due, not at most 2 ms: over the spin it looks about three
// times per 10 ms slice (the slice's end, the check of the request, a probe), where it looked
// about every 1.5 ms before. Load only makes the monitor look less often.
TEST_F(Preemption, AGoroutineKeptRunningAfterItsPreemptionKeepsItsProbeBackoff) {
  restart(1, 10'000);
  const auto [looks, spun_ms] = monitor_looks_while_spinning(std::chrono::milliseconds(150));
  EXPECT_GT(looks, 0u) << "the monitor never looked at the busy P";
  EXPECT_LE(looks, static_cast<uint64_t>(4 + spun_ms / 3))
      << "the monitor looked " << looks << " times in " << spun_ms << " ms";
}

// A goroutine that only computes, kept running after each preemption (nothing else to run), is
// probed for a blocked system call through its thread's CPU clock: the monitor reads its /proc
// files only when the thread gained almost no CPU time since the last reading (the first reading
// of a thread knows nothing; on a loaded machine a thread that waited for a CPU all the interval
// gains none either, and is probed through /proc). Before, every probe read /proc (and the check
// of a pending request too: 9 of 8).
TEST_F(Preemption, AGoroutineThatOnlyComputesIsProbedThroughItsCpuClockNotProc) {
  restart(1, 10'000);
  // The monitor probes only to retake, which needs asynchronous safepoints (not under TSan).
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "the monitor probes only to retake";
  uint64_t probes = 0;
  uint64_t procfs = 0;
  uint64_t looks = 0;
  double cpu_share = 0;
  bool timed_out = false;
  run_main([&] {
    for (int i = 0; i < 1000; ++i) usgc_safepoint_poll();
    const int tid = kernel::thread_id();
    const uint64_t cpu_before = kernel::thread_cpu_time_ns(tid).value();
    const auto wall_before = std::chrono::steady_clock::now();
    const uint64_t probes_before = runtime::monitor_retake_probes();
    const uint64_t procfs_before = runtime::monitor_procfs_probes();
    const uint64_t looks_before = runtime::monitor_looks();
    // The deadline only turns a monitor that stopped probing into a failure instead of a hang.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30 * kTimeLimitScale);
    while (runtime::monitor_retake_probes() - probes_before < 12) {
      for (int i = 0; i < 1000; ++i) usgc_safepoint_poll();
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        break;
      }
    }
    probes = runtime::monitor_retake_probes() - probes_before;
    procfs = runtime::monitor_procfs_probes() - procfs_before;
    looks = runtime::monitor_looks() - looks_before;
    const auto wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - wall_before)
                             .count();
    cpu_share = static_cast<double>(kernel::thread_cpu_time_ns(tid).value() - cpu_before) /
                static_cast<double>(wall_ns > 0 ? wall_ns : 1);
  });
  EXPECT_FALSE(timed_out) << "only " << probes << " retake probes (" << looks << " looks)";
  // The premise is a thread that computes all the time. On a machine so loaded that the kernel
  // ran it under half of the interval it waited for a CPU, and the monitor rightly reads /proc
  // for the readings where it gained almost nothing (seen at load 14 on 2 vCPUs: 6 of 12).
  if (cpu_share < 0.5)
    GTEST_SKIP() << "the computing thread ran " << static_cast<int>(cpu_share * 100)
                 << " % of the interval (a loaded machine): the premise does not hold";
  EXPECT_LE(procfs, 1 + probes / 4)
      << procfs << " of " << probes << " probes read /proc (" << looks << " looks)";
}

TEST_F(Preemption, GoroutineQueuedOnTheProcessorStillRuns) {
  restart(1);
  std::atomic<bool> other_ran{false};
  run_main([&] {
    go([&] { other_ran = true; });  // on this P's local queue
    spin_until(other_ran);
  });
  EXPECT_TRUE(other_ran.load());
  EXPECT_GE(runtime_stats().preemptions, 1u);
}

TEST_F(Preemption, GoroutineReadiedByATimerStillRuns) {
  restart(1);
  std::atomic<bool> other_ran{false};
  run_main([&] {
    go([&] {
      usgc_sleep_ns(2 * kPreemptAfterUs * 1000);  // readied by the monitor: the global queue
      other_ran = true;
    });
    usgc_yield();  // let it start and park on its timer
    spin_until(other_ran);
  });
  EXPECT_TRUE(other_ran.load());
}

// A stop held while the spinner's period runs out: the monitor requests the preemption inside
// the stop (its rounds during stops keep the time slices), and the spinner yields as the stop
// resumes it, to the goroutine queued behind it. Before, the monitor did nothing while a stop was
// in flight: with stops back to back (an embedder's loop) the spinner kept its P for as long as
// they went on. The stop is held until the request appears (or a deadline that only a monitor
// which never asks meets). The period is 50 ms, so the stop begins inside it; on a machine so
// loaded that the stopper starts only after the monitor already asked (outside any stop), the
// attempt proves nothing and is made again.
TEST_F(Preemption, APreemptionThatFallsDueDuringAStopIsRequestedInTheStop) {
  restart(1, 50 * 1000);
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::atomic<bool> other_ran{false};
    std::atomic<bool> spinning{false};
    bool pending_at_stop = false;
    bool requested_in_stop = false;
    const uint64_t requested_before = runtime::monitor_preemptions_requested_during_stops();
    std::thread stopper([&] {
      while (!spinning.load()) std::this_thread::yield();
      if (usgc_stop_the_world(nullptr) != 0) return;
      safepoint::SafepointSlot* slot = runtime::g_scheduler.processors[0].slot;
      pending_at_stop = slot->preempt_requested.load() != 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (slot->preempt_requested.load() == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      requested_in_stop = slot->preempt_requested.load() != 0;
      (void)usgc_start_the_world();
    });
    run_main([&] {
      go([&] { other_ran = true; });  // queued on the only P, behind the spinner
      spinning = true;
      spin_until(other_ran);
    });
    stopper.join();
    EXPECT_TRUE(other_ran.load());
    if (pending_at_stop) continue;  // the monitor asked before the stop began: try again
    EXPECT_TRUE(requested_in_stop) << "no preemption was requested while the stop was held";
    EXPECT_GT(runtime::monitor_preemptions_requested_during_stops(), requested_before);
    return;
  }
  FAIL() << "in 5 attempts the stop never began inside the spinner's 50 ms period";
}

}  // namespace
}  // namespace usgc::testing
