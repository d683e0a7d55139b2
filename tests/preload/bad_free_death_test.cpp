// tests/preload/bad_free_death_test.cpp — bad frees under LD_PRELOAD: abort with a usgc message.
//
// USGC-SPECIFIC: every test in this file checks usgc's wording ("usgc: <call>... 0x<pointer>"),
// so all of them fail by design when the binary runs on glibc without the preload (glibc aborts
// too, with its own words, or — for a foreign pointer — aborts where usgc carries on).
//
// The contract (include/usgc/usgc.h, "Bad input"): a double free, or a pointer inside
// usgc's memory that it never returned, prints one line naming the call and the pointer and
// aborts; a pointer usgc does not own at all is reported once and left alone.
//
// Death tests use the "threadsafe" style: the child re-executes this binary (with the same
// LD_PRELOAD) and runs only the dying statement, so no other test's state is involved.
#include <stdlib.h>
#include <string.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <regex>
#include <sstream>
#include <string>
#include "tests/support/death_test_support.hpp"

namespace {

using usgc_test::exactly_one_line_matching;
using usgc_test::launder;

char g_static_buffer[256];

// Frees two pointers no malloc returned (a stack array, a static array), then exits 0 if both
// were left alone and malloc still works (3 otherwise).
[[noreturn]] void free_foreign_pointers_then_exit() {
  long on_stack[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  free(launder(on_stack));
  free(launder(g_static_buffer));
  void* ours = malloc(100);
  free(ours);
  exit(on_stack[7] == 8 && ours != nullptr ? 0 : 3);
}

}  // namespace

TEST(UsgcPreloadDeathTest, DoubleFreeThroughFreeAbortsNamingFreeAndPointer) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        void* volatile p = malloc(64);
        free(p);
        free(p);
      },
      "usgc: .*free.*0x[0-9a-f]+");
}

TEST(UsgcPreloadDeathTest, DoubleDeleteAbortsNamingPointer) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        long* volatile number = new long(42);
        delete number;
        delete number;
      },
      "usgc: .*(free|delete).*0x[0-9a-f]+");
}

TEST(UsgcPreloadDeathTest, FreeOfInteriorPointerOfSmallBlockAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(malloc(64));
        memset(p, 0, 64);
        free(launder(p + 8));
      },
      "usgc: .*free.*0x[0-9a-f]+");
}

TEST(UsgcPreloadDeathTest, FreeOfGarbagePointerInsideLargeBlockAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(malloc(size_t{1} << 20));
        memset(p, 0, size_t{1} << 20);
        free(launder(p + 4096 * 3 + 48));
      },
      "usgc: .*free.*0x[0-9a-f]+");
}

// Over-aligned blocks are interior pointers of bigger blocks; that must not make a free of
// some other block's interior pointer in the same page acceptable.
namespace {
void free_interior_pointer_next_to_over_aligned_blocks() {
  for (int i = 0; i < 8; ++i) (void)launder(aligned_alloc(32 * 1024, 100));
  auto* q = static_cast<char*>(malloc(32 * 1024 + 100));
  memset(q, 0, 100);
  free(launder(q + 8));
}
}  // namespace

TEST(UsgcPreloadDeathTest, FreeOfInteriorPointerNextToOverAlignedBlocksAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(free_interior_pointer_next_to_over_aligned_blocks(), "usgc: .*free.*0x[0-9a-f]+");
}

TEST(UsgcPreloadDeathTest, ReallocOfFreedPointerAbortsNamingRealloc) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        void* volatile p = malloc(64);
        free(p);
        void* q = realloc(p, 128);
        free(launder(q));  // opaque: the compiler may not fold realloc-then-free into a free
      },
      "usgc: .*realloc.*0x[0-9a-f]+");
}

TEST(UsgcPreloadDeathTest, FreeOfForeignPointersIsReportedOnceAndTheProgramContinues) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(free_foreign_pointers_then_exit(), testing::ExitedWithCode(0),
              exactly_one_line_matching("usgc: .*not allocated by usgc"));
}
