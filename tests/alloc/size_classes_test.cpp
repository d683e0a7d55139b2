// tests/alloc/size_classes_test.cpp — the size classes keep their promises: every size maps to
// a class that holds it, waste stays under 12.5% (or the 16-byte alignment step), classes are
// monotonic, and the exact block-index arithmetic of the free path is exact for every class.
#include <gtest/gtest.h>

#include "alloc/page.hpp"
#include "alloc/size_classes.hpp"

using namespace usgc::alloc;

TEST(SizeClasses, EverySizeMapsToTheSmallestClassThatHoldsIt) {
  for (size_t size = 0; size <= kMediumObjectMax; ++size) {
    uint32_t bin = bin_of_size(size);
    ASSERT_LT(bin, kBinCount) << "size " << size;
    ASSERT_GE(class_size_of_bin(bin), size) << "size " << size;
    if (bin > 0) {
      ASSERT_LT(class_size_of_bin(bin - 1), size == 0 ? 1 : size) << "size " << size;
    }
  }
}

TEST(SizeClasses, InternalWasteIsAtMostOneEighthOrTheAlignmentStep) {
  for (size_t size = 1; size <= kMediumObjectMax; ++size) {
    size_t class_size = class_size_of_bin(bin_of_size(size));
    size_t rounded16 = (size + 15) & ~size_t{15};
    size_t allowed = std::max(rounded16, size + size / 8);
    ASSERT_LE(class_size, allowed) << "size " << size << " -> class " << class_size;
  }
}

TEST(SizeClasses, ClassesAreSixteenByteMultiplesAndStrictlyIncreasing) {
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    EXPECT_EQ(class_size_of_bin(bin) % 16, 0u) << "bin " << bin;
    if (bin > 0) {
      EXPECT_GT(class_size_of_bin(bin), class_size_of_bin(bin - 1));
    }
  }
}

TEST(SizeClasses, RoundingToAnAlignmentGivesAClassThatIsAMultipleOfIt) {
  // The "natural alignment" property aligned_alloc relies on (layout.hpp).
  for (size_t alignment = 32; alignment <= kMaxNaturalAlignment; alignment *= 2) {
    for (size_t size = 1; size <= kMediumObjectMax; size += 7) {
      size_t rounded = align_up(size, alignment);
      if (rounded > kMediumObjectMax) break;
      ASSERT_EQ(class_size_of_bin(bin_of_size(rounded)) % alignment, 0u)
          << "size " << size << " align " << alignment;
    }
  }
}

// The range and exact-block checks of the free paths and of the local_free walks are one multiply
// and one compare (page.hpp, block_is_handed_out): true exactly for the starts of handed-out
// blocks, at every capacity the page can have.
TEST(BlockTest, HandedOutExactlyForBlockStartsOfEveryClassAndOffset) {
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    Page page{};
    page.block_size = class_size_of_bin(bin);
    page.block_magic = block_magic_of(page.block_size);
    uint64_t step = block_step_of(page.block_size, page.block_magic);
    ASSERT_GE(step, 1u) << "bin " << bin;
    ASSERT_LE(step, page.block_size) << "bin " << bin;
    size_t page_span = bin_uses_small_pages(bin) ? (size_t{1} << kSmallPageShift)
                                                 : (size_t{1} << kMediumPageShift);
    uint32_t reserved = static_cast<uint32_t>(page_span / page.block_size);
    for (uint32_t capacity : {0u, 1u, reserved / 2, reserved}) {
      page.set_capacity(capacity);
      // Every 8-byte offset of the page and as far beyond it.
      for (uint64_t offset = 0; offset < 2 * page_span; offset += 8) {
        bool block_start = offset % page.block_size == 0 && offset / page.block_size < capacity;
        ASSERT_EQ(block_is_handed_out(&page, offset), block_start)
            << "bin " << bin << " capacity " << capacity << " offset " << offset;
      }
    }
  }
}

// Malloc's pop check (heap.hpp, page_pop_check): on a 64 KiB page whose blocks start at offset 0
// of the page, the low 16 bits of a block's address times the magic are below pop_limit exactly
// for the blocks the page handed out; on any other page the check lets everything through.
TEST(BlockTest, PopLimitAcceptsExactlyTheHandedOutBlocksOfASmallPage) {
  for (uint32_t bin = 0; bin < kBinCount && bin_uses_small_pages(bin); ++bin) {
    Page page{};
    page.block_size = class_size_of_bin(bin);
    page.block_magic = block_magic_of(page.block_size);
    page.pop_checked = 1;
    uint32_t reserved = static_cast<uint32_t>((size_t{1} << kSmallPageShift) / page.block_size);
    for (uint32_t capacity : {0u, 1u, reserved / 3, reserved}) {
      set_capacity_and_pop_limit(&page, capacity);
      for (uint64_t offset = 0; offset < (uint64_t{1} << kSmallPageShift); offset += 16) {
        bool block_start = offset % page.block_size == 0 && offset / page.block_size < capacity;
        ASSERT_EQ(offset * page.block_magic < page.pop_limit, block_start)
            << "bin " << bin << " capacity " << capacity << " offset " << offset;
      }
    }
    page.pop_checked = 0;
    set_capacity_and_pop_limit(&page, reserved);
    EXPECT_EQ(page.pop_limit, UINT64_MAX) << "bin " << bin;
  }
}
