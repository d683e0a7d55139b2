// tests/alloc/api_malloc_test.cpp — usgc_malloc, usgc_calloc, usgc_realloc(array), usgc_free.
//
// Black-box tests of the malloc-mode C API against its contract in include/usgc/usgc.h: glibc's
// semantics of the malloc family, at least 16-byte alignment, a usable size at least the request,
// and the size-class waste bound of the allocator design for sizes up to the largest size class
// (128 KiB): usable <= max(round_up(size, 16), size * 1.125 + 16).
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "tests/support/memory_patterns.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::all_zero;
using usgc_test::fill_pattern;
using usgc_test::first_pattern_mismatch;
using usgc_test::is_aligned;
using usgc_test::pattern_byte;
using usgc_test::read_stats;

constexpr size_t kLargestSizeClass = 128 * 1024;

// Sizes the optimizer cannot see through.
volatile size_t g_absurd_size = size_t{1} << 62;
volatile size_t g_size_max = SIZE_MAX;

size_t round_up(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// The size-class waste bound: at most 12.5% (plus the 16-byte granule) above the request.
size_t max_usable_for(size_t size) {
  return std::max(round_up(size, 16), size + (size + 7) / 8 + 16);
}

// Checks the common guarantees of one fresh block of `size` bytes; writes all of its usable size.
void expect_good_block(void* pointer, size_t size) {
  ASSERT_NE(pointer, nullptr) << "size " << size;
  EXPECT_TRUE(is_aligned(pointer, 16)) << "size " << size << " pointer " << pointer;
  const size_t usable = usgc_malloc_usable_size(pointer);
  EXPECT_GE(usable, size) << "size " << size;
  if (size <= kLargestSizeClass) {
    EXPECT_LE(usable, max_usable_for(size)) << "size-class waste bound broken for size " << size;
  }
  memset(pointer, 0xA5, usable);
  auto* bytes = static_cast<unsigned char*>(pointer);
  if (usable > 0) {
    EXPECT_EQ(bytes[0], 0xA5);
    EXPECT_EQ(bytes[usable - 1], 0xA5);
  }
}

std::vector<size_t> sample_sizes_above_4096() {
  std::vector<size_t> sizes;
  for (size_t power = size_t{1} << 13; power <= (size_t{64} << 20); power <<= 1) {
    for (size_t size : {power / 2 + power / 3, power - 1, power, power + 1, power + power / 8 + 1})
      if (size > 4096 && size <= (size_t{64} << 20)) sizes.push_back(size);
  }
  for (size_t size : {kLargestSizeClass - 1, kLargestSizeClass, kLargestSizeClass + 1,
                      (size_t{4} << 20) - 8192, (size_t{4} << 20) - 8191, size_t{4} << 20})
    sizes.push_back(size);
  return sizes;
}

}  // namespace

// ---- malloc -------------------------------------------------------------------------------

TEST(UsgcMalloc, EverySizeUpTo4096IsAlignedWithinTheWasteBoundAndWritable) {
  for (size_t size = 0; size <= 4096; ++size) {
    void* p = usgc_malloc(size);
    expect_good_block(p, size);
    usgc_free(p);
    if (HasFailure()) return;  // one size's report is enough
  }
}

TEST(UsgcMalloc, SampledSizesUpTo64MiBAreAlignedUsableAndWritable) {
  for (size_t size : sample_sizes_above_4096()) {
    void* p = usgc_malloc(size);
    expect_good_block(p, size);
    usgc_free(p);
  }
}

TEST(UsgcMalloc, LiveBlocksOfEverySizeDoNotOverlap) {
  struct Live {
    void* pointer;
    size_t size;
  };
  std::vector<Live> live;
  for (size_t size = 1; size <= 4096; size += 7) live.push_back({usgc_malloc(size), size});
  for (size_t size : {size_t{20000}, size_t{100000}, size_t{1} << 20, size_t{5} << 20})
    live.push_back({usgc_malloc(size), size});
  for (size_t i = 0; i < live.size(); ++i) {
    ASSERT_NE(live[i].pointer, nullptr);
    fill_pattern(live[i].pointer, live[i].size, i);
  }
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(first_pattern_mismatch(live[i].pointer, live[i].size, i), live[i].size)
        << "block of size " << live[i].size << " was overwritten by a neighbour";
    usgc_free(live[i].pointer);
  }
}

