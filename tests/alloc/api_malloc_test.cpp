// tests/alloc/api_malloc_test.cpp — usgc_malloc, usgc_calloc, usgc_realloc(array), usgc_free,
// usgc_free_sized.
//
// Black-box tests of the malloc-mode C API against its contract in include/usgc/usgc.h. The
// contract the API shares with the malloc family, glibc's semantics, is the suite of
// tests/support/malloc_family_semantics.hpp, run here through the usgc_* functions (the preload
// tests run it through the libc names) with usgc's own checks on: at least 16-byte alignment,
// the size-class waste bound of the allocator design for sizes up to the largest size class
// (128 KiB): usable <= max(round_up(size, 16), size * 1.125 + 16), and realloc(p, 0) counted as
// a free. Below: what only the API has (usgc_free_sized) and the memory usgc gives back to the
// OS (usgc_malloc_trim, the decay).
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "tests/support/malloc_family_semantics.hpp"
#include "tests/support/memory_patterns.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::all_zero;
using usgc_test::MallocFamily;
using usgc_test::MallocFamilySemantics;
using usgc_test::read_stats;

std::optional<uint64_t> usgc_free_count() {
  return read_stats().free_count;
}

const MallocFamily kUsgcApi = {
    .name = "usgc_api",
    .malloc = usgc_malloc,
    .calloc = usgc_calloc,
    .realloc = usgc_realloc,
    .reallocarray = usgc_reallocarray,
    .free = usgc_free,
    .usable_size = [](void* pointer) { return usgc_malloc_usable_size(pointer); },
    .check_waste_bound = true,
    .free_count = usgc_free_count};

}  // namespace

INSTANTIATE_TEST_SUITE_P(UsgcApi, MallocFamilySemantics, testing::Values(kUsgcApi),
                         [](const testing::TestParamInfo<MallocFamily>& info) {
                           return std::string(info.param.name);
                         });

// ---- usgc_free_sized ----------------------------------------------------------------------

TEST(UsgcFree, FreeSizedOfNullDoesNothing) {
  usgc_free_sized(nullptr, 0);
  usgc_free_sized(nullptr, 100);
  void* p = usgc_malloc(16);
  ASSERT_NE(p, nullptr);
  usgc_free_sized(p, 16);
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

// glibc >= 2.33: free never changes errno (POSIX.1-2024 requires it too), nor does free_sized.
TEST(UsgcFree, FreeSizedPreservesErrnoForEveryKind) {
  for (size_t size :
       {size_t{16}, size_t{5000}, size_t{100000}, size_t{1} << 20, size_t{16} << 20}) {
    void* p = usgc_malloc(size);
    ASSERT_NE(p, nullptr);
    errno = 1234;
    usgc_free_sized(p, size);
    EXPECT_EQ(errno, 1234) << "usgc_free_sized changed errno; size " << size;
  }
}

// ---- memory given back to the OS ----------------------------------------------------------

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
