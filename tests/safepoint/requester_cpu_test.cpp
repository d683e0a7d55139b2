// tests/safepoint/requester_cpu_test.cpp — a requester does not spin on the CPU of a P it waits
// for (safepoint/stop_waits.cpp requester_spin): the P's thread, preempted by the requester or
// asleep there, cannot reach a poll while the requester keeps that CPU. The holder's CPU comes
// from its rseq word (kernel::current_thread_cpu_word), read under the slot's arm_lock as the
// requester arms it.
//
// One P's slot is driven by hand from a test thread pinned to one CPU (the runtime runs no
// goroutine, so its own machines leave that idle P alone); the requester is pinned to the same
// CPU, or to another. What is checked is the requester's decision (StopBreakdown), never a time.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <thread>

#include "kernel_iface/cpu.hpp"
#include "safepoint/stop_the_world.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/stop_rounds.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {
namespace {

bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// The rseq word names the CPU the thread runs on.
TEST(ThreadCpuWord, NamesTheCpuTheThreadRunsOn) {
  const uint32_t* word = kernel::current_thread_cpu_word();
  if (word == nullptr) GTEST_SKIP() << "no rseq area registered for this thread";
  std::thread pinned([] {
    ASSERT_TRUE(pin_to_cpu(0));
    const uint32_t* own = kernel::current_thread_cpu_word();
    ASSERT_NE(own, nullptr);
    EXPECT_EQ(kernel::cpu_word_value(own), 0u);
    EXPECT_EQ(kernel::current_cpu(), 0u);
  });
  pinned.join();
}

class RequesterCpu : public RuntimeTest {
 protected:
  // Both cases read the holder's CPU from its rseq area and need one P left to wait for.
  void SetUp() override {
    RuntimeTest::SetUp();
    if (kernel::current_thread_cpu_word() == nullptr) GTEST_SKIP() << "no rseq area";
    if (kernel::online_cpu_count() < 2) GTEST_SKIP() << "needs two CPUs (one P left to wait for)";
  }

  // A stop requested from a thread pinned to requester_cpu while a thread pinned to holder_cpu
  // holds the highest-numbered slot and acknowledges at its scheduler point (busy, never asleep).
  safepoint::StopBreakdown stop_with_holder_on(int holder_cpu, int requester_cpu) {
    safepoint::SafepointSlot* slot = idle_last_slot();
    std::atomic<bool> holding{false}, done{false};
    std::thread holder([&] {
      if (!pin_to_cpu(holder_cpu) || !safepoint::slot_try_acquire(slot)) return;
      holding = true;
      while (!done.load()) {
        if (safepoint::safepoint_requested(slot)) safepoint::reach_safepoint(slot, false);
        kernel::cpu_relax();
      }
      safepoint::slot_release(slot);
    });
    EXPECT_TRUE(eventually([&] { return holding.load(); }));
    safepoint::StopBreakdown breakdown{};
    std::thread requester([&] {
      ASSERT_TRUE(pin_to_cpu(requester_cpu));
      ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
      ASSERT_EQ(usgc_start_the_world(), 0);
      breakdown = safepoint::stop_breakdown_last();
    });
    requester.join();
    done = true;
    holder.join();
    return breakdown;
  }
};

// The holder's thread shares the requester's CPU: the requester sleeps at once (it used to spin
// 5 us there first, which only delayed that thread's poll).
TEST_F(RequesterCpu, DoesNotSpinOnTheCpuOfTheProcessorItWaitsFor) {
  ASSERT_TRUE(all_goroutines_finished());
  const safepoint::StopBreakdown breakdown = stop_with_holder_on(0, 0);
  EXPECT_EQ(breakdown.slots_running, 1u);
  EXPECT_TRUE(breakdown.requester_shared_cpu);
  EXPECT_EQ(breakdown.requester_spin_ns, 0u);
}

// The holder's thread on another CPU: the requester keeps its short spin there.
TEST_F(RequesterCpu, SpinsWhileTheProcessorItWaitsForIsOnAnotherCpu) {
  ASSERT_TRUE(all_goroutines_finished());
  const safepoint::StopBreakdown breakdown = stop_with_holder_on(1, 0);
  EXPECT_EQ(breakdown.slots_running, 1u);
  EXPECT_FALSE(breakdown.requester_shared_cpu);
  EXPECT_GT(breakdown.requester_spin_ns, 0u);
}

}  // namespace
}  // namespace usgc::testing