TEST(UsgcMalloc, ZeroSizeReturnsUniqueFreeablePointer) {
  std::set<void*> seen;
  std::vector<void*> blocks;
  for (int i = 0; i < 512; ++i) {
    void* p = usgc_malloc(0);
    ASSERT_NE(p, nullptr) << "usgc_malloc(0) must return a unique pointer";
    EXPECT_TRUE(is_aligned(p, 16));
    EXPECT_TRUE(seen.insert(p).second) << "usgc_malloc(0) returned " << p << " twice";
    blocks.push_back(p);
  }
  for (void* p : blocks) usgc_free(p);
}

TEST(UsgcMalloc, AbsurdSizeReturnsNullWithEnomem) {
  for (size_t size : {static_cast<size_t>(g_absurd_size), static_cast<size_t>(g_size_max),
                      static_cast<size_t>(PTRDIFF_MAX), static_cast<size_t>(PTRDIFF_MAX) + 1}) {
    errno = 0;
    void* p = usgc_malloc(size);
    EXPECT_EQ(p, nullptr) << "size " << size;
    EXPECT_EQ(errno, ENOMEM) << "size " << size;
    usgc_free(p);
  }
}

TEST(UsgcMalloc, UsableSizeOfNullIsZero) {
  EXPECT_EQ(usgc_malloc_usable_size(nullptr), 0u);
}

TEST(UsgcFree, NullDoesNothing) {
  usgc_free(nullptr);
  usgc_free_sized(nullptr, 0);
  usgc_free_sized(nullptr, 100);
  void* p = usgc_malloc(16);
  ASSERT_NE(p, nullptr);
  usgc_free(p);
}

TEST(UsgcFree, FreeSizedAcceptsTheRequestedSizeOfEveryKind) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{16}, size_t{100}, size_t{3000}, size_t{9000},
                      size_t{70000}, size_t{200000}, size_t{2} << 20, size_t{10} << 20}) {
    void* p = usgc_malloc(size);
    ASSERT_NE(p, nullptr);
    memset(p, 1, size);
    usgc_free_sized(p, size);
  }
  // Memory freed with a size hint is reused normally.
  for (int i = 0; i < 1000; ++i) {
    void* p = usgc_malloc(48);
    ASSERT_NE(p, nullptr);
    memset(p, 2, 48);
    usgc_free_sized(p, 48);
  }
}

// glibc >= 2.33: free never changes errno (POSIX.1-2024 requires it too).
TEST(UsgcFree, PreservesErrnoForEveryKind) {
  for (size_t size :
       {size_t{16}, size_t{5000}, size_t{100000}, size_t{1} << 20, size_t{16} << 20}) {
    void* p = usgc_malloc(size);
    ASSERT_NE(p, nullptr);
    errno = 1234;
    usgc_free(p);
    EXPECT_EQ(errno, 1234) << "usgc_free changed errno; size " << size;
    p = usgc_malloc(size);
    ASSERT_NE(p, nullptr);
    errno = 1234;
    usgc_free_sized(p, size);
    EXPECT_EQ(errno, 1234) << "usgc_free_sized changed errno; size " << size;
  }
}

// ---- calloc -------------------------------------------------------------------------------

TEST(UsgcCalloc, ReturnsZeroedMemoryOfEveryKind) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{16}, size_t{100}, size_t{1000}, size_t{8000},
                      size_t{100000}, size_t{1} << 20, size_t{16} << 20}) {
    void* p = usgc_calloc(1, size);
    ASSERT_NE(p, nullptr) << "size " << size;
    EXPECT_TRUE(is_aligned(p, 16));
    EXPECT_GE(usgc_malloc_usable_size(p), size);
    EXPECT_TRUE(all_zero(p, size)) << "size " << size;
    usgc_free(p);
    p = usgc_calloc(size, 3);
    ASSERT_NE(p, nullptr) << "count " << size;
    EXPECT_TRUE(all_zero(p, size * 3)) << "count " << size;
    usgc_free(p);
  }
}

