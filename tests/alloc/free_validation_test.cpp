// tests/alloc/free_validation_test.cpp — when the owner's free fast path catches each bad free,
// from the public API only.
//
// The owner's free fast path (alloc/heap.hpp, "Validation") checks on the call that a pointer is a
// 16-byte aligned user-space address in a segment of 64 KiB pages, that its page is the caller's
// and is not the segment's first (which holds the header), and that the block does not carry its
// page's free marker. Whether a 16-byte aligned pointer is exactly the start of a block is checked
// later: by malloc as it takes the pointer from a free list (the pop check), or by the walk of the
// page's lists when the page is freed, at malloc_trim, at thread exit and when the owner reads the
// statistics. These tests prove each moment, and that everything else is still reported on the
// call:
//   - a double free of a block whether it sits on the list the fast path pushes onto or on the
//     list malloc pops from;
//   - a misaligned pointer into a block, a pointer into the segment header;
//   - a 16-byte aligned pointer into a block: at the next check, with the same one-line message.
#include <stdint.h>
#include <string.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "tests/support/death_test_support.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::launder;

constexpr const char* kDoubleFreeMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*double free";
constexpr const char* kInvalidMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*invalid pointer";

class FreeValidationDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// A 64-byte block whose page the calling thread owns and allocates from, and which is not the
// first page of its segment (blocks are taken from a segment's other pages first).
char* owned_block() {
  auto* p = static_cast<char*>(usgc_malloc(64));
  memset(p, 0x11, 64);
  return p;
}

// Frees a 16-byte aligned pointer into a live block: accepted by the fast path.
void free_aligned_interior_pointer() {
  char* p = owned_block();
  usgc_free(launder(p + 16));
}

// Every block freed, then allocated again: the list the fast path pushed them onto is handed to
// malloc (the check runs first), then one of them is freed twice.
void double_free_of_a_block_on_the_allocation_list() {
  std::vector<void*> blocks;
  for (int i = 0; i < 2000; ++i) blocks.push_back(usgc_malloc(48));
  for (void* block : blocks) usgc_free(block);
  for (void*& block : blocks) block = usgc_malloc(48);  // reuses the freed blocks
  for (int i = 0; i < 1000; ++i) usgc_free(blocks[i]);
  usgc_free(launder(blocks[10]));
}

// A page freed with an aligned pointer into a live block on its list: the pointer made the page's
// count of blocks in use reach 0 one block early. Blocks of 5 KiB (12 to a page): the first
// page fills and goes full; a free into it brings it back behind the class's current page; then
// the pointer into its first block and every other block of it are freed.
void free_a_page_holding_an_aligned_pointer_into_a_live_block() {
  std::vector<char*> blocks;
  for (int i = 0; i < 40; ++i) blocks.push_back(static_cast<char*>(usgc_malloc(5 * 1024)));
  uintptr_t first_page = reinterpret_cast<uintptr_t>(blocks[0]) >> 16;
  std::vector<char*> same_page;
  for (char* block : blocks) {
    if (reinterpret_cast<uintptr_t>(block) >> 16 == first_page) same_page.push_back(block);
  }
  usgc_free(same_page[1]);                // a free into the full page: back to its class queue
  usgc_free(launder(same_page[0] + 16));  // accepted by the fast path
  for (size_t i = 2; i < same_page.size(); ++i) usgc_free(same_page[i]);  // the page empties
}

}  // namespace

TEST_F(FreeValidationDeathTest, DoubleFreeIsReportedOnTheCall) {
  EXPECT_DEATH(
      {
        char* p = owned_block();
        usgc_free(p);
        usgc_free(launder(p));
      },
      kDoubleFreeMessage);
  EXPECT_DEATH(double_free_of_a_block_on_the_allocation_list(), kDoubleFreeMessage);
}

TEST_F(FreeValidationDeathTest, MisalignedPointerIntoABlockIsReportedOnTheCall) {
  EXPECT_DEATH(
      {
        char* p = owned_block();
        usgc_free(launder(p + 8));
      },
      kInvalidMessage);
  EXPECT_DEATH(
      {
        char* p = owned_block();
        usgc_free(launder(p + 56));  // its 16 bytes would reach into the next block
      },
      kInvalidMessage);
}

TEST_F(FreeValidationDeathTest, PointerIntoTheSegmentHeaderIsReportedOnTheCall) {
  EXPECT_DEATH(
      {
        char* p = owned_block();
        uintptr_t segment = reinterpret_cast<uintptr_t>(p) & ~((uintptr_t{1} << 22) - 1);
        usgc_free(launder(reinterpret_cast<void*>(segment + 4096)));
      },
      kInvalidMessage);
}

TEST_F(FreeValidationDeathTest, AlignedPointerIntoABlockIsReportedAtTheNextCheckOfItsPage) {
  // malloc_trim checks every page's list.
  EXPECT_DEATH(
      {
        free_aligned_interior_pointer();
        usgc_malloc_trim(0);
      },
      kInvalidMessage);
  // The owner's statistics count (and check) every page's fast-path frees.
  EXPECT_DEATH(
      {
        free_aligned_interior_pointer();
        usgc_malloc_stats stats = {};
        stats.version = USGC_MALLOC_STATS_VERSION;
        usgc_malloc_get_stats(&stats);
      },
      kInvalidMessage);
  // Freeing its page: the page's lists are walked first.
  EXPECT_DEATH(free_a_page_holding_an_aligned_pointer_into_a_live_block(), kInvalidMessage);
  // Allocation: malloc's pop check finds it before handing it out.
  EXPECT_DEATH(
      {
        free_aligned_interior_pointer();
        for (int i = 0; i < 100000; ++i) (void)launder(usgc_malloc(64));
      },
      kInvalidMessage);
}

TEST(FreeValidation, FreedBlocksAreCountedAndReusedAfterTheCheck) {
  usgc_malloc_stats before = {};
  before.version = USGC_MALLOC_STATS_VERSION;
  ASSERT_EQ(usgc_malloc_get_stats(&before), 0);
  std::vector<void*> blocks;
  for (int i = 0; i < 5000; ++i) blocks.push_back(usgc_malloc(80));
  for (void* block : blocks) usgc_free(block);
  usgc_malloc_stats after = {};
  after.version = USGC_MALLOC_STATS_VERSION;
  ASSERT_EQ(usgc_malloc_get_stats(&after), 0);
  // The caller's own figures are exact: every fast-path free is counted once.
  EXPECT_EQ(after.free_count - before.free_count, 5000u);
  EXPECT_EQ(after.malloc_count - before.malloc_count, 5000u);
  // Allocating again reuses the checked lists and hands out no block twice.
  std::vector<void*> again;
  for (int i = 0; i < 5000; ++i) again.push_back(usgc_malloc(80));
  std::sort(again.begin(), again.end());
  EXPECT_EQ(std::adjacent_find(again.begin(), again.end()), again.end());
  for (void* block : again) usgc_free(block);
}
