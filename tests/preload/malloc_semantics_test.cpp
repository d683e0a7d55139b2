// tests/preload/malloc_semantics_test.cpp — the C malloc family under
// LD_PRELOAD=libusgc_preload.so.
//
// This binary links nothing of usgc: it is an ordinary program whose malloc, free, ... are usgc's
// only because the preload library interposes them. Each test states a glibc behaviour (the
// contract of include/usgc/usgc.h: "glibc's, where the C standard leaves a choice") and checks
// it through the plain libc names, so every test except the ones in suite `UsgcPreload` (marked
// USGC-SPECIFIC) also passes when the binary runs without the preload, on glibc itself.
//
// The semantics malloc, calloc, realloc, reallocarray, free and malloc_usable_size share with
// usgc's C API are the suite of tests/support/malloc_family_semantics.hpp, run here through the
// libc names (suite Libc/MallocFamilySemantics). What only the libc names show is here: that they
// reach usgc, the functions glibc has beyond the API (memalign, valloc, pvalloc, malloc_trim,
// mallinfo2), and libc functions that allocate internally (strdup, getline, asprintf,
// open_memstream) and hand the block to us to free — they must be served by the interposed malloc
// too, or the free would be of a foreign pointer.
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "tests/support/malloc_family_semantics.hpp"
#include "tests/support/memory_patterns.hpp"

namespace {

using usgc_test::is_aligned;
using usgc_test::MallocFamily;
using usgc_test::MallocFamilySemantics;

// The subset of usgc_malloc_stats this file reads; the layout is the public ABI of usgc.h
// (version 1, fields only ever appended), repeated here because this binary must not include or
// link usgc.
struct UsgcMallocStatsV1 {
  uint32_t version;
  uint32_t numa_nodes;
  uint64_t bytes_reserved;
  uint64_t bytes_committed;
  uint64_t bytes_in_use;
  uint64_t bytes_large_in_use;
  uint64_t malloc_count;
  uint64_t free_count;
  uint64_t remote_free_count;
  uint64_t segments;
  uint64_t decommits_io_uring;
  uint64_t decommits_madvise;
  uint64_t bytes_decommitted;
  uint64_t threads;
};
using UsgcGetStats = int (*)(UsgcMallocStatsV1*);

UsgcGetStats find_usgc_get_stats() {
  return reinterpret_cast<UsgcGetStats>(dlsym(RTLD_DEFAULT, "usgc_malloc_get_stats"));
}

// Keeps the compiler from pairing a malloc with its free and deleting both.
inline void escape(void* pointer) {
  asm volatile("" : : "g"(pointer) : "memory");
}

// Sizes the optimizer cannot see through (no -Walloc-size-larger-than, no folding).
volatile size_t g_absurd_size = size_t{1} << 62;

// The free counter of usgc's statistics, when usgc is the process's malloc (nullopt on glibc).
std::optional<uint64_t> usgc_free_count_if_preloaded() {
  UsgcGetStats get_stats = find_usgc_get_stats();
  if (get_stats == nullptr) return std::nullopt;
  UsgcMallocStatsV1 stats{};
  stats.version = 1;
  if (get_stats(&stats) != 0) return std::nullopt;
  return stats.free_count;
}

const MallocFamily kLibc = {.name = "libc",
                            .malloc = malloc,
                            .calloc = calloc,
                            .realloc = realloc,
                            .reallocarray = reallocarray,
                            .free = free,
                            .usable_size = malloc_usable_size,
                            .free_count = usgc_free_count_if_preloaded};

}  // namespace

// ---- USGC-SPECIFIC: fails by design when run without LD_PRELOAD (on glibc) ------------------

TEST(UsgcPreload, UsgcIsTheProcessMalloc) {
  UsgcGetStats get_stats = find_usgc_get_stats();
  ASSERT_NE(get_stats, nullptr)
      << "usgc_malloc_get_stats is not in the process: this binary is not running under "
         "LD_PRELOAD=.../libusgc_preload.so, so every other test here checks glibc, not usgc";
  UsgcMallocStatsV1 before{};
  before.version = 1;
  ASSERT_EQ(get_stats(&before), 0);
  void* p = malloc(100);
  escape(p);
  UsgcMallocStatsV1 after{};
  after.version = 1;
  ASSERT_EQ(get_stats(&after), 0);
  free(p);
  EXPECT_GE(after.malloc_count, before.malloc_count + 1) << "plain malloc() did not reach usgc";
}

