// tests/alloc/large_objects_test.cpp — large objects packed into shared segments, from the
// public API only (include/usgc/usgc.h), as an embedder sees them.
//
// What it proves:
//   - every size around the thresholds (the largest size class, the span page, the largest
//     packed object, the huge threshold) gives a usable, distinct object whose bytes survive
//     neighbours being written, and calloc zeroes reused memory;
//   - many mid-size objects share segments (they no longer take a 4 MiB segment each);
//   - large alignments (aligned_alloc, posix_memalign) hold, and their pointers free cleanly;
//   - realloc shrinks in place, grows in place into the pages it gave back, and keeps the bytes
//     across every move (span to span, span to huge, huge to span, to and from small);
//   - a double free, a free of a pointer inside a freed span, and an interior pointer of a live
//     one are caught with the usual one-line message, also when another thread frees;
//   - objects freed by other threads come back (bytes in use return, segments stay bounded);
//   - freeing many large objects gives their memory back to the OS (trim at once, the decay
//     without a trim);
//   - a large object on memory that small blocks had, realloc'ed unwritten to a small size, frees
//     cleanly: the freed blocks' markers left in that memory are not copied into the new block
//     (page.hpp, "handed out clean").
#include <string.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "tests/support/death_test_support.hpp"
#include "tests/support/saved_environment.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::launder;
using usgc_test::read_stats;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kLargestSizeClass = 128 * kKiB;
constexpr size_t kSpanPage = 64 * kKiB;
constexpr size_t kSegment = 4 * kMiB;
constexpr size_t kLargestPacked = kSegment - 16 * kKiB;  // a segment minus its header

constexpr const char* kFreeMessage = "usgc: .*free.*0x[0-9a-f]+";

unsigned char pattern_byte(const void* object, size_t offset) {
  return static_cast<unsigned char>((reinterpret_cast<uintptr_t>(object) >> 12) * 31 + offset * 7 +
                                    1);
}

// Writes a pattern at every 512th byte and the last one (enough to catch overlap, cheap).
void fill(void* object, size_t size) {
  auto* bytes = static_cast<unsigned char*>(object);
  for (size_t i = 0; i < size; i += 512) bytes[i] = pattern_byte(object, i);
  bytes[size - 1] = pattern_byte(object, size - 1);
}

bool intact(const void* object, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(object);
  for (size_t i = 0; i < size; i += 512) {
    if (bytes[i] != pattern_byte(object, i)) return false;
  }
  return bytes[size - 1] == pattern_byte(object, size - 1);
}

// The same check against the pattern of the object's original address (after a realloc move).
bool intact_from(const void* object, const void* original, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(object);
  for (size_t i = 0; i < size; i += 512) {
    if (bytes[i] != pattern_byte(original, i)) return false;
  }
  return true;
}

std::vector<size_t> threshold_sizes() {
  std::vector<size_t> sizes;
  for (size_t at :
       {kLargestSizeClass, kLargestSizeClass + kSpanPage - 16 * kKiB, kLargestSizeClass + kSpanPage,
        2 * kSpanPage * 4, kMiB, kLargestPacked, kSegment, 2 * kSegment}) {
    for (long delta : {-1L, 0L, 1L}) sizes.push_back(at + delta);
  }
  sizes.push_back(kLargestPacked + 4 * kKiB);
  return sizes;
}

