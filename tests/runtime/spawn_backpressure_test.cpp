// tests/runtime/spawn_backpressure_test.cpp — spawn back-pressure, through the public API only
// (as an embedder would): a goroutine that spawns short-lived goroutines faster than its P runs
// them yields once its P's queue holds half a queue of them and no ended goroutine's stack is
// left to reuse, so the ones queued run and end, and the spawns reuse their stacks instead of
// making a new stack for every goroutine still waiting to run. At one P nothing else runs the
// queued goroutines, so without the rule all of them would be alive at once (every spawn making
// a stack); with it, the number alive stays near the queue plus the dead-goroutine caches,
// whatever the machine's timing (a preemption only lowers it further).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace usgc::testing {
namespace {

constexpr uint64_t kSpawns = 20000;

struct SpawnLoop {
  usgc_waitgroup done = USGC_WAITGROUP_INIT;
  std::atomic<uint64_t> ran{0};
  uint64_t peak_alive = 0;
};

void short_lived(void* argument) {
  auto* loop = static_cast<SpawnLoop*>(argument);
  loop->ran.fetch_add(1, std::memory_order_relaxed);
  usgc_waitgroup_done(&loop->done);
}

void spawn_all(SpawnLoop* loop) {
  ASSERT_EQ(usgc_waitgroup_add(&loop->done, static_cast<int64_t>(kSpawns)), 0);
  for (uint64_t i = 0; i < kSpawns; ++i) {
    ASSERT_EQ(usgc_go(short_lived, loop, nullptr), 0) << "spawn " << i;
    uint64_t alive = usgc_goroutine_count();
    if (alive > loop->peak_alive) loop->peak_alive = alive;
  }
  ASSERT_EQ(usgc_waitgroup_wait(&loop->done), 0);
}

TEST(SpawnBackPressure, OneProcessorSpawnLoopReusesTheStacksOfEndedGoroutines) {
  Watchdog watchdog(current_test_name());
  usgc_config config = runtime_config(1);
  ASSERT_EQ(usgc_init(&config), 0);
  SpawnLoop loop;
  run_main([&] { spawn_all(&loop); });
  EXPECT_EQ(loop.ran.load(), kSpawns);
  // Bound: 128 queued before the first yield, then at most what the P's cache (64) and the
  // global one (1 024) hand back before the queue is long and the caches empty again; without
  // the rule every one of the 20 000 would be alive when the loop ends.
  EXPECT_LE(loop.peak_alive, 2048u) << "alive at once while one P spawned " << kSpawns;
  EXPECT_TRUE(all_goroutines_finished());
  EXPECT_EQ(usgc_shutdown(), 0);
}

TEST(SpawnBackPressure, GoroutinesThatStayAliveAreAllSpawned) {
  // The yield never refuses a spawn: goroutines that park (so their stacks cannot be reused)
  // are all started, each with a stack of its own.
  Watchdog watchdog(current_test_name());
  usgc_config config = runtime_config(1);
  ASSERT_EQ(usgc_init(&config), 0);
  // ThreadSanitizer keeps megabytes of state per fiber (goroutine): 3 000 parked ones took 23 GiB
  // and the kernel's OOM killer ended the test binary. 400 still park over three times the 128
  // queued goroutines after which a spawning goroutine yields.
#if defined(__SANITIZE_THREAD__)
  constexpr uint64_t kParked = 400;
#else
  constexpr uint64_t kParked = 3000;
#endif
  std::atomic<uint64_t> parked{0};
  run_main([&] {
    usgc_chan* gate = usgc_chan_make(sizeof(int), 0);
    ASSERT_NE(gate, nullptr);
    struct Arguments {
      usgc_chan* gate;
      std::atomic<uint64_t>* parked;
    } arguments{gate, &parked};
    for (uint64_t i = 0; i < kParked; ++i) {
      ASSERT_EQ(usgc_go(
                    [](void* argument) {
                      auto* args = static_cast<Arguments*>(argument);
                      args->parked->fetch_add(1, std::memory_order_relaxed);
                      int value = 0;
                      bool ok = true;
                      usgc_chan_recv(args->gate, &value, &ok);
                    },
                    &arguments, nullptr),
                0)
          << "spawn " << i;
    }
    ASSERT_TRUE(eventually([&] { return parked.load() == kParked; }, std::chrono::seconds(60)));
    EXPECT_EQ(usgc_goroutine_count(), kParked + 1);
    ASSERT_EQ(usgc_chan_close(gate), 0);
    ASSERT_TRUE(eventually([] { return usgc_goroutine_count() == 1; }, std::chrono::seconds(60)));
    usgc_chan_destroy(gate);
  });
  EXPECT_TRUE(all_goroutines_finished());
  EXPECT_EQ(usgc_shutdown(), 0);
}

}  // namespace
}  // namespace usgc::testing