TEST(UsgcPreload, LibcInternalAllocationsAreServedByUsgc) {
  UsgcGetStats get_stats = find_usgc_get_stats();
  ASSERT_NE(get_stats, nullptr) << "not running under libusgc_preload.so";
  UsgcMallocStatsV1 before{};
  before.version = 1;
  ASSERT_EQ(get_stats(&before), 0);
  char* copy = strdup("interposed through libc's own call to malloc");
  ASSERT_NE(copy, nullptr);
  UsgcMallocStatsV1 after{};
  after.version = 1;
  ASSERT_EQ(get_stats(&after), 0);
  EXPECT_GE(after.malloc_count, before.malloc_count + 1) << "strdup's malloc bypassed usgc";
  free(copy);
  UsgcMallocStatsV1 freed{};
  freed.version = 1;
  ASSERT_EQ(get_stats(&freed), 0);
  EXPECT_GE(freed.free_count, after.free_count + 1) << "free of strdup's block bypassed usgc";
}

// ---- malloc, calloc, realloc, reallocarray, free, malloc_usable_size ------------------------

INSTANTIATE_TEST_SUITE_P(Libc, MallocFamilySemantics, testing::Values(kLibc),
                         [](const testing::TestParamInfo<MallocFamily>& info) {
                           return std::string(info.param.name);
                         });

// ---- aligned allocation -------------------------------------------------------------------

TEST(PreloadAlignedAllocation, MemalignAlignedAllocAndPosixMemalignHonourEveryPowerOfTwo) {
  for (size_t alignment = 16; alignment <= (size_t{4} << 20); alignment <<= 1) {
    for (size_t size :
         {size_t{1}, alignment / 2 + 1, alignment, alignment + 8, 3 * alignment + 16}) {
      void* a = memalign(alignment, size);
      ASSERT_NE(a, nullptr) << "memalign " << alignment << " " << size;
      EXPECT_TRUE(is_aligned(a, alignment)) << "memalign " << alignment << " " << size;
      EXPECT_GE(malloc_usable_size(a), size);
      memset(a, 0x42, size);
      void* b = aligned_alloc(alignment, size);
      ASSERT_NE(b, nullptr) << "aligned_alloc " << alignment << " " << size;
      EXPECT_TRUE(is_aligned(b, alignment)) << "aligned_alloc " << alignment << " " << size;
      EXPECT_GE(malloc_usable_size(b), size);
      memset(b, 0x43, size);
      void* c = nullptr;
      ASSERT_EQ(posix_memalign(&c, alignment, size), 0)
          << "posix_memalign " << alignment << " " << size;
      EXPECT_TRUE(is_aligned(c, alignment)) << "posix_memalign " << alignment << " " << size;
      EXPECT_GE(malloc_usable_size(c), size);
      memset(c, 0x44, size);
      free(a);
      free(b);
      free(c);
    }
  }
}

TEST(PreloadAlignedAllocation, SmallAlignmentsStillGiveSixteenByteAlignment) {
  for (size_t alignment : {size_t{1}, size_t{2}, size_t{4}, size_t{8}}) {
    void* a = aligned_alloc(alignment, 40);
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(is_aligned(a, 16));
    free(a);
    void* m = memalign(alignment, 40);
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(is_aligned(m, 16));
    free(m);
  }
  void* p = nullptr;
  ASSERT_EQ(posix_memalign(&p, sizeof(void*), 40), 0);
  EXPECT_TRUE(is_aligned(p, 16));
  free(p);
}

TEST(PreloadAlignedAllocation, PosixMemalignBadAlignmentIsEinvalAndLeavesResultUntouched) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x5eed});
  for (size_t alignment : {size_t{0}, size_t{1}, size_t{2}, size_t{4}, size_t{24}, size_t{48},
                           size_t{96}, size_t{4096 + 8}, (size_t{1} << 63) + 8}) {
    void* result = sentinel;
    EXPECT_EQ(posix_memalign(&result, alignment, 64), EINVAL) << "alignment " << alignment;
    EXPECT_EQ(result, sentinel) << "alignment " << alignment;
  }
}

TEST(PreloadAlignedAllocation, PosixMemalignAbsurdSizeIsEnomemAndLeavesResultUntouched) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x5eed});
  void* result = sentinel;
  EXPECT_EQ(posix_memalign(&result, 64, g_absurd_size), ENOMEM);
  EXPECT_EQ(result, sentinel);
}

TEST(PreloadAlignedAllocation, VallocIsPageAligned) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t size : {size_t{1}, size_t{100}, page, page + 1, size_t{1} << 20}) {
    void* p = valloc(size);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, page)) << "size " << size;
    EXPECT_GE(malloc_usable_size(p), size);
    memset(p, 7, size);
    free(p);
  }
}

