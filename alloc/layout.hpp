// alloc/layout.hpp — the address-space layout of usgc's heap: segments, pages, size thresholds.
//
// A segment is 4 MiB of address space aligned to 4 MiB, so the segment of any heap pointer is
// `pointer & ~kSegmentMask` (one AND, no lookup). Its first kSegmentHeaderBytes hold the
// segment header with the metadata of every page in it. Kinds:
//
//   kind    pages            objects held                        owner
//   small   64 x 64 KiB      size classes up to 8 KiB (>= 8/page)  one thread heap
//   medium  8 x 512 KiB      size classes up to 128 KiB (>= 4/page) one thread heap
//   large   64 x 64 KiB      objects above 128 KiB up to 4 MiB -   the node's large arena
//                            header, each a span of whole pages    (any thread, under its lock)
//   huge    1 page, N*4 MiB  one object above that                 none (unmapped on free)
//
// Page 0 of every segment starts after the header, at a 16 KiB boundary; all other pages start
// at a multiple of their page size. Hence the "natural alignment" property: a block of a size
// class that is a multiple of A (A <= 16 KiB, a power of two) is A-aligned. aligned_alloc uses it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace usgc::alloc {

inline constexpr unsigned kSegmentShift = 22;
inline constexpr size_t kSegmentBytes = size_t{1} << kSegmentShift;  // 4 MiB
inline constexpr uintptr_t kSegmentMask = kSegmentBytes - 1;
inline constexpr size_t kSegmentHeaderBytes = 16 * 1024;

inline constexpr unsigned kSmallPageShift = 16;                                        // 64 KiB
inline constexpr unsigned kMediumPageShift = 19;                                       // 512 KiB
inline constexpr uint32_t kSmallPagesPerSegment = kSegmentBytes >> kSmallPageShift;    // 64
inline constexpr uint32_t kMediumPagesPerSegment = kSegmentBytes >> kMediumPageShift;  // 8
inline constexpr uint32_t kMaxPagesPerSegment = kSmallPagesPerSegment;

inline constexpr size_t kSmallObjectMax = 8 * 1024;
inline constexpr size_t kMediumObjectMax = 128 * 1024;
inline constexpr size_t kLargeObjectMax = kSegmentBytes - kSegmentHeaderBytes;

// Every block is at least this aligned (glibc's malloc guarantee on x86-64).
inline constexpr size_t kMinAlignment = 16;
// Alignments up to this come from the size classes themselves (see "natural alignment").
inline constexpr size_t kMaxNaturalAlignment = kSegmentHeaderBytes;

// Large objects are sized in OS pages, so growing one in place only moves its end.
inline constexpr size_t kLargeGranularity = 4096;

// The per-target constants: the bits of a user-space address (the segment map covers that
// space) and the largest request (as glibc: nothing may exceed PTRDIFF_MAX).
#if defined(__wasm32__)
// wasm32: one linear memory of at most 4 GiB, PTRDIFF_MAX is 2^31 - 1.
inline constexpr unsigned kUserAddressBits = 32;
inline constexpr size_t kMaxRequestBytes = (size_t{1} << 31) - kSegmentBytes;
#else
// 64-bit Linux: a 47-bit user address space.
inline constexpr unsigned kUserAddressBits = 47;
inline constexpr size_t kMaxRequestBytes = (size_t{1} << 47) - kSegmentBytes;
#endif

enum class SegmentKind : uint8_t { kSmall, kMedium, kLarge, kHuge };

constexpr size_t align_up(size_t value, size_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

}  // namespace usgc::alloc
