// tests/support/malloc_family_semantics.hpp — the semantics of malloc, calloc, realloc,
// reallocarray, free and malloc_usable_size, written once and run through two entry points.
//
// The contract is glibc's (include/usgc/usgc.h: "glibc's, where the C standard leaves a choice"):
// malloc(0) and realloc(NULL, 0) give unique freeable pointers, realloc(p, 0) frees p and returns
// NULL, an impossible size or an overflowing product is NULL with errno ENOMEM and leaves the old
// block alone, free(NULL) does nothing and free never changes errno, blocks are 16-byte aligned,
// at least as large as asked, writable to their usable size and never overlap, and calloc and
// realloc keep zeroes and contents.
//
// The tests are a value-parameterized suite (MallocFamilySemantics) over a MallocFamily, the
// functions to call. Two binaries instantiate it:
//   * tests/alloc/api_malloc_test.cpp with the usgc_* API (unit_tests; also in the asan, tsan and
//     ubsan builds, where the preload tests cannot run), adding usgc's own checks through the
//     optional members (the size-class waste bound, the free counter);
//   * tests/preload/malloc_semantics_test.cpp with the plain libc names, under
//     LD_PRELOAD=libusgc_preload.so (the interposition of each name), and runnable without the
//     preload to check the expectations against glibc itself.
// What only one entry point has stays in that file (usgc_free_sized and the decay in the first;
// memalign/valloc/pvalloc, mallinfo2, malloc_trim and libc's own allocations in the second).
//
// Header-only and free of usgc (the preload binary links nothing of usgc). It defines tests:
// include it from exactly one .cpp of a test binary.
#pragma once

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <ostream>
#include <set>
#include <vector>

#include "tests/support/memory_patterns.hpp"

namespace usgc_test {

// The functions one instantiation calls, and what it can check beyond glibc's contract.
struct MallocFamily {
  const char* name;  // the instantiation's name in test names: letters, digits, '_'
  void* (*malloc)(size_t size);
  void* (*calloc)(size_t count, size_t size);
  void* (*realloc)(void* pointer, size_t size);
  void* (*reallocarray)(void* pointer, size_t count, size_t size);
  void (*free)(void* pointer);
  size_t (*usable_size)(void* pointer);  // malloc_usable_size
  // usgc's size-class waste bound for sizes up to the largest size class: usable <=
  // max(round_up(size, 16), size * 1.125 + 16). Off (false) where the allocator is not usgc's.
  bool check_waste_bound = false;
  // The number of frees so far, or nullopt where it cannot be known (glibc); lets realloc(p, 0)
  // prove that it freed p.
  std::optional<uint64_t> (*free_count)() = nullptr;
};

inline void PrintTo(const MallocFamily& family, std::ostream* out) {
  *out << family.name;
}

namespace malloc_semantics {

inline constexpr size_t kLargestSizeClass = 128 * 1024;

// Sizes the optimizer cannot see through (no -Walloc-size-larger-than, no folding).
inline volatile size_t g_absurd_size = size_t{1} << 62;
inline volatile size_t g_size_max = SIZE_MAX;

inline size_t round_up(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// The size-class waste bound: at most 12.5% (plus the 16-byte granule) above the request. Above
// 1 KiB a request whose own class has no free block may get a free block of up to three larger
// classes (usgc's class borrowing, docs/allocator.md), each 1/8 of the power of two below it
// larger: at most 50% above the request.
inline size_t max_usable_for(size_t size) {
  if (size > 1024) return size + size / 2 + 16;
  return std::max(round_up(size, 16), size + (size + 7) / 8 + 16);
}

// Sizes from 4 KiB to 64 MiB around every power of two, and the size-class and segment edges.
inline std::vector<size_t> sample_sizes_above_4096() {
  std::set<size_t> sizes;
  for (size_t power = size_t{1} << 12; power <= (size_t{64} << 20); power <<= 1) {
    for (size_t size : {power / 2 + power / 3, power - 1, power, power + 1, power + power / 3,
                        power + power / 8 + 1})
      if (size > 4096 && size <= (size_t{64} << 20)) sizes.insert(size);
  }
  for (size_t size : {kLargestSizeClass - 1, kLargestSizeClass, kLargestSizeClass + 1,
                      (size_t{4} << 20) - 8192, (size_t{4} << 20) - 8191, size_t{4} << 20})
    sizes.insert(size);
  return {sizes.begin(), sizes.end()};
}

}  // namespace malloc_semantics

class MallocFamilySemantics : public testing::TestWithParam<MallocFamily> {
 protected:
  const MallocFamily& family() const { return GetParam(); }

