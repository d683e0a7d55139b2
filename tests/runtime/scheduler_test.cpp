// tests/runtime/scheduler_test.cpp — the M:N scheduler: lifetime, spawning, yield, sleep,
// native calls, attached threads, preemption, idle cost, stack overflow.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "kernel_iface/clock.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace usgc::testing {
namespace {

TEST(RuntimeLifetime, InitTwiceIsEalreadyAndShutdownWithoutInitIsEperm) {
  EXPECT_EQ(usgc_shutdown(), EPERM);
  usgc_config config = runtime_config(2);
  ASSERT_EQ(usgc_init(&config), 0);
  EXPECT_EQ(usgc_init(&config), EALREADY);
  EXPECT_EQ(usgc_shutdown(), 0);
  EXPECT_EQ(usgc_shutdown(), EPERM);
  // And it starts again.
  ASSERT_EQ(usgc_init(&config), 0);
  EXPECT_EQ(usgc_shutdown(), 0);
}

TEST(RuntimeLifetime, ManyInitRunShutdownCyclesNeverLoseAWorker) {
  // Each cycle starts workers lazily and joins them at shutdown; a machine or spinning count
  // leaked from one cycle would leave the next one's main goroutine without a worker (a hang:
  // the watchdog names it).
  Watchdog watchdog(current_test_name());
  for (int cycle = 0; cycle < 200; ++cycle) {
    usgc_config config = runtime_config(1 + cycle % 3);
    ASSERT_EQ(usgc_init(&config), 0) << "cycle " << cycle;
    std::atomic<int> ran{0};
    run_main([&] {
      for (int i = 0; i < 20; ++i) go([&] { ran.fetch_add(1); });
      ASSERT_TRUE(eventually([&] { return ran.load() == 20; }));
    });
    ASSERT_TRUE(all_goroutines_finished()) << "cycle " << cycle;
    ASSERT_EQ(usgc_shutdown(), 0) << "cycle " << cycle;
  }
}

TEST(RuntimeLifetime, BadConfigurationIsEinval) {
  usgc_config config = runtime_config(0);
  EXPECT_EQ(usgc_init(&config), EINVAL);
  config = runtime_config(2);
  config.stack_bytes = 100;
  EXPECT_EQ(usgc_init(&config), EINVAL);
  config = runtime_config(2);
  config.version = 99;
  EXPECT_EQ(usgc_init(&config), EINVAL);
}

TEST(RuntimeLifetime, EnvironmentVariablesSetTheDefaults) {
  setenv("USGC_PROCS", "3", 1);
  setenv("USGC_STACK_SIZE", "128K", 1);
  usgc_config config;
  EXPECT_EQ(usgc_config_from_environment(&config), 0);
  EXPECT_EQ(config.procs, 3u);
  EXPECT_EQ(config.stack_bytes, 128u * 1024);
  // A bad value is refused with a message and the default is used (the README's rule).
  setenv("USGC_PROCS", "many", 1);
  EXPECT_EQ(usgc_config_from_environment(&config), 0);
  EXPECT_EQ(config.procs, static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_EQ(config.stack_bytes, 128u * 1024);
  unsetenv("USGC_PROCS");
  unsetenv("USGC_STACK_SIZE");
}

TEST(RuntimeLifetime, CallsBeforeInitAreEperm) {
  EXPECT_EQ(usgc_go([](void*) {}, nullptr, nullptr), EPERM);
  EXPECT_EQ(usgc_run_main([](void*) {}, nullptr), EPERM);
  EXPECT_EQ(usgc_attach_thread(), EPERM);
  EXPECT_EQ(usgc_goroutine_self(), 0u);
}

using Scheduler = RuntimeTest;

TEST_F(Scheduler, MainGoroutineRunsAndHasAnId) {
  usgc_goroutine_id seen = 0;
  run_main([&] { seen = usgc_goroutine_self(); });
  EXPECT_NE(seen, 0u);
  EXPECT_EQ(usgc_goroutine_self(), 0u);
}

TEST_F(Scheduler, ShutdownRefusesWhileGoroutinesLive) {
  std::atomic<bool> release{false};
  go([&] {
    while (!release.load()) usgc_sleep_ns(100'000);
  });
  EXPECT_EQ(usgc_shutdown(), EBUSY);
  release = true;
  ASSERT_TRUE(all_goroutines_finished());  // before `release` goes out of scope
}

TEST_F(Scheduler, TenThousandGoroutinesAllRunOnce) {
  constexpr int kCount = 10000;
  std::vector<std::atomic<int>> ran(kCount);
  run_main([&] {
    for (int i = 0; i < kCount; ++i) go([&ran, i] { ran[i].fetch_add(1); });
    ASSERT_TRUE(eventually([&] { return usgc_goroutine_count() == 1; }));
  });
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(ran[i].load(), 1) << "goroutine " << i;
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  ASSERT_EQ(usgc_runtime_get_stats(&stats), 0);
  EXPECT_GE(stats.goroutines_created, static_cast<uint64_t>(kCount + 1));
}

TEST_F(Scheduler, GoroutinesUseEveryProcessor) {
  // Two goroutines that each wait for the other to be running at the same time: only possible
  // when both Ps run goroutines.
  std::atomic<int> arrived{0};
  std::atomic<bool> both{false};
  run_main([&] {
    for (int i = 0; i < 2; ++i) {
      go([&] {
        arrived.fetch_add(1);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline)
          usgc_safepoint_poll();
        if (arrived.load() == 2) both = true;
      });
    }
  });
  ASSERT_TRUE(all_goroutines_finished());
  EXPECT_TRUE(both.load());
}

TEST_F(Scheduler, YieldInterleavesGoroutinesOnOneProcessor) {
  usgc_shutdown();
  usgc_config config = runtime_config(1);
  ASSERT_EQ(usgc_init(&config), 0);
  std::vector<int> order;
  std::atomic<int> done{0};
  run_main([&] {
    for (int who = 0; who < 2; ++who) {
      go([&, who] {
        for (int step = 0; step < 3; ++step) {
          order.push_back(who);
          usgc_yield();
        }
        done.fetch_add(1);
      });
    }
    while (done.load() < 2) usgc_yield();
  });
  ASSERT_TRUE(all_goroutines_finished());
  // One P: the two goroutines alternate after their first turns.
  ASSERT_EQ(order.size(), 6u);
  int switches = 0;
  for (size_t i = 1; i < order.size(); ++i) switches += order[i] != order[i - 1];
  EXPECT_GE(switches, 4);
}

TEST_F(Scheduler, SleepWaitsAtLeastItsDuration) {
  constexpr int kSleepers = 50;
  std::atomic<int> early{0};
  std::atomic<int> woke{0};
  run_main([&] {
    for (int i = 0; i < kSleepers; ++i) {
      go([&, i] {
        uint64_t want_ns = uint64_t(1 + i % 10) * 1'000'000;
        uint64_t start = kernel::monotonic_ns();
        usgc_sleep_ns(want_ns);
        if (kernel::monotonic_ns() - start < want_ns) early.fetch_add(1);
        woke.fetch_add(1);
      });
    }
    ASSERT_TRUE(eventually([&] { return woke.load() == kSleepers; }));
  });
  ASSERT_TRUE(all_goroutines_finished());
  EXPECT_EQ(early.load(), 0);
}

TEST_F(Scheduler, NativeCallGivesItsProcessorToOthers) {
  usgc_shutdown();
  usgc_config config = runtime_config(1);
  ASSERT_EQ(usgc_init(&config), 0);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  std::atomic<bool> reader_done{false};
  std::atomic<int> progress{0};
  run_main([&] {
    go([&] {
      char byte = 0;
      usgc_enter_native();
      ssize_t n = read(pipe_fds[0], &byte, 1);  // blocks until the writer below runs
      usgc_leave_native();
      EXPECT_EQ(n, 1);
      reader_done = true;
    });
    // With one P, this goroutine can only run while the reader is in native.
    go([&] {
      for (int i = 0; i < 100; ++i) {
        progress.fetch_add(1);
        usgc_yield();
      }
      char byte = 'x';
      EXPECT_EQ(write(pipe_fds[1], &byte, 1), 1);
    });
    ASSERT_TRUE(eventually([&] { return reader_done.load(); }));
  });
  ASSERT_TRUE(all_goroutines_finished());
  EXPECT_EQ(progress.load(), 100);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST_F(Scheduler, AttachedThreadIsAGoroutine) {
  std::atomic<int> spawned_ran{0};
  std::thread foreign([&] {
    ASSERT_EQ(usgc_goroutine_self(), 0u);
    ASSERT_EQ(usgc_attach_thread(), 0);
    EXPECT_EQ(usgc_attach_thread(), EALREADY);
    EXPECT_NE(usgc_goroutine_self(), 0u);
    for (int i = 0; i < 100; ++i) go([&] { spawned_ran.fetch_add(1); });
    for (int i = 0; i < 20; ++i) {
      usgc_yield();  // the goroutine moves through the queues and comes back to this thread
      usgc_sleep_ns(100'000);
      usgc_safepoint_poll();
    }
    EXPECT_TRUE(eventually([&] { return spawned_ran.load() == 100; }));
    ASSERT_EQ(usgc_detach_thread(), 0);
    EXPECT_EQ(usgc_detach_thread(), EPERM);
    EXPECT_EQ(usgc_goroutine_self(), 0u);
  });
  foreign.join();
  EXPECT_EQ(spawned_ran.load(), 100);
}

// The fixture's runtime again with one P and a 2 ms time slice: only preemption lets a second
// goroutine run beside one that never yields.
void restart_with_one_processor_and_short_slices() {
  usgc_shutdown();
  usgc_config config = runtime_config(1);
  config.preempt_after_us = 2000;
  ASSERT_EQ(usgc_init(&config), 0);
}

// Polls until *stop (at most 20 s) and never yields on its own.
void poll_until(const std::atomic<bool>& stop) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!stop.load() && std::chrono::steady_clock::now() < deadline) usgc_safepoint_poll();
}

TEST_F(Scheduler, LongRunningGoroutineIsPreemptedAtItsPolls) {
  restart_with_one_processor_and_short_slices();
  std::atomic<bool> stop{false};
  std::atomic<bool> other_ran{false};
  run_main([&] {
    go([&] { poll_until(stop); });
    go([&] {
      other_ran = true;
      stop = true;
    });
    ASSERT_TRUE(eventually([&] { return other_ran.load(); }));
  });
  ASSERT_TRUE(all_goroutines_finished());
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  ASSERT_EQ(usgc_runtime_get_stats(&stats), 0);
  EXPECT_GE(stats.preemptions, 1u);
}

// An attached thread that computes with polls and never yields is preempted like any goroutine
// (Go preempts a locked goroutine too): on the one P, a goroutine queued behind it runs. Before,
// a locked goroutine was never preempted, and the queued one waited as long as the thread
// computed (a thread attaching behind it waited for good).
TEST_F(Scheduler, AnAttachedThreadThatComputesIsPreemptedAtItsPolls) {
  restart_with_one_processor_and_short_slices();
  std::atomic<bool> stop{false};
  std::atomic<bool> other_ran{false};
  std::atomic<bool> spinning{false};
  std::thread attached([&] {
    ASSERT_EQ(usgc_attach_thread(), 0);
    spinning = true;
    poll_until(stop);
    ASSERT_EQ(usgc_detach_thread(), 0);
  });
  ASSERT_TRUE(eventually([&] { return spinning.load(); }));
  go([&] { other_ran = true; });
  const bool ran = eventually([&] { return other_ran.load(); }, std::chrono::seconds(5));
  stop = true;
  attached.join();
  EXPECT_TRUE(ran) << "the goroutine queued behind a computing attached thread never ran";
  ASSERT_TRUE(all_goroutines_finished());
}

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
         usage.ru_stime.tv_usec / 1e6;
}

TEST_F(Scheduler, IdleRuntimeUsesNoCpu) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's own background thread wakes every 100 ms and uses CPU (30 ms "
                  "in 500 ms here): the process is not idle however idle the runtime is";
#endif
  // Get workers started, then let everything go idle.
  run_main([&] {
    for (int i = 0; i < 100; ++i) go([] { usgc_yield(); });
  });
  ASSERT_TRUE(all_goroutines_finished());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double used = process_cpu_seconds() - before;
  // Parked workers and a sleeping monitor: well under 2 % of one core over the half second.
  EXPECT_LT(used, 0.01) << "an idle runtime used " << used * 1000 << " ms of CPU in 500 ms";
}

// Recursion the compiler cannot prove endless (the bound is never reached in practice).
volatile int g_recursion_limit = 1 << 30;
int recurse_deeply(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth >= g_recursion_limit) return 0;
  return recurse_deeply(depth + 1) + frame[0];
}

TEST(SchedulerDeathTest, StackOverflowNamesTheGoroutine) {
  EXPECT_EXIT(
      {
        usgc_config config = runtime_config(1);
        config.stack_bytes = 64 * 1024;
        usgc_init(&config);
        usgc_run_main([](void*) { recurse_deeply(0); }, nullptr);
      },
      ::testing::KilledBySignal(SIGSEGV), "goroutine [0-9]+: stack overflow");
}

}  // namespace
}  // namespace usgc::testing
