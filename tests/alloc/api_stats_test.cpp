// tests/alloc/api_stats_test.cpp — usgc_malloc_get_stats, usgc_malloc_trim, and failure paths.
//
// The statistics are process-wide sums, so the tests only check movements they caused with
// ">=" comparisons (another thread may allocate at the same time) and invariants that hold in
// any state (bytes_committed <= bytes_reserved).
//
// Failure injection: usgc::kernel::fail_next_maps(n) makes the next n OS mappings fail with
// ENOMEM. A 64 MiB request maps its own region unless a freed one of about that size is still
// cached for the decay; usgc_malloc_trim returns those to the OS ("what the decay would return
// later"), so after a trim the request must map, and under injection it must fail cleanly (NULL
// and errno ENOMEM, never a crash), and work again once injection ends.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "kernel_iface/virtual_memory.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::read_stats;

constexpr size_t kHugeRequest = size_t{64} << 20;  // always maps its own region

// Empties usgc's caches (so the next huge request must map), then makes maps fail until the end
// of the scope, however the test leaves it, so later tests are not affected.
struct MapFailureInjection {
  explicit MapFailureInjection(uint32_t count) {
    (void)usgc_malloc_trim(0);
    usgc::kernel::fail_next_maps(count);
  }
  ~MapFailureInjection() { usgc::kernel::fail_next_maps(0); }
  MapFailureInjection(const MapFailureInjection&) = delete;
  MapFailureInjection& operator=(const MapFailureInjection&) = delete;
};

bool block_works(size_t size) {
  auto* p = static_cast<unsigned char*>(usgc_malloc(size));
  if (p == nullptr) return false;
  memset(p, 0x3D, size);
  const bool ok = p[0] == 0x3D && p[size - 1] == 0x3D;
  usgc_free(p);
  return ok;
}

}  // namespace

// ---- statistics ---------------------------------------------------------------------------

TEST(UsgcMallocStats, NullOrUnknownVersionIsEinval) {
  EXPECT_EQ(usgc_malloc_get_stats(nullptr), EINVAL);
  for (uint32_t version : {0u, USGC_MALLOC_STATS_VERSION + 1u, 0xFFFFFFFFu}) {
    usgc_malloc_stats stats{};
    stats.version = version;
    EXPECT_EQ(usgc_malloc_get_stats(&stats), EINVAL) << "version " << version;
  }
  usgc_malloc_stats stats{};
  stats.version = USGC_MALLOC_STATS_VERSION;
  EXPECT_EQ(usgc_malloc_get_stats(&stats), 0);
  EXPECT_EQ(stats.version, static_cast<uint32_t>(USGC_MALLOC_STATS_VERSION));
}

TEST(UsgcMallocStats, FieldsAreConsistentWhileBlocksAreLive) {
  std::vector<void*> blocks;
  for (size_t size : {size_t{16}, size_t{1000}, size_t{50000}, size_t{1} << 20, size_t{10} << 20})
    blocks.push_back(usgc_malloc(size));
  const usgc_malloc_stats stats = read_stats();
  EXPECT_GE(stats.numa_nodes, 1u);
  EXPECT_GT(stats.bytes_reserved, 0u);
  EXPECT_LE(stats.bytes_committed, stats.bytes_reserved);
  EXPECT_LE(stats.bytes_in_use, stats.bytes_committed);
  EXPECT_LE(stats.bytes_large_in_use, stats.bytes_in_use);
  EXPECT_GE(stats.bytes_in_use, size_t{11} << 20);
  EXPECT_GE(stats.segments, 1u);
  EXPECT_GE(stats.threads, 1u);
  EXPECT_GE(stats.malloc_count, blocks.size());
  for (void* p : blocks) usgc_free(p);
}

