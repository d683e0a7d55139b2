// alloc/size_classes.hpp — size classes ("bins") for objects up to kMediumObjectMax.
//
// Classes: 16, 32, ..., 128 (steps of the 16-byte minimum alignment), then eight classes per
// power of two: 144, 160, ..., 256, 288, 320, ..., 512, ... up to 128 KiB — 88 bins. Above
// 128 bytes the spacing is 1/8 of the lower power of two, so the internal waste of a request
// of n bytes is below n/8 (12.5%); at or below 128 bytes it is below the 16-byte alignment.
//
// Hot path: bin_of_size is branch-light (one bit scan) and the malloc fast path does not even
// call it for sizes up to kDirectMaxSize (the heap's direct table is indexed by (size+15)/16).
#pragma once

#include <cstddef>
#include <cstdint>

#include "alloc/layout.hpp"

namespace usgc::alloc {

inline constexpr uint32_t kBinCount = 88;
// Sizes up to this are served through the heap's direct table (one load to find the page).
inline constexpr size_t kDirectMaxSize = 1024;
inline constexpr uint32_t kDirectSlots = kDirectMaxSize / 16 + 1;

constexpr uint32_t bin_of_size(size_t size) {
  if (size <= 128) return size <= 16 ? 0 : static_cast<uint32_t>((size + 15) >> 4) - 1;
  size_t w = size - 1;
  uint32_t top_bit = 63 - static_cast<uint32_t>(__builtin_clzll(w));  // >= 7
  return 8 + (top_bit - 7) * 8 + static_cast<uint32_t>((w >> (top_bit - 3)) & 7);
}

constexpr size_t class_size_of_bin(uint32_t bin) {
  if (bin < 8) return (bin + 1) * 16;
  uint32_t k = 7 + (bin - 8) / 8;
  uint32_t j = (bin - 8) % 8;
  return (size_t{1} << k) + (j + 1) * (size_t{1} << (k - 3));
}

// The direct-table slot of a size <= kDirectMaxSize.
// size_t, not a narrower type: the malloc fast path indexes the direct table with it as it is.
constexpr size_t direct_slot_of_size(size_t size) {
  return (size + 15) >> 4;
}

constexpr bool bin_uses_small_pages(uint32_t bin) {
  return class_size_of_bin(bin) <= kSmallObjectMax;
}

static_assert(class_size_of_bin(kBinCount - 1) == kMediumObjectMax);
static_assert(bin_of_size(kMediumObjectMax) == kBinCount - 1);
static_assert(bin_of_size(129) == 8 && class_size_of_bin(8) == 144);
static_assert(bin_of_size(256) == 15 && class_size_of_bin(15) == 256);
static_assert(bin_of_size(257) == 16 && class_size_of_bin(16) == 288);
static_assert(bin_of_size(0) == 0 && bin_of_size(1) == 0 && bin_of_size(17) == 1);

}  // namespace usgc::alloc
