// tests/alloc/segment_test.cpp — the segment map classifies every pointer correctly: usgc's
// segments (with huge continuation chunks), pointers usgc never owned, and memory it unmapped.
#include <gtest/gtest.h>

#include "alloc/heap.hpp"
#include "alloc/segment.hpp"
#include "usgc/usgc.h"

using namespace usgc::alloc;

TEST(SegmentMap, PointersIntoASmallObjectSegmentClassifyAsThatSegment) {
  void* p = usgc_malloc(64);
  Segment* segment = nullptr;
  ASSERT_EQ(classify_pointer(p, &segment), PointerOrigin::kSegment);
  EXPECT_EQ(segment, segment_of(p));
  EXPECT_TRUE(segment_map_is_segment(segment));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(segment) % kSegmentBytes, 0u);
  usgc_free(p);
}

TEST(SegmentMap, StackAndStaticPointersAreForeign) {
  int on_stack = 0;
  static int in_data = 0;
  Segment* segment = nullptr;
  EXPECT_EQ(classify_pointer(&on_stack, &segment), PointerOrigin::kForeign);
  EXPECT_EQ(classify_pointer(&in_data, &segment), PointerOrigin::kForeign);
  EXPECT_EQ(classify_pointer(nullptr, &segment), PointerOrigin::kForeign);
  EXPECT_EQ(classify_pointer(reinterpret_cast<void*>(~uintptr_t{0} - 4096), &segment),
            PointerOrigin::kForeign);
}

TEST(SegmentMap, HugeObjectContinuationChunksLeadBackToTheirSegment) {
  size_t size = 3 * kSegmentBytes;
  char* p = static_cast<char*>(usgc_malloc(size));
  ASSERT_NE(p, nullptr);
  Segment* start = segment_of(p);
  for (size_t offset = 0; offset < size; offset += kSegmentBytes / 2) {
    Segment* segment = nullptr;
    ASSERT_EQ(classify_pointer(p + offset, &segment), PointerOrigin::kSegment) << offset;
    EXPECT_EQ(segment, start);
  }
  usgc_free(p);
  usgc_malloc_trim(0);  // drops the cache of huge segments: the mapping is unmapped now
  Segment* segment = nullptr;
  EXPECT_EQ(classify_pointer(p, &segment), PointerOrigin::kTombstone)
      << "an unmapped huge segment leaves a tombstone";
}

TEST(SegmentMap, AlignedHugeObjectsFreeThroughInteriorPointers) {
  // 8 MiB alignment forces the aligned pointer into a continuation chunk of a huge mapping.
  void* p = usgc_aligned_alloc(8 * kSegmentBytes / 4, 5 * kSegmentBytes / 2);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (8 * kSegmentBytes / 4), 0u);
  EXPECT_GE(usgc_malloc_usable_size(p), 5 * kSegmentBytes / 2);
  usgc_free(p);
}
