// alloc/asan_tracking.hpp — AddressSanitizer's view of the malloc heap (the asan build only).
//
// The malloc heap lives in usgc's own segments, which ASan knows nothing of; in the asan build
// (kernel_iface/address_sanitizer.hpp, USGC_ASAN) the allocator keeps ASan's shadow of them so that
// ASan reports what it reports for its own heap, as mimalloc's ASan tracking does. The tracking
// invariant, kept by the public entry points (malloc_api.cpp) and page_extend:
//   - a block handed out (usgc_malloc, calloc, realloc, aligned_alloc, posix_memalign) is
//     addressable for exactly the bytes asked for, from the pointer returned; the rest of its block
//     (the tail up to the size class, the head an over-aligned pointer skipped) stays poisoned, so
//     an overflow by one byte past the request is reported if the class has a byte to spare;
//   - a block is poisoned whole as it is freed (before any list publishes it), so a use after
//     usgc_free is reported until the block is handed out again;
//   - blocks a page has never handed out are poisoned when the page is extended, so an overflow
//     into one is reported too;
//   - usgc_malloc_usable_size makes the whole usable size addressable (glibc allows its use).
// The allocator's own words inside free blocks are kernel::UncheckedWord (Block in page.hpp).
// ASan reports these accesses as "use-after-poison"; describe_heap_address adds one line naming
// the block, its class and whether it is free.
//
// Not on any hot path: in every other build each function is empty and inline.
#pragma once

#include <cstddef>

#include "alloc/heap.hpp"
#include "kernel_iface/address_sanitizer.hpp"

namespace usgc::alloc {

#if USGC_ASAN
// `pointer` (or nullptr) was just returned for `size` bytes: the bytes asked for are addressable,
// the rest of its block is not.
void track_allocated(void* pointer, size_t size);
// `pointer` is about to be freed by `caller`: if it is a live block of usgc's heap, the block is
// poisoned whole (a bad pointer is reported here, as the free itself would report it; a pointer
// usgc never owned is left to the free).
void track_freeing(const void* pointer, Caller caller);
// usgc_malloc_usable_size said `usable`: all of it is addressable.
void track_usable(const void* pointer, size_t usable);
#else
inline void track_allocated(void*, size_t) {}
inline void track_freeing(const void*, Caller) {}
inline void track_usable(const void*, size_t) {}
#endif

// Blocks a page puts on its free list for the first time: poisoned until handed out.
inline void track_fresh_blocks(const void* first, size_t bytes) {
  kernel::asan_poison(first, bytes);
}

}  // namespace usgc::alloc