TEST(UsgcCalloc, ZeroesDirtyMemoryAfterReuse) {
  for (size_t size : {size_t{16}, size_t{64}, size_t{500}, size_t{4096}, size_t{20000},
                      size_t{131072}, size_t{200000}, size_t{3} << 20, size_t{64} << 20}) {
    for (int round = 0; round < 4; ++round) {
      void* dirty = usgc_malloc(size);
      ASSERT_NE(dirty, nullptr);
      memset(dirty, 0xAB, usgc_malloc_usable_size(dirty));
      usgc_free(dirty);
      void* clean = usgc_calloc(1, size);
      ASSERT_NE(clean, nullptr);
      EXPECT_TRUE(all_zero(clean, size)) << "size " << size << " round " << round
                                         << (clean == dirty ? " (the dirty block reused)" : "");
      usgc_free(clean);
    }
  }
}

// Memory handed back to the OS (by usgc_malloc_trim now, or by the decay later) and then reused
// must still come back zeroed from calloc, whether usgc relies on the OS zeroing it or not.
TEST(UsgcCalloc, ZeroesMemoryThatWasReturnedToTheOsAndReused) {
  const size_t sizes[] = {48, 3000, 40000, size_t{1} << 20, size_t{3} << 20, size_t{20} << 20};
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t size : sizes) {
      std::vector<void*> dirty;
      for (int i = 0; i < 64; ++i) {
        void* p = usgc_malloc(size);
        ASSERT_NE(p, nullptr);
        memset(p, 0xCD, size);
        dirty.push_back(p);
        if (size > 100000 && i == 3) break;  // a few large blocks are enough
      }
      for (void* p : dirty) usgc_free(p);
    }
    if (pass == 0) {
      (void)usgc_malloc_trim(0);  // return it now
    } else {
      usleep(400 * 1000);  // let the decay (USGC_DECAY_MS, 250 by default) pass
      for (int i = 0; i < 100; ++i) usgc_free(usgc_malloc(64));  // give the decay a chance to run
    }
    for (size_t size : sizes) {
      std::vector<void*> clean;
      for (int i = 0; i < 64; ++i) {
        void* p = usgc_calloc(1, size);
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(all_zero(p, size)) << "pass " << pass << " size " << size << " block " << i;
        clean.push_back(p);
        if (size > 100000 && i == 3) break;
      }
      for (void* p : clean) usgc_free(p);
    }
  }
}

TEST(UsgcCalloc, OverflowingProductReturnsNullWithEnomem) {
  const size_t size_max = g_size_max;
  const struct {
    size_t count, size;
  } overflowing[] = {{size_max / 2 + 2, 2},
                     {2, size_max / 2 + 2},
                     {size_t{1} << 32, size_t{1} << 32},
                     {size_max, size_max}};
  for (const auto& request : overflowing) {
    errno = 0;
    EXPECT_EQ(usgc_calloc(request.count, request.size), nullptr)
        << request.count << " x " << request.size;
    EXPECT_EQ(errno, ENOMEM) << request.count << " x " << request.size;
  }
  errno = 0;
  EXPECT_EQ(usgc_calloc(1, g_absurd_size), nullptr);  // no overflow, just too big
  EXPECT_EQ(errno, ENOMEM);
}

// ---- realloc ------------------------------------------------------------------------------

TEST(UsgcRealloc, GrowAndShrinkBetweenSizeKindsKeepContents) {
  const struct {
    const char* what;
    size_t from, to;
  } steps[] = {
      {"small grows in class", 20, 30},
      {"small grows to small", 24, 1000},
      {"small shrinks", 1000, 10},
      {"small to medium", 100, 50000},
      {"medium to small", 50000, 200},
      {"small to large", 100, size_t{1} << 20},
      {"large grows", size_t{1} << 20, size_t{3} << 20},
      {"large shrinks", size_t{3} << 20, size_t{1} << 20},
      {"large to huge", size_t{1} << 20, size_t{16} << 20},
      {"huge grows", size_t{16} << 20, size_t{40} << 20},
      {"huge shrinks", size_t{40} << 20, size_t{9} << 20},
      {"huge to small", size_t{16} << 20, 100},
      {"large to small", size_t{2} << 20, 64},
      {"same size", 4000, 4000},
  };
  uint64_t tag = 1;
  for (const auto& step : steps) {
    void* p = usgc_malloc(step.from);
    ASSERT_NE(p, nullptr) << step.what;
    fill_pattern(p, step.from, tag);
    void* q = usgc_realloc(p, step.to);
    ASSERT_NE(q, nullptr) << step.what;
    EXPECT_TRUE(is_aligned(q, 16)) << step.what;
    EXPECT_GE(usgc_malloc_usable_size(q), step.to) << step.what;
    const size_t kept = std::min(step.from, step.to);
    EXPECT_EQ(first_pattern_mismatch(q, kept, tag), kept) << step.what << ": contents lost";
    memset(q, 0x5A, usgc_malloc_usable_size(q));
    usgc_free(q);
    ++tag;
  }
}