TEST(UsgcMallocStats, MallocAndFreeCountsMoveWithCalls) {
  constexpr size_t kCount = 1000;
  const usgc_malloc_stats start = read_stats();
  std::vector<void*> blocks;
  for (size_t i = 0; i < kCount; ++i) blocks.push_back(usgc_malloc(16 + i % 512));
  const usgc_malloc_stats allocated = read_stats();
  EXPECT_GE(allocated.malloc_count, start.malloc_count + kCount);
  for (void* p : blocks) usgc_free(p);
  const usgc_malloc_stats freed = read_stats();
  EXPECT_GE(freed.free_count, allocated.free_count + kCount);
  EXPECT_GE(freed.malloc_count, allocated.malloc_count);
}

TEST(UsgcMallocStats, BytesInUseRiseByTheBlocksAndFallWhenFreed) {
  constexpr size_t kCount = 64, kSize = 100 * 1024;
  const usgc_malloc_stats start = read_stats();
  std::vector<void*> blocks;
  for (size_t i = 0; i < kCount; ++i) blocks.push_back(usgc_malloc(kSize));
  const usgc_malloc_stats allocated = read_stats();
  EXPECT_GE(allocated.bytes_in_use, start.bytes_in_use + kCount * kSize);
  for (void* p : blocks) usgc_free(p);
  const usgc_malloc_stats freed = read_stats();
  // "about": other threads may hold a little more or less than at the start.
  EXPECT_LE(freed.bytes_in_use + kCount * kSize, allocated.bytes_in_use + (size_t{1} << 20));
}

TEST(UsgcMallocStats, LargeObjectsAreCountedAsLargeInUse) {
  const usgc_malloc_stats start = read_stats();
  void* large = usgc_malloc(size_t{1} << 20);
  void* huge = usgc_malloc(size_t{20} << 20);
  ASSERT_NE(large, nullptr);
  ASSERT_NE(huge, nullptr);
  const usgc_malloc_stats allocated = read_stats();
  EXPECT_GE(allocated.bytes_large_in_use, start.bytes_large_in_use + (size_t{21} << 20));
  EXPECT_GE(allocated.bytes_in_use, start.bytes_in_use + (size_t{21} << 20));
  EXPECT_GE(allocated.bytes_reserved, size_t{21} << 20);
  usgc_free(large);
  usgc_free(huge);
  const usgc_malloc_stats freed = read_stats();
  EXPECT_LE(freed.bytes_large_in_use + (size_t{21} << 20),
            allocated.bytes_large_in_use + (size_t{1} << 20));
}

TEST(UsgcMallocStats, FreeByAnotherThreadCountsAsRemote) {
  constexpr size_t kCount = 200;
  std::vector<void*> blocks;
  std::thread allocator([&blocks] {
    for (size_t i = 0; i < kCount; ++i) blocks.push_back(usgc_malloc(32 + i));
  });
  allocator.join();
  const usgc_malloc_stats before = read_stats();
  for (void* p : blocks) usgc_free(p);
  const usgc_malloc_stats after = read_stats();
  EXPECT_GE(after.remote_free_count, before.remote_free_count + kCount);
  EXPECT_GE(after.free_count, before.free_count + kCount);
}

// ---- trim -----------------------------------------------------------------------------------

TEST(UsgcMallocTrim, ReturnsZeroOrOneAndMemoryStillWorks) {
  std::vector<void*> blocks;
  for (int i = 0; i < 512; ++i) {
    void* p = usgc_malloc(64 * 1024);
    ASSERT_NE(p, nullptr);
    memset(p, 1, 64 * 1024);
    blocks.push_back(p);
  }
  for (void* p : blocks) usgc_free(p);
  const usgc_malloc_stats before = read_stats();
  const int trimmed = usgc_malloc_trim(0);
  EXPECT_TRUE(trimmed == 0 || trimmed == 1) << trimmed;
  const usgc_malloc_stats after = read_stats();
  EXPECT_LE(after.bytes_committed, after.bytes_reserved);
  EXPECT_LE(after.bytes_committed, before.bytes_committed + (size_t{4} << 20))
      << "trim must not commit more memory";
  EXPECT_GE(after.bytes_decommitted, before.bytes_decommitted);
  for (size_t size : {size_t{16}, size_t{64} * 1024, size_t{1} << 20, size_t{8} << 20})
    EXPECT_TRUE(block_works(size)) << "size " << size << " after trim";
  const int trimmed_with_pad = usgc_malloc_trim(size_t{1} << 20);
  EXPECT_TRUE(trimmed_with_pad == 0 || trimmed_with_pad == 1) << trimmed_with_pad;
  EXPECT_TRUE(block_works(100));
}

