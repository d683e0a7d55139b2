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

// The range and exact-block checks of the free paths and of the local_free check are one compare
// (page.hpp, block_test_index): below the capacity exactly for the starts of handed-out blocks.
TEST(BlockTest, BelowCapacityExactlyForBlockStartsOfEveryClassAndOffset) {
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    Page page{};
    size_t block_size = class_size_of_bin(bin);
    compute_block_test(block_size, &page.block_inverse, &page.block_rotate);
    ASSERT_EQ(page.block_inverse * (block_size >> page.block_rotate), 1u) << "bin " << bin;
    size_t page_span = bin_uses_small_pages(bin) ? (size_t{1} << kSmallPageShift)
                                                 : (size_t{1} << kMediumPageShift);
    uint64_t capacity = page_span / block_size;
    // Every 8-byte offset of the page and beyond it, and offsets "below" the page start.
    for (uint64_t offset = 0; offset < 2 * page_span; offset += 8) {
      uint64_t index = block_test_index(&page, offset);
      bool block_start = offset % block_size == 0 && offset / block_size < capacity;
      ASSERT_EQ(index < capacity, block_start) << "bin " << bin << " offset " << offset;
      if (block_start) {
        ASSERT_EQ(index, offset / block_size) << "bin " << bin;
      }
    }
    for (uint64_t below = 1; below <= page_span; below += 8) {
      ASSERT_GE(block_test_index(&page, uint64_t{0} - below), capacity)
          << "bin " << bin << " offset -" << below;
    }
  }
}

TEST(BlockTest, RejectsPointersFarOutsideThePage) {
  Page page{};
  compute_block_test(48, &page.block_inverse, &page.block_rotate);
  for (uint64_t offset :
       {uint64_t{1} << 47, ~uint64_t{0} - 47, uint64_t{48} << 40, (uint64_t{48} << 58) + 48})
    EXPECT_GE(block_test_index(&page, offset), uint64_t{1} << 12) << offset;
}
