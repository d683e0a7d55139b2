// tests/alloc/api_aligned_alloc_test.cpp — usgc_aligned_alloc and usgc_posix_memalign.
//
// Contract (include/usgc/usgc.h): the alignment is a power of two; the size need not be a
// multiple of it (glibc's leniency); posix_memalign returns EINVAL for an alignment that is not a
// power-of-two multiple of sizeof(void*), ENOMEM when memory cannot be had, and leaves *result
// untouched on error (glibc); on failure the functions set errno to ENOMEM, EINVAL for a bad
// alignment.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <gtest/gtest.h>

#include <vector>

#include "tests/support/memory_patterns.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::is_aligned;

volatile size_t g_absurd_size = size_t{1} << 62;

// Sizes for one alignment: tiny, below it, exactly it, and several that are not multiples of it.
std::vector<size_t> sizes_for_alignment(size_t alignment) {
  return {
      1, 16, 100, alignment / 2 + 1, alignment - 8, alignment, alignment + 8, 3 * alignment + 16};
}

void expect_aligned_block(void* pointer, size_t alignment, size_t size, const char* call) {
  ASSERT_NE(pointer, nullptr) << call << " alignment " << alignment << " size " << size;
  EXPECT_TRUE(is_aligned(pointer, alignment))
      << call << " alignment " << alignment << " size " << size << " pointer " << pointer;
  EXPECT_TRUE(is_aligned(pointer, 16)) << call;
  const size_t usable = usgc_malloc_usable_size(pointer);
  EXPECT_GE(usable, size) << call << " alignment " << alignment << " size " << size;
  memset(pointer, 0x6B, usable);
}

}  // namespace

TEST(UsgcAlignedAlloc, EveryPowerOfTwoAlignmentFrom16To4MiBWithSizesNotMultiplesOfIt) {
  for (size_t alignment = 16; alignment <= (size_t{4} << 20); alignment <<= 1) {
    for (size_t size : sizes_for_alignment(alignment)) {
      void* p = usgc_aligned_alloc(alignment, size);
      expect_aligned_block(p, alignment, size, "usgc_aligned_alloc");
      usgc_free(p);
    }
  }
}

TEST(UsgcAlignedAlloc, ZeroSizeReturnsUniqueFreeablePointers) {
  for (size_t alignment : {size_t{16}, size_t{64}, size_t{4096}, size_t{65536}}) {
    void* a = usgc_aligned_alloc(alignment, 0);
    void* b = usgc_aligned_alloc(alignment, 0);
    ASSERT_NE(a, nullptr) << "alignment " << alignment;
    ASSERT_NE(b, nullptr) << "alignment " << alignment;
    EXPECT_NE(a, b);
    EXPECT_TRUE(is_aligned(a, alignment));
    EXPECT_TRUE(is_aligned(b, alignment));
    usgc_free(a);
    usgc_free(b);
  }
}

TEST(UsgcAlignedAlloc, AlignmentsAbove4MiBAreHonoured) {
  for (size_t alignment : {size_t{8} << 20, size_t{32} << 20}) {
    for (size_t size : {size_t{64}, size_t{1} << 20, alignment + 16}) {
      void* p = usgc_aligned_alloc(alignment, size);
      expect_aligned_block(p, alignment, size, "usgc_aligned_alloc");
      usgc_free(p);
    }
  }
}

TEST(UsgcAlignedAlloc, AlignmentsBelow16StillGive16ByteAlignment) {
  for (size_t alignment : {size_t{1}, size_t{2}, size_t{4}, size_t{8}}) {
    void* p = usgc_aligned_alloc(alignment, 40);
    expect_aligned_block(p, 16, 40, "usgc_aligned_alloc");
    usgc_free(p);
  }
}

TEST(UsgcAlignedAlloc, ManyLiveAlignedBlocksKeepTheirAlignmentAndDoNotOverlap) {
  struct Live {
    unsigned char* pointer;
    size_t size;
    unsigned char value;
  };
  std::vector<Live> live;
  unsigned char value = 1;
  for (size_t alignment = 16; alignment <= 65536; alignment <<= 1) {
    for (int i = 0; i < 40; ++i) {
      const size_t size = 1 + (static_cast<size_t>(i) * 97) % (2 * alignment);
      auto* p = static_cast<unsigned char*>(usgc_aligned_alloc(alignment, size));
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(is_aligned(p, alignment)) << "alignment " << alignment << " size " << size;
      memset(p, value, size);
      live.push_back({p, size, value});
      value = static_cast<unsigned char>(value % 250 + 1);
    }
  }
  for (const Live& block : live) {
    for (size_t i = 0; i < block.size; ++i)
      ASSERT_EQ(block.pointer[i], block.value)
          << "aligned block of size " << block.size << " overwritten";
    usgc_free(block.pointer);
  }
}