// ---- out of memory --------------------------------------------------------------------------

TEST(UsgcOutOfMemory, FailedMappingGivesNullWithEnomemAndRecovers) {
  {
    MapFailureInjection failing(1000);
    errno = 0;
    EXPECT_EQ(usgc_malloc(kHugeRequest), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(usgc_calloc(1, kHugeRequest), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(usgc_aligned_alloc(size_t{1} << 20, kHugeRequest), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x5eed});
    void* result = sentinel;
    EXPECT_EQ(usgc_posix_memalign(&result, 4096, kHugeRequest), ENOMEM);
    EXPECT_EQ(result, sentinel);
  }
  EXPECT_TRUE(block_works(kHugeRequest)) << "allocation must work again after the failures end";
  EXPECT_TRUE(block_works(100));
}

TEST(UsgcOutOfMemory, FailedReallocKeepsTheOriginalBlock) {
  auto* p = static_cast<unsigned char*>(usgc_malloc(5000));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 5000; ++i) p[i] = static_cast<unsigned char>(i);
  {
    MapFailureInjection failing(1000);
    errno = 0;
    void* unexpected = usgc_realloc(p, kHugeRequest);
    if (unexpected != nullptr) {  // p is gone: nothing more to check
      usgc_free(unexpected);
      FAIL() << "usgc_realloc to " << kHugeRequest
             << " bytes succeeded although every mapping fails";
    }
    EXPECT_EQ(errno, ENOMEM);
  }
  for (size_t i = 0; i < 5000; ++i) ASSERT_EQ(p[i], static_cast<unsigned char>(i)) << "byte " << i;
  auto* grown = static_cast<unsigned char*>(usgc_realloc(p, kHugeRequest));
  ASSERT_NE(grown, nullptr);
  for (size_t i = 0; i < 5000; ++i)
    ASSERT_EQ(grown[i], static_cast<unsigned char>(i)) << "byte " << i;
  usgc_free(grown);
}

TEST(UsgcOutOfMemory, NewThreadUnderMappingFailureGetsNullOrMemoryAndRecovers) {
  int null_without_enomem = 0, bad_blocks = 0;
  bool recovered = false;
  {
    MapFailureInjection failing(1000);
    std::thread fresh([&] {
      std::vector<void*> blocks;
      for (size_t i = 0; i < 2000; ++i) {
        const size_t size = i % 100 == 99 ? (size_t{1} << 20) : 16 + (i * 37) % 20000;
        errno = 0;
        void* p = usgc_malloc(size);
        if (p == nullptr) {
          if (errno != ENOMEM) ++null_without_enomem;
          continue;
        }
        memset(p, 0x11, size);
        if (static_cast<unsigned char*>(p)[size - 1] != 0x11) ++bad_blocks;
        blocks.push_back(p);
      }
      for (void* p : blocks) usgc_free(p);
      // The same thread recovers once mappings work again (no sticky failed-heap state).
      usgc::kernel::fail_next_maps(0);
      recovered = block_works(100) && block_works(size_t{1} << 20) && block_works(kHugeRequest);
    });
    fresh.join();
  }
  EXPECT_EQ(null_without_enomem, 0) << "a failed allocation must set errno to ENOMEM";
  EXPECT_EQ(bad_blocks, 0);
  EXPECT_TRUE(recovered)
      << "a thread whose allocations failed could not allocate after the failures ended";
  std::thread after([] {
    EXPECT_TRUE(block_works(100));
    EXPECT_TRUE(block_works(size_t{1} << 20));
  });
  after.join();
}