TEST(LargeObjects, SizesAroundEveryThresholdAreUsableAndDistinct) {
  std::vector<size_t> sizes = threshold_sizes();
  std::vector<void*> objects;
  for (size_t size : sizes) {
    void* p = usgc_malloc(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << size;
    EXPECT_GE(usgc_malloc_usable_size(p), size) << size;
    fill(p, size);
    objects.push_back(p);
  }
  for (size_t i = 0; i < sizes.size(); ++i)
    EXPECT_TRUE(intact(objects[i], sizes[i])) << "object of " << sizes[i] << " bytes overwritten";
  for (void* p : objects) usgc_free(p);
}

TEST(LargeObjects, CallocZeroesMemoryThatEarlierObjectsDirtied) {
  for (size_t size : threshold_sizes()) {
    void* dirty = usgc_malloc(size);
    ASSERT_NE(dirty, nullptr);
    memset(dirty, 0xab, size);
    usgc_free(dirty);
    auto* zeroed = static_cast<unsigned char*>(usgc_calloc(1, size));
    ASSERT_NE(zeroed, nullptr);
    size_t nonzero = 0;
    for (size_t i = 0; i < size; i += 64) nonzero += zeroed[i] != 0;
    nonzero += zeroed[size - 1] != 0;
    EXPECT_EQ(nonzero, 0u) << "calloc(" << size << ") returned dirty bytes";
    usgc_free(zeroed);
  }
}

TEST(LargeObjects, ManyMidSizeObjectsShareSegments) {
  constexpr int kObjects = 64;
  constexpr size_t kSize = 200 * kKiB;  // 4 pages of 64 KiB: 16 such objects per segment
  usgc_malloc_stats before = read_stats();
  std::vector<void*> objects;
  for (int i = 0; i < kObjects; ++i) {
    void* p = usgc_malloc(kSize);
    ASSERT_NE(p, nullptr);
    fill(p, kSize);
    objects.push_back(p);
  }
  usgc_malloc_stats after = read_stats();
  // 64 objects of 256 KiB of pages fill 4 segments; one segment each would be 64 (256 MiB).
  EXPECT_LE(after.segments, before.segments + 6);
  EXPECT_LE(after.bytes_reserved, before.bytes_reserved + 6 * kSegment);
  for (void* p : objects) EXPECT_TRUE(intact(p, kSize));
  for (void* p : objects) usgc_free(p);
}

TEST(LargeObjects, LargeAlignmentsHold) {
  for (size_t alignment : {32 * kKiB, 64 * kKiB, 128 * kKiB, kMiB, 2 * kMiB, 4 * kMiB}) {
    for (size_t size : {size_t{100}, kLargestSizeClass + 1, 300 * kKiB, kMiB, 3 * kMiB}) {
      void* a = usgc_aligned_alloc(alignment, size);
      ASSERT_NE(a, nullptr) << alignment << " " << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % alignment, 0u) << alignment << " " << size;
      EXPECT_GE(usgc_malloc_usable_size(a), size);
      fill(a, size);
      void* b = nullptr;
      ASSERT_EQ(usgc_posix_memalign(&b, alignment, size), 0) << alignment << " " << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % alignment, 0u) << alignment << " " << size;
      fill(b, size);
      EXPECT_TRUE(intact(a, size));
      EXPECT_TRUE(intact(b, size));
      // A realloc of an aligned object keeps its bytes (it may move).
      void* grown = usgc_realloc(b, size + 300 * kKiB);
      ASSERT_NE(grown, nullptr);
      EXPECT_TRUE(intact_from(grown, b, size));
      usgc_free(a);
      usgc_free(grown);
    }
  }
}

TEST(LargeObjects, ReallocShrinksInPlaceThenGrowsBackIntoTheSamePages) {
  char* p = static_cast<char*>(usgc_malloc(3 * kMiB));
  ASSERT_NE(p, nullptr);
  fill(p, 200 * kKiB);
  char* shrunk = static_cast<char*>(usgc_realloc(p, 200 * kKiB));
  EXPECT_EQ(shrunk, p) << "a large object shrinks in place";
  EXPECT_LT(usgc_malloc_usable_size(shrunk), 3 * kMiB);
  char* grown = static_cast<char*>(usgc_realloc(shrunk, 3 * kMiB));
  EXPECT_EQ(grown, p) << "the pages it gave back were still free: it grows in place";
  EXPECT_GE(usgc_malloc_usable_size(grown), 3 * kMiB);
  EXPECT_TRUE(intact(grown, 200 * kKiB));
  memset(grown, 1, 3 * kMiB);  // every byte of the grown object is usable
  usgc_free(grown);
}

TEST(LargeObjects, ReallocKeepsTheBytesAcrossEveryKindOfMove) {
  // Small -> large -> larger (in place or moved) -> huge -> bigger huge -> large -> small, with
  // other large objects allocated in between so that in-place growth is not always possible.
  const size_t steps[] = {1000,           kLargestSizeClass + 1,
                          300 * kKiB,     kMiB,
                          kLargestPacked, kLargestPacked + 1,
                          9 * kMiB,       2 * kMiB,
                          150 * kKiB,     5000};
  void* p = usgc_malloc(100);
  ASSERT_NE(p, nullptr);
  fill(p, 100);
  void* original = p;
  size_t valid = 100;  // bytes carrying the original pattern
  std::vector<void*> neighbours;
  for (size_t size : steps) {
    void* q = usgc_realloc(p, size);
    ASSERT_NE(q, nullptr) << size;
    EXPECT_TRUE(intact_from(q, original, std::min(valid, size))) << "realloc to " << size;
    valid = std::min(valid, size);
    if (valid < size) {  // extend the original pattern over the new bytes
      auto* bytes = static_cast<unsigned char*>(q);
      for (size_t i = (valid + 511) / 512 * 512; i < size; i += 512)
        bytes[i] = pattern_byte(original, i);
      valid = size;
    }
    p = q;
    void* neighbour = usgc_malloc(200 * kKiB);
    ASSERT_NE(neighbour, nullptr);
    neighbours.push_back(neighbour);
  }
  usgc_free(p);
  for (void* n : neighbours) usgc_free(n);
}

