// tests/alloc/heap_test.cpp — the thread heap's slow-path machinery seen from outside: full
// pages come back through delayed frees, exited threads' segments are reclaimed, empty pages
// go back to the OS after the decay, and trim returns memory at once.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/heap.hpp"
#include "alloc/segment.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

using namespace usgc::alloc;

using usgc_test::read_stats;

TEST(Heap, BlocksFreedByAnotherThreadAreReusedByTheOwner) {
  // Producer/consumer: the owner fills whole pages, a second thread frees every block. Without
  // the delayed-free path the owner's full pages would never be seen again and the heap grows.
  constexpr int kRounds = 40;
  constexpr int kBlocks = 20000;  // ~1 MiB of 48-byte blocks: many full pages per round
  std::vector<void*> blocks(kBlocks);
  uint64_t reserved_after_first = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (void*& p : blocks) {
      p = usgc_malloc(48);
      ASSERT_NE(p, nullptr);
    }
    std::thread consumer([&] {
      for (void* p : blocks) usgc_free(p);
    });
    consumer.join();
    if (round == 0) reserved_after_first = read_stats().bytes_reserved;
  }
  EXPECT_LE(read_stats().bytes_reserved, reserved_after_first + 2 * kSegmentBytes)
      << "remote frees into full pages were not reused";
}

TEST(Heap, SegmentsOfExitedThreadsAreReclaimed) {
  constexpr int kRounds = 30;
  std::vector<void*> leftovers;
  uint64_t reserved_after_warmup = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::thread worker([&] {
      for (int i = 0; i < 5000; ++i) leftovers.push_back(usgc_malloc(100 + i % 900));
    });
    worker.join();
    for (void* p : leftovers) usgc_free(p);  // remote frees into an abandoned segment
    leftovers.clear();
    if (round == 2) reserved_after_warmup = read_stats().bytes_reserved;
  }
  EXPECT_LE(read_stats().bytes_reserved, reserved_after_warmup + 2 * kSegmentBytes)
      << "abandoned segments were not reclaimed by later threads";
}

TEST(Heap, EmptyPagesAreReturnedToTheOsAfterTheDecay) {
  uint64_t saved_decay = g_decay_ms;
  g_decay_ms = 20;
  std::thread worker([] {  // a fresh heap, so nothing else of this test binary interferes
    std::vector<void*> blocks;
    for (int i = 0; i < 100000; ++i) blocks.push_back(usgc_malloc(200));  // ~20 MiB
    for (void* p : blocks) usgc_free(p);
    uint64_t purged_before = g_segment_counters.bytes_purged.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    // The decay is applied on the heap's next slow path: a size class never used before.
    void* trigger = usgc_malloc(5000);
    usgc_free(trigger);
    EXPECT_GE(g_segment_counters.bytes_purged.load(), purged_before + 8 * 1024 * 1024)
        << "at least the bulk of 20 MiB of empty pages should have been purged";
  });
  worker.join();
  g_decay_ms = saved_decay;
}

TEST(Heap, TrimReturnsEmptyMemoryImmediately) {
  std::thread worker([] {
    std::vector<void*> blocks;
    for (int i = 0; i < 50000; ++i) blocks.push_back(usgc_malloc(300));
    for (void* p : blocks) usgc_free(p);
    usgc_malloc_stats before = read_stats();
    EXPECT_EQ(usgc_malloc_trim(0), 1);
    usgc_malloc_stats after = read_stats();
    EXPECT_LT(after.bytes_committed, before.bytes_committed);
    void* again = usgc_malloc(300);  // purged pages are usable again (zero, committed on touch)
    ASSERT_NE(again, nullptr);
    std::memset(again, 0x5a, 300);
    usgc_free(again);
  });
  worker.join();
}

TEST(Heap, LargeObjectsGrowInPlaceIntoFreePagesOfTheirSegment) {
  char* p = static_cast<char*>(usgc_malloc(3 * 1024 * 1024));
  ASSERT_NE(p, nullptr);
  char* shrunk = static_cast<char*>(usgc_realloc(p, 200 * 1024));  // gives its tail pages back
  ASSERT_EQ(shrunk, p);
  std::memset(p, 7, 200 * 1024);
  char* grown = static_cast<char*>(usgc_realloc(p, 3 * 1024 * 1024));
  EXPECT_EQ(grown, p) << "a large object grows in place into the free pages after it";
  EXPECT_EQ(grown[200 * 1024 - 1], 7);
  usgc_free(grown);
}

TEST(Heap, LargeObjectsArePackedInSegmentsOfTheHeapsNode) {
  void* a = usgc_malloc(300 * 1024);
  void* b = usgc_malloc(300 * 1024);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (void* p : {a, b}) {
    Segment* segment = segment_of(p);
    EXPECT_EQ(segment->kind, SegmentKind::kLarge);
    EXPECT_EQ(segment->node, t_heap->node) << "a large object is placed on its thread's node";
  }
  usgc_free(a);
  usgc_free(b);
}
