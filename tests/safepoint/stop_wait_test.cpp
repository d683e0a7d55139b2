// tests/safepoint/stop_wait_test.cpp — how a stop waits (USGC_SAFEPOINT_WAIT, the file comment of
// safepoint/stop_the_world.hpp): a requester that keeps its P acknowledges its own slot and waits
// for the last P without sleeping in the kernel; stopped threads that spin are resumed by a store,
// without the wake system call; threads that do sleep are still woken (no lost resume); the
// protocol before (kSleep) still works and wakes at every resume; a spinning stopped thread gives
// its CPU up when the requester's work in the stop needs it; the collector keeps its P through both
// stops of a concurrent shared collection.
//
// Counts, never times: the spin caps are raised to tens of seconds for the tests that count
// futex calls, so the policy's decision (spin or not), not the scheduler's timing, decides them.
// They need two CPUs (the policy spins only when the running Ps fit beside the requester), and
// they set the machine-load half of the policy aside (other processes load the machine).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "kernel_iface/cpu.hpp"
#include "safepoint/stop_the_world.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/stop_rounds.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {
namespace {

class StopWait : public PollerRuntimeTest {
 protected:
  bool two_cpus() const { return kernel::online_cpu_count() >= 2; }
};

// eventually() for the thread that holds a stop: it must not yield its goroutine (its P would
// wait for the resume it has to make), so it only pauses between looks.
bool eventually_in_stop(bool (*predicate)()) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10 * kTimeLimitScale);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (int spin = 0; spin < 1000; ++spin) __builtin_ia32_pause();
  }
  return true;
}
bool one_thread_spins_for_the_resume() {
  return safepoint::safepoint_statistics().resume_spinners_now == 1;
}
bool no_thread_spins_for_the_resume() {
  return safepoint::safepoint_statistics().resume_spinners_now == 0;
}

TEST_F(StopWait, RequesterKeepingItsPNeverSleepsWhileTheLastPArrives) {
  if (!two_cpus()) GTEST_SKIP() << "one CPU: a requester never spins (its P would take the CPU)";
  safepoint::set_spin_caps_for_test(kLongCapNs, -1, /*ignore_machine_load=*/true);
  poller.start();
  run_main([&] {
    ASSERT_TRUE(poller.runs());
    const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
    constexpr int kStops = 20;
    int kept = 0, slept = 0, running_one = 0, moved = 0;
    for (int i = 0; i < kStops; ++i) {
      StopRound round = stop_and_resume(poller, /*keep_slot=*/true);
      ASSERT_TRUE(round.ok()) << "stop " << i;
      EXPECT_TRUE(round.kept_p) << "the requester gave its P up";
      moved += round.poller_moved;
      kept += round.breakdown.requester_kept_slot;
      slept += round.breakdown.requester_slept;
      running_one += round.breakdown.slots_running == 1;
    }
    const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
    EXPECT_EQ(moved, 0) << "the poller ran while the world was stopped";
    EXPECT_EQ(kept, kStops);
    EXPECT_EQ(running_one, kStops) << "only the poller's P had to reach a poll";
    EXPECT_EQ(slept, 0);
    EXPECT_EQ(after.requester_futex_waits - before.requester_futex_waits, 0u);
    EXPECT_EQ(after.stops_requester_kept_slot - before.stops_requester_kept_slot,
              static_cast<uint64_t>(kStops));
  });
  poller.stop = true;
}

TEST_F(StopWait, ResumeOfSpinningThreadsIsAStoreWithoutAWakeCall) {
  if (!two_cpus()) GTEST_SKIP() << "one CPU: stopped threads never spin";
  safepoint::set_spin_caps_for_test(kLongCapNs, kLongCapNs, /*ignore_machine_load=*/true);
  poller.start();
  run_main([&] {
    ASSERT_TRUE(poller.runs());
    const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
    constexpr int kStops = 20;
    for (int i = 0; i < kStops; ++i)
      ASSERT_TRUE(stop_and_resume(poller, /*keep_slot=*/true, [] {}).ok()) << "stop " << i;
    const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
    EXPECT_EQ(after.resume_futex_wakes - before.resume_futex_wakes, 0u);
  });
  poller.stop = true;
}