TEST(PreloadAlignedAllocation, PvallocIsPageAlignedWithSizeRoundedUpToPages) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t size : {size_t{1}, size_t{100}, page, page + 1, 3 * page - 5}) {
    void* p = pvalloc(size);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, page)) << "size " << size;
    size_t rounded = (size + page - 1) / page * page;
    EXPECT_GE(malloc_usable_size(p), rounded) << "size " << size;
    memset(p, 9, rounded);
    free(p);
  }
}

// ---- introspection ------------------------------------------------------------------------

TEST(PreloadIntrospection, MallocTrimReturnsAndMemoryStillWorks) {
  std::vector<void*> blocks;
  for (int i = 0; i < 512; ++i) blocks.push_back(malloc(32 * 1024));
  for (void* p : blocks) free(p);
  int trimmed = malloc_trim(0);
  EXPECT_TRUE(trimmed == 0 || trimmed == 1) << trimmed;
  void* p = malloc(32 * 1024);
  ASSERT_NE(p, nullptr);
  memset(p, 0x55, 32 * 1024);
  free(p);
}

TEST(PreloadIntrospection, Mallinfo2InUseBytesGrowWithAllocations) {
  struct mallinfo2 before = mallinfo2();
  std::vector<void*> blocks;
  const size_t count = 1000, size = 200;
  for (size_t i = 0; i < count; ++i) {
    blocks.push_back(malloc(size));
    escape(blocks.back());
  }
  struct mallinfo2 after = mallinfo2();
  // glibc counts a few blocks taken from its thread cache as already in use; allow for that.
  EXPECT_GE(after.uordblks, before.uordblks + count * size / 2)
      << "uordblks before " << before.uordblks << " after " << after.uordblks;
  EXPECT_GT(after.uordblks, 0u);
  for (void* p : blocks) free(p);
}

// ---- libc functions that allocate for us ----------------------------------------------------

TEST(PreloadLibcAllocations, StrdupAndStrndupBlocksAreFreeable) {
  const char* text = "the quick brown fox jumps over the lazy dog";
  char* a = strdup(text);
  ASSERT_NE(a, nullptr);
  EXPECT_STREQ(a, text);
  EXPECT_GE(malloc_usable_size(a), strlen(text) + 1);
  char* b = strndup(text, 9);
  ASSERT_NE(b, nullptr);
  EXPECT_STREQ(b, "the quick");
  free(a);
  free(b);
}

TEST(PreloadLibcAllocations, GetlineBufferGrowsAndIsFreeable) {
  std::string input;
  for (int i = 0; i < 50; ++i)
    input += std::string(static_cast<size_t>(i) * 97 + 1, static_cast<char>('a' + i % 26)) + "\n";
  FILE* stream = fmemopen(input.data(), input.size(), "r");
  ASSERT_NE(stream, nullptr);
  char* line = nullptr;
  size_t capacity = 0;
  int lines = 0;
  ssize_t length;
  while ((length = getline(&line, &capacity, stream)) > 0) {
    EXPECT_EQ(static_cast<size_t>(length), static_cast<size_t>(lines) * 97 + 2);
    EXPECT_GE(malloc_usable_size(line), static_cast<size_t>(length) + 1);
    ++lines;
  }
  EXPECT_EQ(lines, 50);
  free(line);
  fclose(stream);
}

TEST(PreloadLibcAllocations, AsprintfAndOpenMemstreamBlocksAreFreeable) {
  char* formatted = nullptr;
  int length = asprintf(&formatted, "%s-%d-%0500d", "usgc", 42, 7);
  ASSERT_GT(length, 0);
  ASSERT_NE(formatted, nullptr);
  EXPECT_EQ(strlen(formatted), static_cast<size_t>(length));
  EXPECT_EQ(strncmp(formatted, "usgc-42-000", 11), 0);
  free(formatted);

  char* buffer = nullptr;
  size_t size = 0;
  FILE* stream = open_memstream(&buffer, &size);
  ASSERT_NE(stream, nullptr);
  for (int i = 0; i < 10000; ++i) fprintf(stream, "%d,", i);
  fclose(stream);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(strlen(buffer), size);
  EXPECT_EQ(strncmp(buffer, "0,1,2,3,", 8), 0);
  free(buffer);
}

TEST(PreloadLibcAllocations, StdStringAndVectorGrowthKeepContents) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text.push_back(static_cast<char>('A' + i % 26));
  for (int i = 0; i < 100000; ++i)
    ASSERT_EQ(text[static_cast<size_t>(i)], static_cast<char>('A' + i % 26));
  std::vector<std::string> strings;
  for (int i = 0; i < 5000; ++i)
    strings.push_back(std::string(static_cast<size_t>(i % 300), 'x') + std::to_string(i));
  for (int i = 0; i < 5000; ++i)
    ASSERT_EQ(strings[static_cast<size_t>(i)].size(),
              static_cast<size_t>(i % 300) + std::to_string(i).size());
}
