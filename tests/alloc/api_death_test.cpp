// tests/alloc/api_death_test.cpp — bad frees: the message usgc prints and whether it aborts.
//
// Contract (include/usgc/usgc.h): "freeing a pointer twice, or a pointer inside usgc's memory
// that it never returned, prints one line naming the call and the pointer and aborts; a pointer
// usgc does not own at all is reported once and left alone." The regexes match only what the
// contract fixes — "usgc:", the call's name and the pointer in hex — not the exact wording
// (today: "usgc: free(): pointer 0x... was freed twice (double free)").
//
// Death tests run in the "threadsafe" style: the child re-executes the binary and runs only the
// dying statement, so the one-time foreign-pointer message is fresh in each of them.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include "tests/support/death_test_support.hpp"

#include "usgc/usgc.h"

namespace {

using usgc_test::exactly_one_line_matching;
using usgc_test::launder;

constexpr const char* kFreeMessage = "usgc: .*free.*0x[0-9a-f]+";

char g_static_buffer[512];

void double_free(size_t size) {
  void* p = usgc_malloc(size);
  memset(p, 0, size);
  usgc_free(p);
  usgc_free(launder(p));
}

// Hands usgc_free three pointers it does not own, then exits 0 if they were left alone and usgc
// still works (3 otherwise).
[[noreturn]] void free_foreign_pointers_then_exit() {
  long on_stack[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  void* from_glibc = malloc(64);  // the unit tests' malloc is glibc's, outside usgc's ranges
  memset(from_glibc, 0x77, 64);
  usgc_free(launder(on_stack));
  usgc_free(launder(g_static_buffer));
  usgc_free(launder(from_glibc));
  // Left alone: still intact and still glibc's to free.
  const bool intact = on_stack[7] == 8 && static_cast<unsigned char*>(from_glibc)[63] == 0x77;
  free(from_glibc);
  void* ours = usgc_malloc(100);  // and usgc goes on working
  usgc_free(ours);
  exit(intact && ours != nullptr ? 0 : 3);
}

// Hands usgc_free addresses outside user space whose bits 22..46 are those of a live usgc block
// (the free fast path indexes the segment map with those bits only), then exits 0 if they were
// reported as foreign and the block is intact and freeable (3 otherwise).
[[noreturn]] void free_non_user_addresses_aliasing_a_block_then_exit() {
  auto* block = static_cast<unsigned char*>(usgc_malloc(64));
  memset(block, 0x5a, 64);
  const uintptr_t address = reinterpret_cast<uintptr_t>(block);
  usgc_free(launder(reinterpret_cast<void*>(address | (uintptr_t{1} << 63))));
  usgc_free(launder(reinterpret_cast<void*>(address | (uintptr_t{0xffff} << 48))));
  usgc_free(launder(reinterpret_cast<void*>(address + (uintptr_t{1} << 47))));
  const bool intact = block[0] == 0x5a && block[63] == 0x5a;
  usgc_free(block);
  exit(intact ? 0 : 3);
}

class UsgcBadFreeDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

}  // namespace

TEST_F(UsgcBadFreeDeathTest, DoubleFreeOfSmallBlockAbortsNamingFreeAndPointer) {
  EXPECT_DEATH(double_free(64), kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, DoubleFreeOfMediumBlockAbortsNamingFreeAndPointer) {
  EXPECT_DEATH(double_free(64 * 1024), kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, DoubleFreeOfLargeBlockAbortsNamingFreeAndPointer) {
  EXPECT_DEATH(double_free(size_t{1} << 20), kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, DoubleFreeAfterOtherFreesStillAborts) {
  EXPECT_DEATH(
      {
        void* a = usgc_malloc(64);
        void* b = usgc_malloc(64);
        usgc_free(a);
        usgc_free(b);
        usgc_free(launder(a));  // a is no longer the most recently freed block
      },
      kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, FreeSizedOfFreedPointerAbortsNamingFreeAndPointer) {
  EXPECT_DEATH(
      {
        void* p = usgc_malloc(100);
        usgc_free_sized(p, 100);
        usgc_free_sized(launder(p), 100);
      },
      kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, FreeOfInteriorPointerOfSmallBlockAborts) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(usgc_malloc(64));
        memset(p, 0, 64);
        usgc_free(launder(p + 8));
      },
      kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, FreeOfInteriorPointerOfLargeBlockAborts) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(usgc_malloc(size_t{1} << 20));
        memset(p, 0, size_t{1} << 20);
        usgc_free(launder(p + 4096));
      },
      kFreeMessage);
}

// Alignments above what the size classes give naturally are served by over-allocating and
// returning an interior pointer. That must not make other interior pointers acceptable: a free
// of a pointer usgc never returned aborts, whatever else lives in the same page.
namespace {
void free_interior_pointer_next_to_over_aligned_blocks() {
  for (int i = 0; i < 8; ++i) (void)launder(usgc_aligned_alloc(32 * 1024, 100));
  auto* q = static_cast<char*>(usgc_malloc(32 * 1024 + 100));  // the same size class
  memset(q, 0, 100);
  usgc_free(launder(q + 8));
}
}  // namespace

TEST_F(UsgcBadFreeDeathTest, FreeOfInteriorPointerNextToOverAlignedBlocksAborts) {
  EXPECT_DEATH(free_interior_pointer_next_to_over_aligned_blocks(), kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, FreeOfInteriorPointerOfOverAlignedBlockAborts) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(usgc_aligned_alloc(64 * 1024, 1000));
        memset(p, 0, 1000);
        usgc_free(launder(p + 16));
      },
      kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, FreeOfInteriorPointerOfOverAlignedLargeBlockAborts) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(usgc_aligned_alloc(size_t{1} << 20, 100));
        memset(p, 0, 100);
        usgc_free(launder(p + 4096));
      },
      kFreeMessage);
}

TEST_F(UsgcBadFreeDeathTest, ReallocOfInteriorPointerAbortsNamingRealloc) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(usgc_malloc(64));
        void* q = usgc_realloc(launder(p + 16), 200);
        usgc_free(launder(q));
      },
      "usgc: .*realloc.*0x[0-9a-f]+");
}

TEST_F(UsgcBadFreeDeathTest, ReallocOfFreedPointerAbortsNamingRealloc) {
  EXPECT_DEATH(
      {
        void* p = usgc_malloc(64);
        usgc_free(p);
        void* q = usgc_realloc(launder(p), 128);
        usgc_free(launder(q));
      },
      "usgc: .*realloc.*0x[0-9a-f]+");
}

TEST_F(UsgcBadFreeDeathTest, ForeignPointersAreReportedOnceAndLeftAlone) {
  EXPECT_EXIT(free_foreign_pointers_then_exit(), testing::ExitedWithCode(0),
              exactly_one_line_matching("usgc: .*not allocated by usgc"));
}

TEST_F(UsgcBadFreeDeathTest, NonUserAddressesAliasingABlockAreForeignAndLeaveItAlone) {
  EXPECT_EXIT(free_non_user_addresses_aliasing_a_block_then_exit(), testing::ExitedWithCode(0),
              exactly_one_line_matching("usgc: .*not allocated by usgc"));
}
