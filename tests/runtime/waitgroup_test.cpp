// tests/runtime/waitgroup_test.cpp — wait groups (runtime/waitgroup.cpp): Go's sync.WaitGroup for
// goroutines (which park) and for plain threads (which sleep on a futex), in any mix.
//
// Harness as in channel_test.cpp: goroutine tests run as the main goroutine of a fresh runtime
// under a watchdog; tests that wait from the test thread start the runtime themselves.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace {

// ---- harness (tests/support/runtime_fixture.hpp: runtime per test, watchdog, seeds) ----

using usgc::testing::go;
using usgc::testing::run_main;

// A fresh runtime (2 Ps) per test, under a watchdog. Test bodies run on the test thread, which
// is not a goroutine: its waits sleep on the futex.
class WaitGroupRuntimeTest : public usgc::testing::RuntimeTest {};

TEST(WaitGroupTest, ZeroInitializedGroupWaitsForNothing) {
  usgc_waitgroup group = USGC_WAITGROUP_INIT;
  EXPECT_EQ(usgc_waitgroup_wait(&group), 0);  // no runtime, not a goroutine: still at once
  usgc_waitgroup zeroed;
  memset(&zeroed, 0, sizeof zeroed);
  EXPECT_EQ(usgc_waitgroup_add(&zeroed, 1), 0);
  EXPECT_EQ(usgc_waitgroup_done(&zeroed), 0);
  EXPECT_EQ(usgc_waitgroup_wait(&zeroed), 0);
}

TEST(WaitGroupTest, NegativeCounterIsEinvalAndLeavesTheCounterUnchanged) {
  usgc_waitgroup group = USGC_WAITGROUP_INIT;
  EXPECT_EQ(usgc_waitgroup_done(&group), EINVAL);
  EXPECT_EQ(usgc_waitgroup_add(&group, 2), 0);
  EXPECT_EQ(usgc_waitgroup_add(&group, -3), EINVAL);
  EXPECT_EQ(usgc_waitgroup_add(&group, INT64_MAX), EINVAL) << "overflow is refused too";
  EXPECT_EQ(usgc_waitgroup_done(&group), 0);  // 2 -> 1: the failed calls changed nothing
  EXPECT_EQ(usgc_waitgroup_done(&group), 0);  // 1 -> 0
  EXPECT_EQ(usgc_waitgroup_done(&group), EINVAL);
  EXPECT_EQ(usgc_waitgroup_wait(&group), 0);
}

TEST(WaitGroupTest, NullGroupIsEinval) {
  EXPECT_EQ(usgc_waitgroup_add(nullptr, 1), EINVAL);
  EXPECT_EQ(usgc_waitgroup_done(nullptr), EINVAL);
  EXPECT_EQ(usgc_waitgroup_wait(nullptr), EINVAL);
}

TEST_F(WaitGroupRuntimeTest, AGoroutineWaitsForGoroutines) {
  run_main([] {
    constexpr int kWorkers = 1000;
    for (int round = 0; round < 5; ++round) {
      usgc_waitgroup group = USGC_WAITGROUP_INIT;
      std::atomic<int> finished{0};
      ASSERT_EQ(usgc_waitgroup_add(&group, kWorkers), 0);
      for (int i = 0; i < kWorkers; ++i) {
        go([&] {
          if (finished.load() % 7 == 0) usgc_yield();
          finished.fetch_add(1);
          EXPECT_EQ(usgc_waitgroup_done(&group), 0);
        });
      }
      ASSERT_EQ(usgc_waitgroup_wait(&group), 0);
      EXPECT_EQ(finished.load(), kWorkers);
    }
  });
}

TEST_F(WaitGroupRuntimeTest, TheMainThreadWaitsForGoroutines) {
  constexpr int kWorkers = 1000;
  usgc_waitgroup group = USGC_WAITGROUP_INIT;
  std::atomic<int> finished{0};
  ASSERT_EQ(usgc_waitgroup_add(&group, kWorkers), 0);
  for (int i = 0; i < kWorkers; ++i) {
    go([&] {
      usgc_sleep_ns(1000000);  // so the test thread is asleep in the wait, not past it
      finished.fetch_add(1);
      EXPECT_EQ(usgc_waitgroup_done(&group), 0);
    });
  }
  ASSERT_EQ(usgc_waitgroup_wait(&group), 0);  // a plain thread: sleeps on the futex
  EXPECT_EQ(finished.load(), kWorkers);
}