// A stopped thread spinning for the resume gives its CPU up when the requester's work in the stop
// needs it (a parallel mark: safepoint::stop_work_needs_cpus): it stops spinning and sleeps, so the
// resume makes the wake call. With the spin caps at 30 s it would otherwise spin until the resume.
TEST_F(StopWait, SpinnersGiveTheirCpuToTheRequestersWorkInTheStop) {
  if (!two_cpus()) GTEST_SKIP() << "one CPU: stopped threads never spin";
  safepoint::set_spin_caps_for_test(kLongCapNs, kLongCapNs, /*ignore_machine_load=*/true);
  poller.start();
  run_main([&] {
    ASSERT_TRUE(poller.runs());
    constexpr int kStops = 5;
    for (int i = 0; i < kStops; ++i) {
      const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
      bool spun = false, ceded = false;
      StopRound round = stop_and_resume(poller, /*keep_slot=*/true, [&] {
        spun = eventually_in_stop(one_thread_spins_for_the_resume);
        safepoint::stop_work_needs_cpus(kernel::online_cpu_count());
        ceded = eventually_in_stop(no_thread_spins_for_the_resume);
      });
      ASSERT_TRUE(round.ok()) << "stop " << i;
      ASSERT_TRUE(round.kept_p);
      EXPECT_TRUE(spun) << "stop " << i << ": the poller's thread did not spin for the resume";
      EXPECT_TRUE(ceded) << "stop " << i << ": it kept spinning beside the requester's work";
      const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
      EXPECT_EQ(after.resume_spins_ceded - before.resume_spins_ceded, 1u);
      EXPECT_EQ(after.resume_futex_wakes - before.resume_futex_wakes, 1u) << "it did not sleep";
    }
    // The next request starts with the requester on one CPU: the poller spins again.
    const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
    bool spun = false;
    ASSERT_TRUE(stop_and_resume(poller, true, [&] {
                  spun = eventually_in_stop(one_thread_spins_for_the_resume);
                }).ok());
    EXPECT_TRUE(spun);
    EXPECT_EQ(safepoint::safepoint_statistics().resume_futex_wakes, before.resume_futex_wakes);
  });
  poller.stop = true;
}

// A goroutine that requests a stop without keeping its P holds the P back until the resume (the
// runtime's "Native for a stop"): no machine is woken to run the queued goroutine on it while the
// world stops, and the requester takes it back after. Handed on as before, the queued goroutine
// ran on it after the resume while the requester waited for a P (preemption is off here: it got
// one only when that goroutine ended).
TEST_F(StopWait, RequesterGivingItsPUpHoldsItBackUntilTheResume) {
  poller.start();
  std::atomic<bool> queued_ran{false};
  run_main([&] {
    ASSERT_TRUE(poller.runs());
    go([&] { queued_ran = true; });  // both Ps busy (the poller, us): it waits in a queue
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(safepoint::stop_the_world(nullptr, nullptr, /*keep_slot=*/false), 0);
      EXPECT_EQ(safepoint::current_slot(), nullptr) << "the requester kept its P";
      ASSERT_EQ(safepoint::start_the_world(), 0);
      EXPECT_NE(safepoint::current_slot(), nullptr) << "the requester has no P after the resume";
      EXPECT_FALSE(queued_ran.load()) << "stop " << i << ": the requester's P was handed on";
    }
  });
  poller.stop = true;
  EXPECT_TRUE(eventually([&] { return queued_ran.load(); }));
}

// Stopped threads that outlast their spin sleep, and the resume wakes them (the Dekker pair of
// wait_until_resumed): every stop is followed by progress, and some resume made the wake call.
TEST_F(StopWait, StoppedThreadsThatSleepAreWokenByTheResume) {
  safepoint::set_spin_caps_for_test(-1, 0, true);  // stopped threads sleep after their first look
  poller.start();
  run_main([&] {
    ASSERT_TRUE(poller.runs());
    const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
    for (int i = 0; i < 20; ++i) {
      StopRound round = stop_and_resume(poller, /*keep_slot=*/true, [] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      });
      ASSERT_TRUE(round.ok()) << "the poller was not resumed after stop " << i;
    }
    const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
    EXPECT_GT(after.resume_futex_wakes - before.resume_futex_wakes, 0u);
  });
  poller.stop = true;
}