// C17 and glibc >= 2.38 reject such an alignment (NULL, EINVAL); glibc 2.36 (Debian 12) rounds
// it up to the next power of two. The contract allows either; what is never allowed is a block
// that is less aligned than the next power of two, or a failure without EINVAL.
TEST(UsgcAlignedAlloc, AlignmentNotAPowerOfTwoIsRejectedWithEinvalOrRoundedUp) {
  for (size_t alignment : {size_t{24}, size_t{48}, size_t{100}, size_t{4096 + 16}}) {
    size_t next_power = 1;
    while (next_power < alignment) next_power <<= 1;
    errno = 0;
    void* p = usgc_aligned_alloc(alignment, 64);
    if (p == nullptr) {
      EXPECT_EQ(errno, EINVAL) << "alignment " << alignment;
    } else {
      expect_aligned_block(p, next_power, 64, "usgc_aligned_alloc");
      usgc_free(p);
    }
  }
}

TEST(UsgcAlignedAlloc, AbsurdSizeReturnsNullWithEnomem) {
  errno = 0;
  EXPECT_EQ(usgc_aligned_alloc(64, g_absurd_size), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(usgc_aligned_alloc(size_t{1} << 20, g_absurd_size), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(UsgcAlignedAlloc, AlignedBlocksCanBeReallocatedAndKeepContents) {
  for (size_t alignment : {size_t{64}, size_t{4096}, size_t{1} << 20}) {
    auto* p = static_cast<unsigned char*>(usgc_aligned_alloc(alignment, 1000));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < 1000; ++i) p[i] = static_cast<unsigned char>(i * 7);
    auto* q = static_cast<unsigned char*>(usgc_realloc(p, 300000));
    ASSERT_NE(q, nullptr);
    for (size_t i = 0; i < 1000; ++i)
      ASSERT_EQ(q[i], static_cast<unsigned char>(i * 7)) << "alignment " << alignment;
    usgc_free(q);
  }
}

TEST(UsgcPosixMemalign, EveryPowerOfTwoAlignmentFrom16To4MiBWithSizesNotMultiplesOfIt) {
  for (size_t alignment = 16; alignment <= (size_t{4} << 20); alignment <<= 1) {
    for (size_t size : sizes_for_alignment(alignment)) {
      void* p = nullptr;
      ASSERT_EQ(usgc_posix_memalign(&p, alignment, size), 0)
          << "alignment " << alignment << " size " << size;
      expect_aligned_block(p, alignment, size, "usgc_posix_memalign");
      usgc_free(p);
    }
  }
}

TEST(UsgcPosixMemalign, PointerSizeAlignmentIsAccepted) {
  void* p = nullptr;
  ASSERT_EQ(usgc_posix_memalign(&p, sizeof(void*), 24), 0);
  expect_aligned_block(p, 16, 24, "usgc_posix_memalign");
  usgc_free(p);
  p = nullptr;
  ASSERT_EQ(usgc_posix_memalign(&p, 16, 0), 0);  // size 0: a unique freeable pointer (glibc)
  EXPECT_NE(p, nullptr);
  usgc_free(p);
}

TEST(UsgcPosixMemalign, BadAlignmentReturnsEinvalAndLeavesResultUntouched) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x5eed});
  // 0; not a power of two (24, 48, 96, 4104); a power of two below sizeof(void*) (1, 2, 4);
  // a multiple of 8 whose quotient is not a power of two ((1 << 63) + 8).
  for (size_t alignment : {size_t{0}, size_t{24}, size_t{48}, size_t{96}, size_t{4096 + 8},
                           size_t{1}, size_t{2}, size_t{4}, (size_t{1} << 63) + 8}) {
    void* result = sentinel;
    EXPECT_EQ(usgc_posix_memalign(&result, alignment, 64), EINVAL) << "alignment " << alignment;
    EXPECT_EQ(result, sentinel) << "result written on error; alignment " << alignment;
  }
}

TEST(UsgcPosixMemalign, AbsurdSizeReturnsEnomemAndLeavesResultUntouched) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x5eed});
  void* result = sentinel;
  EXPECT_EQ(usgc_posix_memalign(&result, 64, g_absurd_size), ENOMEM);
  EXPECT_EQ(result, sentinel);
}
