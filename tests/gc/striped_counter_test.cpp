// tests/gc/striped_counter_test.cpp — the counters every run refill writes are striped
// (gc/striped_counter.hpp): two threads' updates of one counter land on different cache lines, and
// the value read is still exactly the sum of every update, whichever thread made it; a level
// raised on one thread and lowered on another reads exact, and below zero reads as 0.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "gc/gc_counters.hpp"
#include "gc/gc_state.hpp"

namespace {

namespace gc = usgc::gc;

// The stripe holding a thread's updates of `c`: the one whose value is not 0 (c starts at 0).
size_t stripe_written(const gc::StripedCounter& c) {
  size_t found = gc::kCounterStripes;
  for (size_t i = 0; i < gc::kCounterStripes; ++i)
    if (c.stripe_value(i) != 0) {
      EXPECT_EQ(found, gc::kCounterStripes) << "one thread's updates went to two stripes";
      found = i;
    }
  return found;
}

TEST(StripedCounter, TwoThreadsRefillingCountOnDifferentCacheLines) {
  auto counters = std::make_unique<gc::GcCounters>();  // large: a cache line per stripe
  gc::StripedCounter& a = counters->bytes_in_use[USGC_GOROUTINE_PRIVATE];
  gc::StripedCounter& b = counters->objects_allocated[USGC_GOROUTINE_PRIVATE];
  size_t stripe_a = 0, stripe_b = 0;
  std::thread([&] {
    gc::count_add(a, 4096);
    stripe_a = stripe_written(a);
  }).join();
  std::thread([&] {
    gc::count_add(b, 128);
    stripe_b = stripe_written(b);
  }).join();
  ASSERT_LT(stripe_a, gc::kCounterStripes);
  ASSERT_LT(stripe_b, gc::kCounterStripes);
  // Each thread owns one stripe for every counter: the second thread's stripe of `a` is stripe_b.
  EXPECT_NE(stripe_a, stripe_b) << "two refilling threads write the same line";
  EXPECT_EQ(a.load(), 4096u);
  EXPECT_EQ(b.load(), 128u);
}

TEST(StripedCounter, UpdatesFromManyThreadsSumExactly) {
  auto counters = std::make_unique<gc::GcCounters>();
  gc::StripedCounter& level = counters->bytes_in_use[USGC_GOROUTINE_SHARED];
  constexpr int kThreads = 24;  // more threads than stripes: some share one, none loses an update
  constexpr uint64_t kAdds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&level, t] {
      for (uint64_t i = 0; i < kAdds; ++i) {
        gc::count_add(level, 3);
        if (t % 2 == 1) gc::count_sub(level, 1);
      }
    });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(level.load(), kThreads * kAdds * 3 - kThreads / 2 * kAdds);
}

TEST(StripedCounter, ALevelRaisedOnOneThreadAndLoweredOnAnotherReadsExact) {
  auto counters = std::make_unique<gc::GcCounters>();
  gc::StripedCounter& level = counters->bytes_in_use[USGC_GOROUTINE_PRIVATE];
  std::thread([&] { gc::count_add(level, 1000); }).join();  // a refill
  std::thread([&] { gc::count_sub(level, 600); }).join();   // a collection on another thread
  EXPECT_EQ(gc::read_counters(*counters).bytes_in_use[USGC_GOROUTINE_PRIVATE], 400u);
  std::thread([&] { gc::count_sub(level, 500); }).join();  // freed before it was counted
  EXPECT_EQ(gc::read_counters(*counters).bytes_in_use[USGC_GOROUTINE_PRIVATE], 0u)
      << "a level below zero reads as 0";
  std::thread([&] { gc::count_add(level, 100); }).join();
  EXPECT_EQ(gc::read_counters(*counters).bytes_in_use[USGC_GOROUTINE_PRIVATE], 0u);
  std::thread([&] { gc::count_add(level, 1); }).join();
  EXPECT_EQ(gc::read_counters(*counters).bytes_in_use[USGC_GOROUTINE_PRIVATE], 1u);
}

}  // namespace