  // Checks the common guarantees of one fresh block of `size` bytes; writes all of its usable
  // size.
  void expect_good_block(void* pointer, size_t size) const {
    ASSERT_NE(pointer, nullptr) << "size " << size;
    EXPECT_TRUE(is_aligned(pointer, 16)) << "size " << size << " pointer " << pointer;
    const size_t usable = family().usable_size(pointer);
    EXPECT_GE(usable, size) << "size " << size;
    if (family().check_waste_bound && size <= malloc_semantics::kLargestSizeClass) {
      EXPECT_LE(usable, malloc_semantics::max_usable_for(size))
          << "size-class waste bound broken for size " << size;
    }
    memset(pointer, 0xA5, usable);
    auto* bytes = static_cast<unsigned char*>(pointer);
    if (usable > 0) {
      EXPECT_EQ(bytes[0], 0xA5);
      EXPECT_EQ(bytes[usable - 1], 0xA5);
    }
  }

  // Runs `free_it` (which must free one block) and checks with the free counter, where the family
  // has one, that it did.
  template <typename FreeIt>
  void expect_frees_one_block(FreeIt free_it, const char* what, size_t size) {
    std::optional<uint64_t> before = family().free_count ? family().free_count() : std::nullopt;
    free_it();
    if (!before) return;
    std::optional<uint64_t> after = family().free_count();
    ASSERT_TRUE(after.has_value());
    EXPECT_GE(*after, *before + 1) << what << " must free the block; size " << size;
  }
};

// ---- malloc, free, malloc_usable_size --------------------------------------------------------

TEST_P(MallocFamilySemantics, MallocEverySizeUpTo4096IsAlignedUsableAndWritable) {
  for (size_t size = 0; size <= 4096; ++size) {
    void* p = family().malloc(size);
    expect_good_block(p, size);
    family().free(p);
    if (HasFailure()) return;  // one size's report is enough
  }
}

TEST_P(MallocFamilySemantics, MallocSampledSizesUpTo64MiBAreAlignedUsableAndWritable) {
  for (size_t size : malloc_semantics::sample_sizes_above_4096()) {
    void* p = family().malloc(size);
    expect_good_block(p, size);
    family().free(p);
  }
}

TEST_P(MallocFamilySemantics, MallocLiveBlocksOfEverySizeDoNotOverlap) {
  struct Live {
    void* pointer;
    size_t size;
  };
  std::vector<Live> live;
  for (size_t size = 1; size <= 4096; size += 7) live.push_back({family().malloc(size), size});
  for (size_t size : {size_t{20000}, size_t{100000}, size_t{1} << 20, size_t{5} << 20})
    live.push_back({family().malloc(size), size});
  for (size_t i = 0; i < live.size(); ++i) {
    ASSERT_NE(live[i].pointer, nullptr);
    fill_pattern(live[i].pointer, live[i].size, i);
  }
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(first_pattern_mismatch(live[i].pointer, live[i].size, i), live[i].size)
        << "block of size " << live[i].size << " was overwritten by a neighbour";
    family().free(live[i].pointer);
  }
}

TEST_P(MallocFamilySemantics, MallocZeroSizeReturnsUniqueFreeablePointers) {
  std::set<void*> seen;
  std::vector<void*> blocks;
  for (int i = 0; i < 512; ++i) {
    void* p = family().malloc(0);
    ASSERT_NE(p, nullptr) << "malloc(0) must return a unique pointer (glibc)";
    EXPECT_TRUE(is_aligned(p, 16));
    EXPECT_TRUE(seen.insert(p).second) << "malloc(0) returned " << p << " twice";
    blocks.push_back(p);
  }
  for (void* p : blocks) family().free(p);
}

TEST_P(MallocFamilySemantics, MallocAbsurdSizeReturnsNullWithEnomem) {
  using malloc_semantics::g_absurd_size;
  using malloc_semantics::g_size_max;
  for (size_t size : {static_cast<size_t>(g_absurd_size), static_cast<size_t>(g_size_max),
                      static_cast<size_t>(PTRDIFF_MAX), static_cast<size_t>(PTRDIFF_MAX) + 1}) {
    errno = 0;
    void* p = family().malloc(size);
    EXPECT_EQ(p, nullptr) << "size " << size;
    EXPECT_EQ(errno, ENOMEM) << "size " << size;
    family().free(p);
  }
  void* p = family().malloc(64);  // still works
  ASSERT_NE(p, nullptr);
  family().free(p);
}

TEST_P(MallocFamilySemantics, UsableSizeOfNullIsZero) {
  EXPECT_EQ(family().usable_size(nullptr), 0u);
}

TEST_P(MallocFamilySemantics, FreeOfNullDoesNothing) {
  family().free(nullptr);
  void* p = family().malloc(16);
  ASSERT_NE(p, nullptr);
  family().free(p);
}

// glibc >= 2.33: free never changes errno (POSIX.1-2024 requires it too).
TEST_P(MallocFamilySemantics, FreePreservesErrnoForEveryKind) {
  for (size_t size :
       {size_t{16}, size_t{5000}, size_t{100000}, size_t{1} << 20, size_t{16} << 20}) {
    void* p = family().malloc(size);
    ASSERT_NE(p, nullptr);
    errno = 1234;
    family().free(p);
    EXPECT_EQ(errno, 1234) << "free changed errno; size " << size;
  }
}

// ---- calloc ----------------------------------------------------------------------------------

TEST_P(MallocFamilySemantics, CallocReturnsZeroedMemoryOfEveryKind) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{16}, size_t{100}, size_t{1000}, size_t{8000},
                      size_t{100000}, size_t{1} << 20, size_t{16} << 20}) {
    void* p = family().calloc(1, size);
    ASSERT_NE(p, nullptr) << "size " << size;
    EXPECT_TRUE(is_aligned(p, 16));
    EXPECT_GE(family().usable_size(p), size);
    EXPECT_TRUE(all_zero(p, size)) << "size " << size;
    family().free(p);
    for (size_t element_size : {size_t{1}, size_t{3}}) {
      p = family().calloc(size, element_size);
      ASSERT_NE(p, nullptr) << "count " << size << " x " << element_size;
      EXPECT_TRUE(all_zero(p, size * element_size)) << "count " << size << " x " << element_size;
      family().free(p);
    }
  }
}

