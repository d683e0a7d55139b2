// tests/alloc/asan_tracking_test.cpp — AddressSanitizer sees usgc's malloc heap (the asan build),
// from the public API only.
//
// In `make asan` the allocator keeps ASan's shadow of its blocks (alloc/asan_tracking.hpp): the
// bytes asked for are addressable, the rest of the block is not, a freed block is poisoned whole.
// These tests prove it on the shadow itself (__asan_address_is_poisoned) and by what ASan reports
// for an overflow by one byte and a use after free. In other builds there is no shadow: each test
// skips and says so.
#include <stdint.h>
#include <string.h>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tests/support/death_test_support.hpp"
#include "usgc/usgc.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define USGC_TEST_ASAN 1
#else
#define USGC_TEST_ASAN 0
#endif

namespace {

using usgc_test::launder;

#if USGC_TEST_ASAN
bool poisoned(const void* address) {
  return __asan_address_is_poisoned(address) != 0;
}
#endif

#define SKIP_UNLESS_ASAN()                                                                      \
  do {                                                                                          \
    if (!USGC_TEST_ASAN)                                                                        \
      GTEST_SKIP() << "AddressSanitizer tracking of usgc's heap exists only in the asan build " \
                      "(make asan-test)";                                                       \
  } while (0)

// ASan's report of an access to poisoned memory, then usgc's line on the block.
constexpr const char* kOverflowReport =
    "AddressSanitizer: use-after-poison(.|\n)*usgc: address 0x[0-9a-f]+ is 20 bytes into a "
    "32-byte block at 0x[0-9a-f]+ of usgc's malloc heap, which is allocated";
constexpr const char* kUseAfterFreeReport =
    "AddressSanitizer: use-after-poison(.|\n)*usgc: address 0x[0-9a-f]+ is 0 bytes into a "
    "[0-9]+-byte block at 0x[0-9a-f]+ of usgc's malloc heap, which is free";

constexpr const char* kUseAfterFreeReport8 =
    "AddressSanitizer: use-after-poison(.|\n)*usgc: address 0x[0-9a-f]+ is 8 bytes into a "
    "48-byte block at 0x[0-9a-f]+ of usgc's malloc heap, which is free";

class AsanTrackingDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

}  // namespace

TEST(AsanTracking, ExactlyTheBytesAskedForAreAddressable) {
  SKIP_UNLESS_ASAN();
#if USGC_TEST_ASAN
  // Small, medium and large blocks; sizes that leave a tail in their class.
  for (size_t size : {size_t{1}, size_t{20}, size_t{100}, size_t{3000}, size_t{70000},
                      size_t{300000}, size_t{(5u << 20) + 100}}) {
    auto* p = static_cast<char*>(usgc_malloc(size));
    ASSERT_NE(p, nullptr);
    memset(p, 0x5a, size);  // every byte asked for may be written (ASan checks memset)
    EXPECT_EQ(__asan_region_is_poisoned(p, size), nullptr) << size;
    EXPECT_TRUE(poisoned(p + size)) << "the byte past a block of " << size;
    usgc_free(p);
    EXPECT_TRUE(poisoned(p)) << "a freed block of " << size;
  }
#endif
}

TEST(AsanTracking, CallocReallocAndAlignedBlocksAreTrackedToo) {
  SKIP_UNLESS_ASAN();
#if USGC_TEST_ASAN
  auto* c = static_cast<char*>(usgc_calloc(5, 4));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(__asan_region_is_poisoned(c, 20), nullptr);
  EXPECT_TRUE(poisoned(c + 20));
  // Growing in place and moving: the new size is addressable, the contents kept.
  auto* r = static_cast<char*>(usgc_realloc(c, 24));
  EXPECT_EQ(__asan_region_is_poisoned(r, 24), nullptr);
  EXPECT_TRUE(poisoned(r + 24));
  auto* moved = static_cast<char*>(usgc_realloc(r, 5000));
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(__asan_region_is_poisoned(moved, 5000), nullptr);
  EXPECT_EQ(moved[0], 0);
  if (moved != r) {
    EXPECT_TRUE(poisoned(r)) << "the block realloc moved away from";
  }
  usgc_free(moved);
  // An over-aligned block: the head the alignment skipped and the tail stay poisoned.
  auto* a = static_cast<char*>(usgc_aligned_alloc(4096, 100));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(__asan_region_is_poisoned(a, 100), nullptr);
  EXPECT_TRUE(poisoned(a + 100));
  usgc_free(a);
  void* m = nullptr;
  ASSERT_EQ(usgc_posix_memalign(&m, 64, 10), 0);
  EXPECT_TRUE(poisoned(static_cast<char*>(m) + 10));
  // malloc_usable_size: the whole usable size may be used (glibc's contract).
  size_t usable = usgc_malloc_usable_size(m);
  ASSERT_GE(usable, 10u);
  memset(m, 1, usable);
  usgc_free(m);
#endif
}

TEST(AsanTracking, BlocksAPageNeverHandedOutArePoisoned) {
  SKIP_UNLESS_ASAN();
#if USGC_TEST_ASAN
  // A size class this process uses nowhere else (3.5 KiB): its page is fresh, and the blocks
  // after the first few are on the free list, never handed out.
  std::vector<char*> blocks;
  for (int i = 0; i < 3; ++i) blocks.push_back(static_cast<char*>(usgc_malloc(3584)));
  char* last = blocks.back();
  size_t usable = usgc_malloc_usable_size(blocks[0]);  // the class size (and unpoisons blocks[0])
  EXPECT_TRUE(poisoned(last + usable)) << "the block after the last one handed out";
  for (char* block : blocks) usgc_free(block);
#endif
}

TEST_F(AsanTrackingDeathTest, OverflowByOneBytePastABlockIsReported) {
  SKIP_UNLESS_ASAN();
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(launder(usgc_malloc(20)));  // a 32-byte class
        p[20] = 1;
        launder(p);
      },
      kOverflowReport);
}

TEST_F(AsanTrackingDeathTest, UseAfterFreeIsReported) {
  SKIP_UNLESS_ASAN();
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(launder(usgc_malloc(64)));
        usgc_free(p);
        *static_cast<volatile char*>(launder(p)) = 1;
      },
      kUseAfterFreeReport);
  // A large block, and a block another thread frees (the remote free path poisons it too).
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(launder(usgc_malloc(200000)));
        usgc_free(p);
        (void)*static_cast<volatile char*>(launder(p + 100));
      },
      "AddressSanitizer: use-after-poison");
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(launder(usgc_malloc(48)));
        std::thread([p] { usgc_free(p); }).join();
        (void)*static_cast<volatile char*>(launder(p + 8));
      },
      kUseAfterFreeReport8);
}
