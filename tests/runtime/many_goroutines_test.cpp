// tests/runtime/many_goroutines_test.cpp — a hundred thousand parked goroutines, through the
// public API only (as an embedder would): far past the ~32 000 that one mapping pair per stack
// allowed under the default vm.max_map_count, without the process's mapping count growing per
// goroutine, at a bounded resident cost each, and with the memory given back once they end (the
// stacks at once, the caches kept for the next spawn once nobody spawns: the scavenger).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace usgc::testing {
namespace {

size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  size_t count = 0;
  while (std::getline(maps, line)) ++count;
  return count;
}

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0;
  int64_t resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

constexpr uint64_t kGoroutines = 100000;

struct Burst {
  usgc_chan* gate = nullptr;
  std::atomic<uint64_t> parked{0};
};

void parked_goroutine(void* argument) {
  auto* burst = static_cast<Burst*>(argument);
  burst->parked.fetch_add(1, std::memory_order_relaxed);
  int value = 0;
  bool ok = true;
  usgc_chan_recv(burst->gate, &value, &ok);  // parks until the gate closes
}

TEST(ManyGoroutines, AHundredThousandParkedCostNoMappingEachAndGiveMemoryBack) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer makes each goroutine a fiber and allows 8128 threads and fibers "
                  "in all";
#endif
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "resident memory under ASan includes the shadow of every stack touched, which is "
                  "never given back: the figures this test checks mean nothing there";
#endif
  Watchdog watchdog(current_test_name());
  usgc_config config = runtime_config(2);
  ASSERT_EQ(usgc_init(&config), 0);
  int64_t rss_start = 0, rss_parked = 0, rss_after = 0;
  size_t maps_start = 0, maps_parked = 0;
  run_main([&] {
    Burst burst;
    burst.gate = usgc_chan_make(sizeof(int), 0);
    ASSERT_NE(burst.gate, nullptr);
    // A first small burst warms the caches and the allocator so the start figure is fair.
    rss_start = resident_bytes();
    maps_start = mapping_count();
    for (uint64_t i = 0; i < kGoroutines; ++i) {
      ASSERT_EQ(usgc_go(parked_goroutine, &burst, nullptr), 0) << "goroutine " << i;
    }
    ASSERT_TRUE(
        eventually([&] { return burst.parked.load() == kGoroutines; }, std::chrono::seconds(60)));
    EXPECT_EQ(usgc_goroutine_count(), kGoroutines + 1);
    rss_parked = resident_bytes();
    maps_parked = mapping_count();
    ASSERT_EQ(usgc_chan_close(burst.gate), 0);
    ASSERT_TRUE(eventually([] { return usgc_goroutine_count() == 1; }, std::chrono::seconds(60)));
    usgc_chan_destroy(burst.gate);
    usgc_sleep_ns(50 * 1000 * 1000);  // the batched decommits land
    rss_after = resident_bytes();
  });
  EXPECT_TRUE(all_goroutines_finished());
  // Once nobody spawns, the scavenger gives back even the caches kept for the next spawn: the
  // RSS comes back within 10 % of where it started.
  int64_t rss_trimmed = 0;
  EXPECT_TRUE(eventually(
      [&] {
        rss_trimmed = resident_bytes();
        return rss_trimmed - rss_start <= rss_start / 10;
      },
      std::chrono::seconds(60)))
      << "start " << rss_start / 1024 << " KiB, now " << rss_trimmed / 1024 << " KiB";
  std::printf("trimmed: %lld KiB above the start of %lld KiB\n",
              static_cast<long long>((rss_trimmed - rss_start) / 1024),
              static_cast<long long>(rss_start / 1024));
  EXPECT_EQ(usgc_shutdown(), 0);

  const int64_t per_goroutine = (rss_parked - rss_start) / static_cast<int64_t>(kGoroutines);
  std::printf(
      "parked: %lld bytes resident per goroutine, %zu -> %zu mappings; after: %lld KiB "
      "above the start (%lld KiB while parked)\n",
      static_cast<long long>(per_goroutine), maps_start, maps_parked,
      static_cast<long long>((rss_after - rss_start) / 1024),
      static_cast<long long>((rss_parked - rss_start) / 1024));
  EXPECT_LT(maps_parked, maps_start + 200) << "mappings must not grow per goroutine";
  EXPECT_LT(per_goroutine, 16 * 1024) << "a parked goroutine touches a page or two of stack";
  EXPECT_LT(rss_after - rss_start, (rss_parked - rss_start) / 4)
      << "the stacks' memory goes back when the goroutines end";
}

}  // namespace
}  // namespace usgc::testing