TEST(LargeObjects, ObjectsFreedByOtherThreadsComeBack) {
  constexpr int kRounds = 20;
  constexpr int kObjects = 48;
  const uint32_t seed = static_cast<uint32_t>(std::random_device{}());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  usgc_malloc_stats start = read_stats();
  uint64_t reserved_after_first = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::pair<void*, size_t>> objects;
    for (int i = 0; i < kObjects; ++i) {
      size_t size = kLargestSizeClass + 1 + random() % (kMiB - kLargestSizeClass);
      void* p = usgc_malloc(size);
      ASSERT_NE(p, nullptr);
      fill(p, size);
      objects.emplace_back(p, size);
    }
    // Two threads free alternate objects: frees race on the same segments.
    auto free_every_other = [&](size_t first, bool* all_intact) {
      for (size_t i = first; i < objects.size(); i += 2) {
        *all_intact = *all_intact && intact(objects[i].first, objects[i].second);
        usgc_free(objects[i].first);
      }
    };
    bool intact_even = true;
    bool intact_odd = true;
    std::thread even(free_every_other, 0, &intact_even);
    std::thread odd(free_every_other, 1, &intact_odd);
    even.join();
    odd.join();
    EXPECT_TRUE(intact_even && intact_odd) << "round " << round;
    if (round == 0) reserved_after_first = read_stats().bytes_reserved;
  }
  usgc_malloc_stats end = read_stats();
  EXPECT_EQ(end.bytes_large_in_use, start.bytes_large_in_use);
  // Freed spans are reused: later rounds need no more address space than the first (give or
  // take a few segments of fragmentation).
  EXPECT_LE(end.bytes_reserved, reserved_after_first + 4 * kSegment);
}

long resident_bytes() {
  FILE* statm = fopen("/proc/self/statm", "r");
  if (statm == nullptr) return -1;
  long size = 0;
  long resident = 0;
  int fields = fscanf(statm, "%ld %ld", &size, &resident);
  fclose(statm);
  return fields == 2 ? resident * 4096 : -1;
}

TEST(LargeObjects, TrimReturnsTheMemoryOfFreedLargeObjects) {
  constexpr int kObjects = 120;
  constexpr size_t kSize = 300 * kKiB;  // 36 MiB in all
  std::vector<void*> objects;
  for (int i = 0; i < kObjects; ++i) {
    void* p = usgc_malloc(kSize);
    ASSERT_NE(p, nullptr);
    memset(p, 0x5a, kSize);
    objects.push_back(p);
  }
  long resident_full = resident_bytes();
  for (void* p : objects) usgc_free(p);
  EXPECT_EQ(usgc_malloc_trim(0), 1) << "trim found nothing to return";
  long resident_trimmed = resident_bytes();
  ASSERT_GT(resident_full, 0);
  EXPECT_GE(resident_full - resident_trimmed, static_cast<long>(kObjects * kSize * 8 / 10))
      << "resident before " << resident_full << ", after trim " << resident_trimmed;
}

TEST(LargeObjects, TheDecayReturnsFreedSpansWithoutATrim) {
  constexpr int kObjects = 40;
  constexpr size_t kSize = 260 * kKiB;
  std::vector<void*> objects;
  for (int i = 0; i < kObjects; ++i) {
    void* p = usgc_malloc(kSize);
    ASSERT_NE(p, nullptr);
    memset(p, 0x3c, kSize);
    objects.push_back(p);
  }
  uint64_t decommitted_before = read_stats().bytes_decommitted;
  for (void* p : objects) usgc_free(p);
  // The decay (USGC_DECAY_MS, 250 ms by default) is honoured by a later slow path: keep making
  // large requests until the freed spans were returned, with a generous deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  uint64_t returned = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    usgc_free(usgc_malloc(kLargestSizeClass + 1));
    returned = read_stats().bytes_decommitted - decommitted_before;
    if (returned >= kObjects * kSize / 2) break;
  }
  EXPECT_GE(returned, kObjects * kSize / 2) << "freed spans were not purged after the decay";
}

class LargeObjectsDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(LargeObjectsDeathTest, DoubleFreeOfPackedObjectAborts) {
  EXPECT_DEATH(
      {
        void* keep = usgc_malloc(300 * kKiB);  // a neighbour keeps the segment in use
        void* p = usgc_malloc(300 * kKiB);
        memset(p, 0, 300 * kKiB);
        usgc_free(p);
        usgc_free(launder(p));
        usgc_free(keep);
      },
      kFreeMessage);
}

TEST_F(LargeObjectsDeathTest, DoubleFreeFromAnotherThreadAborts) {
  EXPECT_DEATH(
      {
        void* p = usgc_malloc(kMiB);
        memset(p, 0, kMiB);
        std::thread([p] { usgc_free(p); }).join();
        usgc_free(launder(p));
      },
      kFreeMessage);
}

TEST_F(LargeObjectsDeathTest, FreeOfPointerInsideFreedSpanAborts) {
  EXPECT_DEATH(
      {
        void* keep = usgc_malloc(300 * kKiB);
        auto* p = static_cast<char*>(usgc_malloc(300 * kKiB));
        usgc_free(p);
        usgc_free(launder(p + 8192));
        usgc_free(keep);
      },
      kFreeMessage);
}

TEST_F(LargeObjectsDeathTest, FreeOfInteriorPointerOfPackedObjectAborts) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(usgc_malloc(500 * kKiB));
        memset(p, 0, 500 * kKiB);
        usgc_free(launder(p + 2 * kSpanPage));  // a page start inside the object
      },
      kFreeMessage);
}

TEST_F(LargeObjectsDeathTest, ReallocOfFreedPackedObjectAbortsNamingRealloc) {
  EXPECT_DEATH(
      {
        void* keep = usgc_malloc(300 * kKiB);
        void* p = usgc_malloc(300 * kKiB);
        usgc_free(p);
        void* q = usgc_realloc(launder(p), 600 * kKiB);
        usgc_free(launder(q));
        usgc_free(keep);
      },
      "usgc: .*realloc.*0x[0-9a-f]+");
}

// Fills two segments with 16-byte blocks and frees them all: every 16-byte aligned address of
// those pages then holds a freed block, with the free marker in its second word (until a purge
// zeroes the pages: callers run with a long decay).
void free_two_segments_of_16_byte_blocks() {
  constexpr size_t kBlocks = 2 * kSegment / 16;
  std::vector<void*> blocks(kBlocks);
  for (void*& block : blocks) block = usgc_malloc(16);
  for (void* block : blocks) usgc_free(block);
}

// Large objects placed on those pages and never written, then realloc'ed to a small size, give
// small blocks whose bytes are copies of theirs: freeing them must not read as a double free (it
// did: the large object's second word still held a freed block's marker). In a child process with
// a long decay, so that no purge zeroes the freed pages first.
TEST_F(LargeObjectsDeathTest, ReallocOfUnwrittenLargeObjectOnFreedSmallPagesFreesCleanly) {
  usgc::testing::SavedEnvironmentVariable long_decay("USGC_DECAY_MS", "600000");
  EXPECT_EXIT(
      {
        std::thread([] {
          free_two_segments_of_16_byte_blocks();
          constexpr size_t kObjects = 40;  // 3 pages each: the freed segments' pages
          std::vector<void*> objects(kObjects);
          for (void*& object : objects) object = usgc_malloc(150000);
          for (void* object : objects) usgc_free(usgc_realloc(object, 40));
        }).join();
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// The same for aligned_alloc's interior pointers into blocks of a class those pages are
// reformatted for: the aligned address is where a freed 16-byte block started.
TEST_F(LargeObjectsDeathTest, ReallocOfUnwrittenAlignedObjectOnFreedSmallPagesFreesCleanly) {
  usgc::testing::SavedEnvironmentVariable long_decay("USGC_DECAY_MS", "600000");
  EXPECT_EXIT(
      {
        std::thread([] {
          free_two_segments_of_16_byte_blocks();
          constexpr size_t kObjects = 100;  // beyond natural alignment: interior pointers
          std::vector<void*> objects(kObjects);
          for (void*& object : objects) object = usgc_aligned_alloc(32 * kKiB, 200);
          for (void* object : objects) usgc_free(usgc_realloc(object, 40));
        }).join();
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