TEST_P(MallocFamilySemantics, CallocZeroesDirtyMemoryAfterReuse) {
  for (size_t size : {size_t{16}, size_t{24}, size_t{64}, size_t{500}, size_t{4096}, size_t{20000},
                      size_t{131072}, size_t{200000}, size_t{3} << 20, size_t{64} << 20}) {
    for (int round = 0; round < 4; ++round) {
      void* dirty = family().malloc(size);
      ASSERT_NE(dirty, nullptr);
      memset(dirty, 0xAB, family().usable_size(dirty));
      family().free(dirty);
      void* clean = family().calloc(1, size);
      ASSERT_NE(clean, nullptr);
      EXPECT_TRUE(all_zero(clean, size)) << "size " << size << " round " << round
                                         << (clean == dirty ? " (the dirty block reused)" : "");
      family().free(clean);
    }
  }
}

TEST_P(MallocFamilySemantics, CallocOverflowingProductReturnsNullWithEnomem) {
  const size_t size_max = malloc_semantics::g_size_max;
  const struct {
    size_t count, size;
  } overflowing[] = {{size_max / 2 + 2, 2},
                     {2, size_max / 2 + 2},
                     {size_t{1} << 32, size_t{1} << 32},
                     {size_max, size_max}};
  for (const auto& request : overflowing) {
    errno = 0;
    EXPECT_EQ(family().calloc(request.count, request.size), nullptr)
        << request.count << " x " << request.size;
    EXPECT_EQ(errno, ENOMEM) << request.count << " x " << request.size;
  }
  errno = 0;
  EXPECT_EQ(family().calloc(1, malloc_semantics::g_absurd_size), nullptr);  // just too big
  EXPECT_EQ(errno, ENOMEM);
  void* zero = family().calloc(0, 0);  // glibc: a unique freeable pointer
  EXPECT_NE(zero, nullptr);
  family().free(zero);
}

// ---- realloc ---------------------------------------------------------------------------------

TEST_P(MallocFamilySemantics, ReallocGrowAndShrinkBetweenSizeKindsKeepContents) {
  const struct {
    const char* what;
    size_t from, to;
  } steps[] = {
      {"small grows in class", 20, 30},
      {"small grows to small", 24, 1000},
      {"small grows to small, other class", 24, 100},
      {"small grows a little", 4000, 4100},
      {"small shrinks", 1000, 10},
      {"small to medium", 100, 50000},
      {"medium to small", 50000, 200},
      {"medium shrinks", 200000, 150000},
      {"medium grows", 130000, 140000},
      {"small to large", 100, size_t{1} << 20},
      {"large grows", size_t{1} << 20, size_t{3} << 20},
      {"large grows, other size", size_t{3} << 20, size_t{5} << 20},
      {"large shrinks", size_t{3} << 20, size_t{1} << 20},
      {"large halves", size_t{1} << 20, size_t{1} << 19},
      {"large to huge", size_t{1} << 20, size_t{16} << 20},
      {"huge grows", size_t{16} << 20, size_t{40} << 20},
      {"huge shrinks", size_t{40} << 20, size_t{9} << 20},
      {"huge to small", size_t{16} << 20, 100},
      {"large to small", size_t{2} << 20, 64},
      {"large to small, other size", size_t{5} << 20, 300},
      {"same size", 4000, 4000},
      {"same small size", 64, 64},
  };
  uint64_t tag = 1;
  for (const auto& step : steps) {
    void* p = family().malloc(step.from);
    ASSERT_NE(p, nullptr) << step.what;
    fill_pattern(p, step.from, tag);
    void* q = family().realloc(p, step.to);
    ASSERT_NE(q, nullptr) << step.what;
    EXPECT_TRUE(is_aligned(q, 16)) << step.what;
    EXPECT_GE(family().usable_size(q), step.to) << step.what;
    const size_t kept = std::min(step.from, step.to);
    EXPECT_EQ(first_pattern_mismatch(q, kept, tag), kept) << step.what << ": contents lost";
    memset(q, 0x5A, family().usable_size(q));  // the whole new block is writable
    family().free(q);
    ++tag;
  }
}