// USGC_SAFEPOINT_WAIT=sleep: the requester gives its P up even when asked to keep it, and every
// resume makes the wake call.
TEST_F(StopWait, SleepModeIsTheProtocolBefore) {
  safepoint::set_safepoint_wait(safepoint::SafepointWait::kSleep);
  poller.start();
  run_main([&] {
    ASSERT_TRUE(poller.runs());
    const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
    constexpr int kStops = 10;
    for (int i = 0; i < kStops; ++i) {
      StopRound round = stop_and_resume(poller, /*keep_slot=*/true, [] {});
      ASSERT_TRUE(round.ok()) << "stop " << i;
      EXPECT_FALSE(round.kept_p);
      EXPECT_FALSE(round.breakdown.requester_kept_slot);
    }
    const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
    EXPECT_EQ(after.resume_futex_wakes - before.resume_futex_wakes, static_cast<uint64_t>(kStops));
    EXPECT_EQ(after.stops_requester_kept_slot, before.stops_requester_kept_slot);
  });
  poller.stop = true;
}

// The collector keeps its P through both stops of a concurrent shared collection requested by a
// goroutine, while another goroutine runs (USGC_GC_CONCURRENT unset: concurrent marking), when
// the machine has CPUs to spare (the load is set aside here); not at all with kSleep.
TEST_F(StopWait, SharedCollectionKeepsTheCollectorsPThroughBothStops) {
  const char* concurrent = std::getenv("USGC_GC_CONCURRENT");
  if (concurrent != nullptr && concurrent[0] == '0') GTEST_SKIP() << "one stop per collection";
  safepoint::set_spin_caps_for_test(-1, -1, /*ignore_machine_load=*/true);
  poller.start();
  run_main([&] {
    ASSERT_TRUE(eventually([&] { return poller.started.load(); }));
    const safepoint::SafepointStatistics before = safepoint::safepoint_statistics();
    constexpr int kCollections = 5;
    for (int i = 0; i < kCollections; ++i) ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    const safepoint::SafepointStatistics after = safepoint::safepoint_statistics();
    EXPECT_GE(after.stops - before.stops, 2u * kCollections);
    EXPECT_EQ(after.stops_requester_kept_slot - before.stops_requester_kept_slot,
              2u * kCollections);
    uint64_t at_end = poller.spins.load();
    ASSERT_TRUE(eventually([&] { return poller.spins.load() > at_end; }));
    safepoint::set_safepoint_wait(safepoint::SafepointWait::kSleep);
    const safepoint::SafepointStatistics before_sleep = safepoint::safepoint_statistics();
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    EXPECT_EQ(safepoint::safepoint_statistics().stops_requester_kept_slot,
              before_sleep.stops_requester_kept_slot);
  });
  poller.stop = true;
}

// The load half of the policy: spin only when every runnable thread has a CPU; unknown is busy.
TEST(StopWaitPolicy, SpinningOnlyWhenEveryRunnableThreadHasACpu) {
  EXPECT_TRUE(safepoint::spinning_leaves_cpus_free(1, 2));
  EXPECT_TRUE(safepoint::spinning_leaves_cpus_free(2, 2));
  EXPECT_FALSE(safepoint::spinning_leaves_cpus_free(3, 2));
  EXPECT_FALSE(safepoint::spinning_leaves_cpus_free(17, 2));
  EXPECT_FALSE(safepoint::spinning_leaves_cpus_free(0, 2));
  EXPECT_TRUE(safepoint::spinning_leaves_cpus_free(64, 64));
}

// The kernel's count includes the caller, which is running.
TEST(StopWaitPolicy, RunnableThreadCountIncludesTheCaller) {
  EXPECT_GE(kernel::runnable_thread_count(), 1u);
}

}  // namespace
}  // namespace usgc::testing