TEST(UsgcRealloc, LongGrowthChainKeepsContents) {
  size_t size = 1;
  void* p = usgc_malloc(size);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, size, 42);
  while (size < (size_t{24} << 20)) {
    const size_t next = size * 3 / 2 + 5;
    void* q = usgc_realloc(p, next);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(first_pattern_mismatch(q, size, 42), size) << size << " -> " << next;
    fill_pattern(q, next, 42);
    p = q;
    size = next;
  }
  while (size >= 3) {  // and back down, never to 0 (realloc(p, 0) frees)
    const size_t next = size / 3;
    void* q = usgc_realloc(p, next);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(first_pattern_mismatch(q, next, 42), next) << size << " -> " << next;
    p = q;
    size = next;
  }
  usgc_free(p);
}

TEST(UsgcRealloc, NullPointerActsAsMalloc) {
  void* p = usgc_realloc(nullptr, 300);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(usgc_malloc_usable_size(p), 300u);
  memset(p, 3, 300);
  usgc_free(p);
  void* zero = usgc_realloc(nullptr, 0);  // malloc(0): a unique pointer
  EXPECT_NE(zero, nullptr);
  usgc_free(zero);
}

TEST(UsgcRealloc, ZeroSizeFreesAndReturnsNull) {
  for (size_t size : {size_t{32}, size_t{50000}, size_t{2} << 20, size_t{10} << 20}) {
    void* p = usgc_malloc(size);
    ASSERT_NE(p, nullptr);
    const usgc_malloc_stats before = read_stats();
    EXPECT_EQ(usgc_realloc(p, 0), nullptr) << "size " << size;
    const usgc_malloc_stats after = read_stats();
    EXPECT_GE(after.free_count, before.free_count + 1)
        << "realloc(p, 0) must free p; size " << size;
  }
}

TEST(UsgcRealloc, FailureReturnsNullWithEnomemAndKeepsTheBlock) {
  for (size_t size : {size_t{300}, size_t{300000}, size_t{12} << 20}) {
    void* p = usgc_malloc(size);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, size, 5);
    void* volatile kept = p;
    errno = 0;
    EXPECT_EQ(usgc_realloc(p, g_absurd_size), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(first_pattern_mismatch(kept, size, 5), size) << "size " << size;
    usgc_free(kept);
  }
}

TEST(UsgcReallocarray, ResizesLikeReallocOfTheProduct) {
  void* p = usgc_reallocarray(nullptr, 10, 10);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(usgc_malloc_usable_size(p), 100u);
  fill_pattern(p, 100, 9);
  void* q = usgc_reallocarray(p, 1000, 100);
  ASSERT_NE(q, nullptr);
  EXPECT_GE(usgc_malloc_usable_size(q), 100000u);
  EXPECT_EQ(first_pattern_mismatch(q, 100, 9), 100u);
  usgc_free(q);
}

TEST(UsgcReallocarray, ZeroTotalSizeFreesAndReturnsNull) {
  void* p = usgc_malloc(100);
  ASSERT_NE(p, nullptr);
  const usgc_malloc_stats before = read_stats();
  EXPECT_EQ(usgc_reallocarray(p, 0, 5), nullptr) << "glibc: reallocarray(p, 0, n) is realloc(p, 0)";
  EXPECT_GE(read_stats().free_count, before.free_count + 1);
}

TEST(UsgcReallocarray, OverflowReturnsNullWithEnomemAndKeepsTheBlock) {
  void* p = usgc_malloc(100);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 100, 9);
  void* volatile kept = p;
  const size_t size_max = g_size_max;
  errno = 0;
  EXPECT_EQ(usgc_reallocarray(p, size_max / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(usgc_reallocarray(kept, size_t{1} << 33, size_t{1} << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(first_pattern_mismatch(kept, 100, 9), 100u);
  errno = 0;
  EXPECT_EQ(usgc_reallocarray(nullptr, size_max / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  usgc_free(kept);
}
