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

TEST(BlockIndex, MultiplyShiftEqualsDivisionForEveryClassAndOffset) {
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    Page page{};
    uint32_t block_size = static_cast<uint32_t>(class_size_of_bin(bin));
    compute_block_index_magic(block_size, &page.index_multiplier, &page.index_shift);
    size_t page_span = bin_uses_small_pages(bin) ? (size_t{1} << kSmallPageShift)
                                                 : (size_t{1} << kMediumPageShift);
    for (size_t offset = 0; offset < page_span; offset += 16) {
      ASSERT_EQ(block_index_of_offset(&page, offset), offset / block_size)
          << "bin " << bin << " offset " << offset;
    }
  }
}

TEST(BlockIndex, ExactForLargeBlockSizesUpToTheSegment) {
  for (uint32_t block_size : {4096u, 12288u, 1u << 20, (1u << 22) - 16384}) {
    Page page{};
    compute_block_index_magic(block_size, &page.index_multiplier, &page.index_shift);
    for (size_t offset = 0; offset < kSegmentBytes; offset += 4096 - 16) {
      ASSERT_EQ(block_index_of_offset(&page, offset), offset / block_size)
          << block_size << " " << offset;
    }
  }
}
