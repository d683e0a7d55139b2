// gc/size_classes.hpp — the slot sizes of GC blocks (header included), and the size -> class map.
//
// 35 classes: 16..64 in steps of 8 (small objects: a two-reference node is a 24-byte slot),
// 80..128 in steps of 16, then four classes per power of two up to 8 KiB. Slots bigger than
// kMaxSmallSlotBytes are large objects (gc/large_objects.cpp). The class of a registered type is
// computed once at registration (usgc_type_layout), so the allocation fast path never looks
// this table up. Worst-case internal waste is 25 % (the four-per-doubling steps), as Go's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "usgc/object.h"

namespace usgc::gc {

inline constexpr uint32_t kSizeClassCount = USGC_SIZE_CLASS_COUNT;
inline constexpr uint32_t kNoSizeClass = UINT32_MAX;

inline constexpr std::array<uint32_t, kSizeClassCount> kSlotBytes = {
    16,   24,   32,   40,   48,   56,   64,   80,   96,   112,  128,  160,
    192,  224,  256,  320,  384,  448,  512,  640,  768,  896,  1024, 1280,
    1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192};
inline constexpr uint32_t kMaxSmallSlotBytes = kSlotBytes[kSizeClassCount - 1];

constexpr bool slot_table_is_sorted() {
  for (uint32_t i = 1; i < kSizeClassCount; ++i) {
    if (kSlotBytes[i] <= kSlotBytes[i - 1] || kSlotBytes[i] % 8 != 0) return false;
  }
  return true;
}
static_assert(slot_table_is_sorted(), "slot sizes ascend in multiples of 8");

// The smallest class whose slot holds `slot_bytes`, or kNoSizeClass (a large object).
constexpr uint32_t size_class_of(size_t slot_bytes) {
  if (slot_bytes > kMaxSmallSlotBytes) return kNoSizeClass;
  uint32_t low = 0, high = kSizeClassCount - 1;
  while (low < high) {
    uint32_t mid = (low + high) / 2;
    if (kSlotBytes[mid] >= slot_bytes)
      high = mid;
    else
      low = mid + 1;
  }
  return low;
}
static_assert(size_class_of(1) == 0 && size_class_of(24) == 1 && size_class_of(25) == 2 &&
              size_class_of(8192) == 34);
static_assert(size_class_of(8193) == kNoSizeClass);

}  // namespace usgc::gc
