// kernel_iface/asan_shadow.hpp — unpoisoning a large range (the asan build) without writing its
// shadow memory.
//
// asan_unpoison (address_sanitizer.hpp) is ASan's __asan_unpoison_memory_region: a memset of one
// shadow byte per 8 bytes. For memory given back to the kernel that writes zeros over shadow pages
// that were never touched: unmapping a 1 GiB goroutine-stack chunk (the stack scavenger of an
// idle runtime does) faulted in 128 MiB of shadow and kept it resident, 100-400 ms of CPU here.
// asan_unpoison_dropping_shadow gives the whole shadow pages of the range back to the kernel
// instead (MADV_DONTNEED on ASan's private anonymous shadow: they read as zero again, and a zero
// shadow byte is an addressable granule), as ASan itself does for a thread's stack at its exit;
// the partial shadow pages at both ends, and any range under kAsanShadowReleaseBytes, go through
// __asan_unpoison_memory_region, so the result is the same shadow (its rule for a range that ends
// inside a granule included). The caller owns the range: nothing else writes its shadow meanwhile.
//
// Used where memory is given back to the kernel (virtual_memory.cpp's unmap and move_mapping). In
// every other build it is an empty inline function.
#pragma once

#include <cstddef>

#include "kernel_iface/address_sanitizer.hpp"

namespace usgc::kernel {

// From this size up the shadow's whole pages are dropped (128 KiB of shadow).
inline constexpr size_t kAsanShadowReleaseBytes = size_t{1} << 20;

#if USGC_ASAN
void asan_unpoison_dropping_shadow(const void* address, size_t bytes);
#else
inline void asan_unpoison_dropping_shadow(const void*, size_t) {}
#endif

}  // namespace usgc::kernel