// Goroutines and plain threads wait on one group together; the last done wakes all of them.
TEST_F(WaitGroupRuntimeTest, TheLastDoneWakesGoroutineAndThreadWaitersAlike) {
  constexpr int kGoroutineWaiters = 50;
  constexpr int kThreadWaiters = 4;
  usgc_waitgroup gate = USGC_WAITGROUP_INIT;
  usgc_waitgroup waiters_done = USGC_WAITGROUP_INIT;
  std::atomic<int> woken{0};
  ASSERT_EQ(usgc_waitgroup_add(&gate, 1), 0);
  ASSERT_EQ(usgc_waitgroup_add(&waiters_done, kGoroutineWaiters), 0);
  for (int i = 0; i < kGoroutineWaiters; ++i) {
    go([&] {
      EXPECT_EQ(usgc_waitgroup_wait(&gate), 0);
      woken.fetch_add(1);
      usgc_waitgroup_done(&waiters_done);
    });
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreadWaiters; ++i) {
    threads.emplace_back([&] {
      EXPECT_EQ(usgc_waitgroup_wait(&gate), 0);
      woken.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let them all get to sleep
  EXPECT_EQ(woken.load(), 0);
  ASSERT_EQ(usgc_waitgroup_done(&gate), 0);
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(usgc_waitgroup_wait(&waiters_done), 0);
  EXPECT_EQ(woken.load(), kGoroutineWaiters + kThreadWaiters);
  EXPECT_EQ(usgc_waitgroup_wait(&gate), 0) << "zero again: a late waiter returns at once";
}

// A group is reusable once it is back at zero: rounds of add / done / wait, waited for by a
// goroutine and by a thread at the same time.
TEST_F(WaitGroupRuntimeTest, GroupIsReusableAfterReachingZero) {
  constexpr int kRounds = 300;
  constexpr int kWorkers = 8;
  for (int round = 0; round < kRounds; ++round) {
    usgc_waitgroup group = USGC_WAITGROUP_INIT;
    usgc_waitgroup watcher_done = USGC_WAITGROUP_INIT;
    std::atomic<int> finished{0};
    std::atomic<int> watcher_saw{-1};
    ASSERT_EQ(usgc_waitgroup_add(&group, kWorkers), 0);
    ASSERT_EQ(usgc_waitgroup_add(&watcher_done, 1), 0);
    go([&] {
      EXPECT_EQ(usgc_waitgroup_wait(&group), 0);
      watcher_saw.store(finished.load());
      usgc_waitgroup_done(&watcher_done);
    });
    for (int i = 0; i < kWorkers; ++i) {
      go([&] {
        finished.fetch_add(1);
        EXPECT_EQ(usgc_waitgroup_done(&group), 0);
      });
    }
    ASSERT_EQ(usgc_waitgroup_wait(&group), 0);
    EXPECT_EQ(finished.load(), kWorkers);
    ASSERT_EQ(usgc_waitgroup_wait(&watcher_done), 0);
    ASSERT_EQ(watcher_saw.load(), kWorkers) << "round " << round;
    // Let this round's goroutines finish returning before the groups on this stack go away.
    while (usgc_goroutine_count() > 0) std::this_thread::yield();
  }
}

// The last-touch rule: the waiter may free the group the moment its wait returns, while the
// waker is still inside usgc_waitgroup_done (AddressSanitizer builds catch a late write).
TEST_F(WaitGroupRuntimeTest, AWaiterMayFreeTheGroupAsSoonAsItsWaitReturns) {
  constexpr int kRounds = 2000;
  for (int round = 0; round < kRounds; ++round) {
    auto* group = new usgc_waitgroup;
    *group = USGC_WAITGROUP_INIT;
    ASSERT_EQ(usgc_waitgroup_add(group, 1), 0);
    go([group] { EXPECT_EQ(usgc_waitgroup_done(group), 0); });
    ASSERT_EQ(usgc_waitgroup_wait(group), 0);  // the thread path
    delete group;
  }
  while (usgc_goroutine_count() > 0) std::this_thread::yield();
  // The goroutine path: a goroutine waits on a group on its own stack and returns at once.
  usgc_waitgroup all = USGC_WAITGROUP_INIT;
  ASSERT_EQ(usgc_waitgroup_add(&all, kRounds), 0);
  for (int round = 0; round < kRounds; ++round) {
    go([&all] {
      usgc_waitgroup group = USGC_WAITGROUP_INIT;
      usgc_waitgroup_add(&group, 1);
      go([&group] { EXPECT_EQ(usgc_waitgroup_done(&group), 0); });
      EXPECT_EQ(usgc_waitgroup_wait(&group), 0);
      usgc_waitgroup_done(&all);
    });
  }
  ASSERT_EQ(usgc_waitgroup_wait(&all), 0);
}

}  // namespace