TEST_P(MallocFamilySemantics, ReallocLongGrowthChainKeepsContents) {
  size_t size = 1;
  void* p = family().malloc(size);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, size, 42);
  while (size < (size_t{24} << 20)) {
    const size_t next = size * 3 / 2 + 5;
    void* q = family().realloc(p, next);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(first_pattern_mismatch(q, size, 42), size) << size << " -> " << next;
    fill_pattern(q, next, 42);
    p = q;
    size = next;
  }
  while (size >= 3) {  // and back down, never to 0 (realloc(p, 0) frees)
    const size_t next = size / 3;
    void* q = family().realloc(p, next);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(first_pattern_mismatch(q, next, 42), next) << size << " -> " << next;
    p = q;
    size = next;
  }
  family().free(p);
}

TEST_P(MallocFamilySemantics, ReallocNullPointerActsAsMalloc) {
  void* p = family().realloc(nullptr, 300);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(family().usable_size(p), 300u);
  memset(p, 3, 300);
  family().free(p);
  void* zero = family().realloc(nullptr, 0);  // glibc: malloc(0), a unique pointer
  EXPECT_NE(zero, nullptr);
  family().free(zero);
}

TEST_P(MallocFamilySemantics, ReallocZeroSizeFreesAndReturnsNull) {
  for (size_t size : {size_t{32}, size_t{50000}, size_t{2} << 20, size_t{10} << 20}) {
    void* p = family().malloc(size);
    ASSERT_NE(p, nullptr);
    expect_frees_one_block(
        [&] {
          EXPECT_EQ(family().realloc(p, 0), nullptr)
              << "glibc: realloc(p, 0) frees p and returns NULL; size " << size;
        },
        "realloc(p, 0)", size);
  }
}

TEST_P(MallocFamilySemantics, ReallocFailureReturnsNullWithEnomemAndKeepsTheBlock) {
  for (size_t size : {size_t{300}, size_t{300000}, size_t{12} << 20}) {
    void* p = family().malloc(size);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, size, 5);
    void* volatile kept = p;  // still ours after the failed realloc
    errno = 0;
    EXPECT_EQ(family().realloc(p, malloc_semantics::g_absurd_size), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(first_pattern_mismatch(kept, size, 5), size) << "size " << size;
    family().free(kept);
  }
}

// ---- reallocarray ----------------------------------------------------------------------------

TEST_P(MallocFamilySemantics, ReallocarrayResizesLikeReallocOfTheProduct) {
  void* p = family().reallocarray(nullptr, 10, 10);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(family().usable_size(p), 100u);
  fill_pattern(p, 100, 9);
  void* q = family().reallocarray(p, 1000, 100);
  ASSERT_NE(q, nullptr);
  EXPECT_GE(family().usable_size(q), 100000u);
  EXPECT_EQ(first_pattern_mismatch(q, 100, 9), 100u);
  family().free(q);
}

TEST_P(MallocFamilySemantics, ReallocarrayZeroTotalSizeFreesAndReturnsNull) {
  void* p = family().malloc(100);
  ASSERT_NE(p, nullptr);
  expect_frees_one_block(
      [&] {
        EXPECT_EQ(family().reallocarray(p, 0, 5), nullptr)
            << "glibc: reallocarray(p, 0, n) is realloc(p, 0)";
      },
      "reallocarray(p, 0, 5)", 100);
}

TEST_P(MallocFamilySemantics, ReallocarrayOverflowReturnsNullWithEnomemAndKeepsTheBlock) {
  void* p = family().malloc(100);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 100, 9);
  void* volatile kept = p;  // still ours after the failed reallocarray
  const size_t size_max = malloc_semantics::g_size_max;
  errno = 0;
  EXPECT_EQ(family().reallocarray(p, size_max / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(family().reallocarray(kept, size_t{1} << 33, size_t{1} << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(first_pattern_mismatch(kept, 100, 9), 100u);
  errno = 0;
  EXPECT_EQ(family().reallocarray(nullptr, size_max / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* q = family().reallocarray(kept, 100, 10);  // the kept block still resizes
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(first_pattern_mismatch(q, 100, 9), 100u);
  family().free(q);
}

}  // namespace usgc_test
