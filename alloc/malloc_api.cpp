// alloc/malloc_api.cpp — the public malloc-mode C API (include/usgc/usgc.h) over the thread
// heap. Every function here is a thin, glibc-compatible front end: argument checks and errno,
// then one call into heap.hpp. The preload library maps malloc & co. onto these.
#include <cerrno>
#include <cstring>

#include "alloc/asan_tracking.hpp"
#include "alloc/heap.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/large_arena.hpp"
#include "kernel_iface/fatal.hpp"
#include "usgc/usgc.h"

using namespace usgc::alloc;

namespace {

bool multiply_overflows(size_t count, size_t size, size_t* product) {
  return __builtin_mul_overflow(count, size, product);
}

bool is_power_of_two(size_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

// `pointer` (or nullptr), just allocated for `size` bytes, tracked for ASan (asan_tracking.hpp).
void* tracked(void* pointer, size_t size) {
  track_allocated(pointer, size);
  return pointer;
}

}  // namespace

extern "C" {

void* usgc_malloc(size_t size) {
  return tracked(heap_malloc(t_heap, size), size);
}

void* usgc_calloc(size_t count, size_t size) {
  size_t total;
  if (multiply_overflows(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return heap_calloc(t_heap, total);
}

void* usgc_realloc(void* pointer, size_t size) {
  return heap_realloc(t_heap, pointer, size);
}

void* usgc_reallocarray(void* pointer, size_t count, size_t size) {
  size_t total;
  if (multiply_overflows(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return heap_realloc(t_heap, pointer, total);
}

void usgc_free(void* pointer) {
  track_freeing(pointer, Caller::kFree);
  heap_free(pointer, Caller::kFree);  // null fails the segment-map check: a no-op on the slow path
}

void usgc_free_sized(void* pointer, size_t size) {
  if (pointer == nullptr) return;
#if defined(USGC_DEBUG) && USGC_DEBUG
  size_t usable = heap_usable_size(pointer, Caller::kFreeSized);
  USGC_CHECK(size <= usable,
             "free_sized(): pointer %p freed with size %zu but its block holds %zu bytes", pointer,
             size, usable);
#else
  (void)size;
#endif
  track_freeing(pointer, Caller::kFreeSized);
  heap_free(pointer, Caller::kFreeSized);
}

void* usgc_aligned_alloc(size_t alignment, size_t size) {
  // glibc 2.36 (Debian 12): any alignment is accepted and rounded up to a power of two.
  if (alignment > (size_t{1} << (sizeof(size_t) * 8 - 2))) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment == 0) alignment = 1;  // glibc: any alignment works, 0 as 1
  if (!is_power_of_two(alignment)) alignment = size_t{1} << (64 - __builtin_clzll(alignment));
  return tracked(heap_malloc_aligned(t_heap, size, alignment), size);
}

int usgc_posix_memalign(void** result, size_t alignment, size_t size) {
  if (alignment % sizeof(void*) != 0 || !is_power_of_two(alignment)) return EINVAL;
  int saved_errno = errno;
  void* pointer = tracked(heap_malloc_aligned(t_heap, size, alignment), size);
  errno = saved_errno;  // posix_memalign reports through its return value only
  if (pointer == nullptr) return ENOMEM;
  *result = pointer;
  return 0;
}

size_t usgc_malloc_usable_size(const void* pointer) {
  if (pointer == nullptr) return 0;
  size_t usable = heap_usable_size(pointer, Caller::kUsableSize);
  track_usable(pointer, usable);
  return usable;
}

int usgc_malloc_trim(size_t) {
  return heap_trim() ? 1 : 0;
}

}  // extern "C"

namespace usgc::alloc {

void* heap_calloc(Heap* heap, size_t size) {
  if (size > kMediumObjectMax) {
    if (heap == &g_empty_heap) {
      heap = thread_heap_create();
      if (heap == nullptr) {
        errno = ENOMEM;
        return nullptr;
      }
    }
    void* pointer = large_malloc(heap, size, true);
    if (pointer != nullptr) heap_profile_count(heap, pointer, size);
    return tracked(pointer, size);
  }
  void* pointer = tracked(heap_malloc(heap, size), size);
  if (pointer != nullptr) std::memset(pointer, 0, size);
  return pointer;
}

void* heap_malloc_aligned(Heap* heap, size_t size, size_t alignment) {
  if (alignment <= kMinAlignment) return heap_malloc(heap, size);
  if (size > kMaxRequestBytes || alignment > kMaxRequestBytes) {
    errno = ENOMEM;
    return nullptr;
  }
  if (alignment <= kMaxNaturalAlignment) {
    // Natural alignment (layout.hpp): the size class of a multiple of A is a multiple of A,
    // and pages start at multiples of kMaxNaturalAlignment.
    size_t rounded = align_up(size == 0 ? 1 : size, alignment);
    void* pointer = heap_malloc(heap, rounded);
    USGC_ASSERT(pointer == nullptr || (reinterpret_cast<uintptr_t>(pointer) & (alignment - 1)) == 0,
                "natural alignment: %p is not %zu-aligned", pointer, alignment);
    return pointer;
  }
  // Over-allocate and return an interior pointer; the page is marked so free finds the block.
  void* pointer = heap_malloc(heap, size + alignment);
  if (pointer == nullptr) return nullptr;
  uintptr_t aligned = align_up(reinterpret_cast<uintptr_t>(pointer), alignment);
  if (aligned != reinterpret_cast<uintptr_t>(pointer)) {
    Segment* segment = segment_of(pointer);
    Page* page = segment->page_of(reinterpret_cast<uintptr_t>(pointer));
    page->set_flag(kPageHasAligned);
    page_refresh_fast_free_owner(page);
    // Unchecked: in the asan build the word lies in the block's poisoned head.
    usgc::kernel::unchecked_store(reinterpret_cast<uintptr_t*>(aligned) - 1,
                                  aligned_marker_of(reinterpret_cast<void*>(aligned)));
    // "Handed out clean" (page.hpp): realloc copies from here, where a freed block may have
    // started (within the block: aligned - pointer <= alignment - 16).
    clear_free_marker_word(reinterpret_cast<void*>(aligned));
  }
  return reinterpret_cast<void*>(aligned);
}

size_t heap_usable_size(const void* pointer, Caller caller) {
  Segment* segment = segment_of(pointer);
  if (!segment_map_is_segment(segment)) {
    switch (classify_pointer(pointer, &segment)) {
      case PointerOrigin::kSegment:
        break;
      case PointerOrigin::kTombstone:
        report_double_free(caller, pointer);
      case PointerOrigin::kForeign:
        free_outside_segment(const_cast<void*>(pointer), caller);  // reports once
        return 0;
    }
  }
  if (segment->kind == SegmentKind::kLarge) return large_span_usable_size(segment, pointer, caller);
  Page* page = segment->page_of_any(reinterpret_cast<uintptr_t>(pointer));
  Block* block = page_block_of(page, pointer, caller);
  bool freed = segment->kind == SegmentKind::kHuge
                   ? segment->large_in_use.load(std::memory_order_relaxed) == 0
                   : block->free_marker == free_marker_of(page);
  if (freed) report_double_free(caller, pointer);
  return static_cast<size_t>(reinterpret_cast<const uint8_t*>(block) + page->block_size -
                             static_cast<const uint8_t*>(pointer));
}

void* heap_realloc(Heap* heap, void* pointer, size_t size) {
  if (pointer == nullptr) return tracked(heap_malloc(heap, size), size);
  if (size == 0) {  // glibc: frees and returns NULL
    track_freeing(pointer, Caller::kRealloc);
    heap_free(pointer, Caller::kRealloc);
    return nullptr;
  }
  size_t usable = heap_usable_size(pointer, Caller::kRealloc);
  if (usable == 0) {  // not ours (reported): nothing can be copied safely
    errno = EINVAL;
    return nullptr;
  }
  Segment* segment = segment_of(pointer);
  bool is_large = segment_map_is_segment(segment) &&
                  (segment->kind == SegmentKind::kLarge || segment->kind == SegmentKind::kHuge);
  if (is_large && size > kMediumObjectMax) {
    if (void* resized = large_resize(segment, pointer, size)) {
      if (heap_profile_active()) heap_profile_moved(pointer, resized, size);
      return tracked(resized, size);
    }
  }
  // Small and medium blocks stay when the new size still fits and wastes at most half.
  if (!is_large && size <= usable && size >= usable / 2) {
    if (heap_profile_active()) heap_profile_moved(pointer, pointer, size);
    return tracked(pointer, size);
  }
  // A large object that outgrew its place is placed where it can grow again (large_arena.hpp).
  bool growing =
      size > usable && size > kMediumObjectMax && size <= kLargeObjectMax && heap != &g_empty_heap;
  void* moved = growing ? large_span_malloc(heap, size, false, true) : heap_malloc(heap, size);
  // The placed allocation bypasses heap_malloc: it counts against the profile's countdown too.
  if (growing && moved != nullptr) heap_profile_count(heap, moved, size);
  if (moved == nullptr) return nullptr;  // errno is ENOMEM; the old block is untouched
  track_allocated(moved, size);
  // The old block's usable bytes are copied, beyond what was asked for (asan build: made
  // addressable, it is poisoned whole by its free below).
  track_usable(pointer, usable);
  std::memcpy(moved, pointer, size < usable ? size : usable);
  track_freeing(pointer, Caller::kRealloc);
  heap_free(pointer, Caller::kRealloc);
  return moved;
}

}  // namespace usgc::alloc
